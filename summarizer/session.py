"""One WebSocket session: the adapter between a socket and the jobs.

Frames in are checked against the limits, parsed by :mod:`summarizer.protocol`
and handed to a :class:`~summarizer.jobs.Job`; the job's event log goes out in
``seq`` order through one sender task per attached job. A session runs one job
at a time (several one after the other), and may re-attach to any job with
``resume``. Closing the socket detaches from the job; it does not cancel it.

Errors a client causes become an ``error`` event; protocol and limit violations
then close the socket with the matching :class:`~summarizer.errors.CloseCode`.

A job is fed by one session at a time: the one that started it, or the latest
that resumed it (or re-sent its ``start.job_id``). The session that is taken
over gets ``superseded`` (no job, close 1008) for its next upload message,
which is not stored; it may still have been following the job's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, MutableMapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from langchain_core.language_models import BaseChatModel
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .errors import CloseCode, DocumentError, ErrorCode, LimitExceeded, ProtocolError, SummarizerError
from .ingest.types import IngestOptions
from .jobs import Job, JobLimits, JobManager, JobSpec, JobState
from .pacing import take_turn
from .pipeline import PipelineConfig
from .protocol import PROTOCOL_VERSION, Cancel, End, Error, Resume, Resumed, Start, Text, dump, parse_client
from .settings import Settings
from .ws_protocol import READY_FRAMES

__all__ = [
    "ABORT_SCOPE_KEY",
    "FRAME_RUN_BYTES",
    "Session",
    "build_job_spec",
    "host_allowed",
    "origin_allowed",
]

log = logging.getLogger(__name__)

_UNMETERED_FRAME_BYTES = 16 * 1024
"""Binary frames at least this large do not count against ``max_messages_per_second``."""

FRAME_RUN_BYTES = 512 * 1024
"""Most bytes of binary frames already read by the transport that are fed to the job together
(one store write, one wake-up of ingestion; see :data:`summarizer.ws_protocol.READY_FRAMES`)."""

ABORT_SCOPE_KEY = "summarizer.abort"
"""Scope key of a callable that aborts the connection's TCP transport (set by the server)."""

_CLOSE_WAIT_S = 2.0
"""Longest wait for a close handshake (seconds); after it the TCP connection is aborted."""

_TIMER_SLACK_S = 0.05
"""How early (seconds) a receive timeout may fire and still count as the full idle time."""


class ModelSource(Protocol):
    """What a session needs of the model registry."""

    names: list[str]

    def get(self, name: str | None) -> tuple[str, BaseChatModel]: ...


def host_allowed(host: str, allowed_hosts: list[str]) -> bool:
    """Whether ``host`` (a host name, IPv6 literals bracketed) matches the allow-list.

    Patterns are exact names, ``*.example.org`` (any subdomain) or ``*`` (any),
    as in Starlette's ``TrustedHostMiddleware``.
    """
    host = host.lower()
    for pattern in allowed_hosts:
        pattern = pattern.lower()
        if pattern == "*" or host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def origin_allowed(origin: str | None, *, allowed_origins: list[str], allowed_hosts: list[str]) -> bool:
    """Whether a browser ``Origin`` may open a WebSocket (CSWSH and DNS-rebinding protection).

    Allowed: no ``Origin`` header (not a browser), an origin listed in
    ``allowed_origins``, and an origin whose host is one of ``allowed_hosts``
    (any scheme and port). The request's own ``Host`` header is *not* trusted:
    a DNS-rebinding page controls both it and ``Origin``.

    Args:
        origin: The request's ``Origin`` header, or ``None``.
        allowed_origins: Extra allowed origins, e.g. ``["https://summaries.example.org"]``.
        allowed_hosts: The server's host allow-list (:meth:`Settings.resolved_allowed_hosts`).
    """
    if origin is None:
        return True
    if origin in allowed_origins:
        return True
    try:
        hostname = urlsplit(origin).hostname
    except ValueError:
        return False
    if not hostname:
        return False
    if ":" in hostname:
        hostname = f"[{hostname}]"
    return host_allowed(hostname, allowed_hosts)


class _RateLimit:
    """Token bucket: ``rate`` messages per second, bursts of one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = max(rate, 1.0)
        self.last = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(max(self.rate, 1.0), self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class Session:
    """Serve one WebSocket connection.

    Args:
        websocket: The Starlette WebSocket (not yet accepted).
        settings: Limits, defaults, token, origins.
        jobs: The server's :class:`~summarizer.jobs.JobManager`.
        models: Resolves model names (``get(name) -> (name, model)``).
    """

    def __init__(
        self, websocket: WebSocket, *, settings: Settings, jobs: JobManager, models: ModelSource
    ) -> None:
        self.ws = websocket
        self.settings = settings
        self.jobs = jobs
        self.models = models
        self.job: Job | None = None
        self.sender: asyncio.Task[None] | None = None
        self.started_jobs = 0
        self.authenticated = settings.token is None
        self.rate = _RateLimit(settings.max_messages_per_second)
        ready = websocket.scope.get("extensions", {}).get(READY_FRAMES)
        self._take_ready: Callable[[int, int], list[bytes]] | None = ready["take"] if ready else None
        """Takes the binary frames the server has already read (``None``: a server without it)."""

    async def serve(self) -> None:
        """Check the handshake, then receive until the socket closes."""
        origin = self.ws.headers.get("origin")
        if not origin_allowed(
            origin,
            allowed_origins=self.settings.allowed_origins,
            allowed_hosts=self.settings.resolved_allowed_hosts(),
        ):
            log.warning("refused WebSocket from origin %r", origin)
            await self.ws.close(code=int(CloseCode.POLICY_VIOLATION))  # before accept: HTTP 403
            return
        await self.ws.accept()
        wait_s = self.settings.idle_timeout_s
        try:
            while True:
                try:
                    # asyncio.timeout, not wait_for: no task per message, so frames the
                    # transport already holds are taken without a trip round the loop.
                    async with asyncio.timeout(wait_s):
                        message = await self.ws.receive()
                except TimeoutError:
                    more_s = self.idle_wait_s()
                    if more_s is not None:
                        wait_s = more_s
                        continue
                    await self.close_idle()
                    return
                wait_s = self.settings.idle_timeout_s
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    # Large binary frames are bounded by the ack window, not the message rate.
                    big = len(message.get("bytes") or b"") >= _UNMETERED_FRAME_BYTES
                    if not big and not self.rate.allow():
                        raise LimitExceeded(
                            f"More than {self.settings.max_messages_per_second:g} messages per second.",
                            code=ErrorCode.TOO_MANY_MESSAGES,
                        )
                    await self.dispatch(message)
                except SummarizerError as exc:
                    await self.refuse(exc)
                    if exc.close_code is not None:
                        return
        except WebSocketDisconnect:
            return
        finally:
            await self.detach()

    async def dispatch(self, message: MutableMapping[str, Any]) -> None:
        data = message.get("bytes")
        if data is not None:
            frames = [data]
            if self._take_ready is not None and len(data) >= _UNMETERED_FRAME_BYTES:
                frames += self._take_ready(FRAME_RUN_BYTES, _UNMETERED_FRAME_BYTES)
            await self.feed_frames(frames)
            return
        raw = message.get("text") or ""
        if len(raw) > self.settings.max_frame_bytes:
            raise _too_big(len(raw), self.settings.max_frame_bytes)
        msg = parse_client(raw)
        if isinstance(msg, Start | Resume):
            self.authenticate(msg.token)
        else:
            self.check_authenticated()
        if isinstance(msg, Start):
            await self.begin(msg)
        elif isinstance(msg, Resume):
            await self.resume(msg)
        elif isinstance(msg, Text):
            if job := self.current_job("'text'"):
                job.check_feeder(self)
                await job.feed_text(msg.text)
        elif isinstance(msg, End):
            if job := self.current_job("'end'"):
                job.check_feeder(self)
                await job.end(msg.sha256)
        elif isinstance(msg, Cancel) and (job := self.current_job("'cancel'")):
            job.cancel()

    async def feed_frames(self, frames: list[bytes]) -> None:
        """Feed binary frames that arrived together to the job; a frame over the size limit
        is refused after the ones before it are fed.

        Raises:
            LimitExceeded: ``frame_too_large``.
            ProtocolError: No job, or the job refuses the data (see :meth:`Job.feed_frames`).
        """
        limit = self.settings.max_frame_bytes
        refused = next((i for i, frame in enumerate(frames) if len(frame) > limit), None)
        if refused == 0:
            raise _too_big(len(frames[0]), limit)
        self.check_authenticated()
        if job := self.current_job("binary frame"):
            job.check_feeder(self)
            await job.feed_frames(frames[:refused])
        if refused is not None:
            raise _too_big(len(frames[refused]), limit)

    # -- authentication ------------------------------------------------------------------

    def authenticate(self, token: str | None) -> None:
        expected = self.settings.token
        if expected is None or self.authenticated:
            return
        if token is None or not secrets.compare_digest(token.encode(), expected.get_secret_value().encode()):
            err = ProtocolError(
                "This server requires a token: send the right one in 'token' of 'start' or 'resume'.",
                code=ErrorCode.UNAUTHORIZED,
            )
            err.close_code = CloseCode.POLICY_VIOLATION
            raise err
        self.authenticated = True

    def check_authenticated(self) -> None:
        if not self.authenticated:
            self.authenticate(None)

    # -- jobs ---------------------------------------------------------------------------------

    def current_job(self, what: str) -> Job | None:
        """The attached running job, or ``None`` when it already ended.

        The client cannot know at once that its job failed (say, on the first
        frame of a file that is not a PDF), so upload messages and ``cancel``
        for an ended job are dropped, not treated as a protocol violation.

        Raises:
            ProtocolError: ``unexpected_message`` if no job was ever attached.
        """
        if self.job is None:
            raise ProtocolError(f"Unexpected {what}: send 'start' first.", code=ErrorCode.UNEXPECTED_MESSAGE)
        return None if self.job.finished else self.job

    def job_spec(self, start: Start) -> JobSpec:
        """The effective configuration of a new job (see :func:`build_job_spec`)."""
        return build_job_spec(start, settings=self.settings, models=self.models)

    async def begin(self, start: Start) -> None:
        if self.job is not None and not self.job.finished:
            raise ProtocolError(
                "'start' while a job is running on this connection; cancel it or wait for its end.",
                code=ErrorCode.UNEXPECTED_MESSAGE,
            )
        if self.started_jobs >= self.settings.max_jobs_per_connection:
            raise LimitExceeded(
                f"This connection has started {self.started_jobs} jobs, the limit; open a new connection.",
                code=ErrorCode.TOO_MANY_JOBS,
            )
        # A burst of starts (many sessions at once) is spread over loop iterations.
        await take_turn()
        job, created = self.jobs.open(self.job_spec(start))
        if not created:  # a repeated start with the client's job_id: re-attach, as resume from 0
            await self.resume(Resume(job_id=job.job_id, last_seq=0), job=job)
            return
        self.started_jobs += 1
        job.take_over(self)
        await self.attach(job, after_seq=0)
        job.run()

    async def resume(self, msg: Resume, *, job: Job | None = None) -> None:
        if self.job is not None and not self.job.finished and self.job.id != msg.job_id:
            raise ProtocolError(
                "'resume' while another job is running on this connection.", code=ErrorCode.UNEXPECTED_MESSAGE
            )
        if job is None:  # a follower (upload=false) never moves an upload from its replica
            job = await self.jobs.get_for_resume(msg.job_id) if msg.upload else self.jobs.get(msg.job_id)
        if job is None:
            raise SummarizerError(
                f"No job {msg.job_id}: it never existed or has expired.", code=ErrorCode.UNKNOWN_JOB
            )
        if msg.upload:
            # Take the upload over before reading its counts: from here on nothing another
            # connection still sends (say, frames it had buffered) is committed after them.
            job.take_over(self)
            await job.settled()  # an 'end' being checked: report its outcome, not 'uploading'
        await self.stop_sender()
        await self.ws.send_text(
            dump(
                Resumed(
                    job_id=job.id,
                    state=job.state.value,
                    last_seq=job.last_seq,
                    received=job.received,
                    messages=job.messages,
                )
            )
        )
        await self.attach(job, after_seq=min(msg.last_seq, job.last_seq))

    async def attach(self, job: Job, *, after_seq: int) -> None:
        await self.stop_sender()
        if self.job is not job:
            self._leave()
            job.readers += 1
        self.job = job
        self.sender = asyncio.create_task(self.send_events(job, after_seq))

    async def send_events(self, job: Job, after_seq: int) -> None:
        """Send the job's events from ``after_seq``; each send must finish within ``send_timeout_s``.

        A client that reads nothing fills the socket's buffers, then a send
        blocks: after ``send_timeout_s`` the connection is closed with 1008
        (reason ``slow_reader``). The server never buffers more than the
        transport's write buffer for a client; the job goes on, and the client
        resumes from the last ``seq`` it has.
        """
        timeout = self.settings.send_timeout_s
        loop = asyncio.get_running_loop()
        try:
            # One asyncio.timeout re-armed per send, not a wait_for (a new task per event).
            async with asyncio.timeout(None) as deadline:
                async for stored in job.events(after_seq):
                    deadline.reschedule(loop.time() + timeout)
                    await self.ws.send_text(stored.body)
                    deadline.reschedule(None)
        except TimeoutError:
            log.info("closing a connection that read nothing for %g s (job %s)", timeout, job.job_id)
            await self.close_socket(CloseCode.POLICY_VIOLATION, str(ErrorCode.SLOW_READER))
        except SummarizerError as exc:  # the job moved to another replica (Job.hand_over)
            log.info("job %s moved away: %s", job.job_id, exc.message)
            await self._tell(exc)
            await self.close_socket(exc.close_code or CloseCode.TRY_AGAIN_LATER, str(exc.code))
        except (WebSocketDisconnect, OSError):
            return  # the socket went away; the receive loop notices and cleans up
        except RuntimeError:
            if self._socket_closed():
                return  # a send raced with the socket closing
            log.exception("event sender failed (job %s)", job.job_id)
            await self._close_internal_error()
        except Exception:
            log.exception("event sender failed (job %s)", job.job_id)
            await self._close_internal_error()

    def _socket_closed(self) -> bool:
        return (
            self.ws.application_state is not WebSocketState.CONNECTED
            or self.ws.client_state is not WebSocketState.CONNECTED
        )

    async def _close_internal_error(self) -> None:
        await self.close_socket(CloseCode.INTERNAL_ERROR, str(ErrorCode.INTERNAL_ERROR))

    async def close_socket(self, code: CloseCode, reason: str = "") -> None:
        """Close with ``code``; a client that has not completed the close handshake
        :data:`_CLOSE_WAIT_S` later (it reads nothing) has its TCP connection aborted."""
        if self._socket_closed():
            return
        try:
            await asyncio.wait_for(self.ws.close(code=int(code), reason=reason), _CLOSE_WAIT_S)
            cleanly = True
        except Exception:  # a timeout, or the socket went away meanwhile
            cleanly = False
        abort = self.ws.scope.get(ABORT_SCOPE_KEY)
        if callable(abort):
            if cleanly:  # the close frame is out; the client has as long again to answer it
                asyncio.get_running_loop().call_later(_CLOSE_WAIT_S, abort)
            else:
                abort()

    async def stop_sender(self) -> None:
        """Wait for the sender when its job has ended (it drains), else stop it."""
        if self.sender is None:
            return
        if self.job is not None and not self.job.finished:
            self.sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.sender
        self.sender = None

    # -- errors and closing -----------------------------------------------------------------------

    async def refuse(self, exc: SummarizerError) -> None:
        """Report ``exc`` in-band, then close the socket if it calls for it."""
        log.info("refused client input: %s (%s)", exc.message, exc.code)
        if (
            self.job is not None
            and not self.job.finished
            and not self.job.moved  # it ends where it runs: only this connection is told
            and isinstance(exc, ProtocolError | LimitExceeded | DocumentError)
        ):
            self.job.fail(exc)
            await self.stop_sender()
        else:
            await self.stop_sender()
            await self._tell(exc)
        if exc.close_code is not None:
            await self.close_socket(exc.close_code, str(exc.code))

    async def _tell(self, exc: SummarizerError) -> None:
        """Send ``exc`` as an ``error`` that is none of a job's events (``job_id: null``, no ``seq``)."""
        with contextlib.suppress(Exception):  # the socket may be gone already
            await self.ws.send_text(
                dump(Error(job_id=None, code=exc.code, message=exc.message, retryable=exc.retryable))
            )

    def idle_wait_s(self) -> float | None:
        """How much longer a connection that was silent for its receive timeout stays open.

        It stays while its job is processing (the client waits for events):
        another full ``idle_timeout_s``. While the job's upload is progressing
        through another connection, only until the upload itself has been idle
        for ``idle_timeout_s``. A silent client with an upload in progress does
        not hold its slot: its job fails with ``idle_timeout``.

        The event loop's timer may fire slightly before the upload's clock has
        advanced a full ``idle_timeout_s`` (uvloop's timers count whole
        milliseconds of a loop time read once per turn); a remainder below
        :data:`_TIMER_SLACK_S` counts as elapsed, or such a socket would be
        held for a second full period.

        Returns:
            Seconds to wait for the next message (a new receive timeout), or
            ``None`` when the connection is to be closed as idle.
        """
        job = self.job
        if job is None or job.finished:
            return None
        if job.state is JobState.PROCESSING:
            return self.settings.idle_timeout_s
        remaining = self.settings.idle_timeout_s - job.upload.idle_for()
        return remaining if remaining > _TIMER_SLACK_S else None

    async def close_idle(self) -> None:
        job = self.job
        if job is not None and job.state is JobState.UPLOADING:
            job.fail(
                SummarizerError(
                    f"No upload data for {self.settings.idle_timeout_s:g} s; the job is abandoned.",
                    code=ErrorCode.IDLE_TIMEOUT,
                )
            )
            await self.stop_sender()  # drains the job's error event
            await self.close_socket(CloseCode.NORMAL_CLOSURE, "idle")
            return
        await self.stop_sender()
        error = Error(
            code=ErrorCode.IDLE_TIMEOUT,
            message=f"No message for {self.settings.idle_timeout_s:g} s; closing.",
        )
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.send_text(dump(error)), _CLOSE_WAIT_S)
        await self.close_socket(CloseCode.NORMAL_CLOSURE, "idle")

    async def detach(self) -> None:
        """The socket is gone: stop sending. The job keeps running (resume later)."""
        if self.sender is not None:
            self.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.sender
            self.sender = None
        self._leave()
        await self.close_socket(CloseCode.NORMAL_CLOSURE)

    def _leave(self) -> None:
        """Stop being one of the current job's readers."""
        if self.job is not None:
            self.job.readers -= 1
            self.jobs.release(self.job)
            self.job = None


def build_job_spec(start: Start, *, settings: Settings, models: ModelSource) -> JobSpec:
    """The effective configuration of a new job, from its ``start`` (WebSocket and HTTP alike).

    Raises:
        ProtocolError: ``unsupported_protocol`` (close 1003) or ``invalid_option``.
        LimitExceeded: ``document_too_large`` when ``start.size`` is over the limit.
        ModelError: ``unknown_model``.
    """
    s = settings
    if start.protocol != PROTOCOL_VERSION:
        err = ProtocolError(
            f"Protocol version {start.protocol} is not supported; this server speaks {PROTOCOL_VERSION}.",
            code=ErrorCode.UNSUPPORTED_PROTOCOL,
        )
        err.close_code = CloseCode.UNSUPPORTED_DATA
        raise err
    if start.size is not None and start.size > s.max_document_bytes:
        raise LimitExceeded(
            f"The document is {start.size} bytes; this server accepts at most {s.max_document_bytes}.",
            code=ErrorCode.DOCUMENT_TOO_LARGE,
        )
    opts = start.options
    ingest = IngestOptions.from_settings(s, opts)
    if ingest.chunk_overlap >= ingest.chunk_size:
        raise ProtocolError(
            f"options.chunk_overlap ({ingest.chunk_overlap}) must be smaller than "
            f"chunk_size ({ingest.chunk_size}).",
            code=ErrorCode.INVALID_OPTION,
        )
    limits = JobLimits(
        max_document_bytes=s.max_document_bytes,
        max_frame_bytes=s.max_frame_bytes,
        ack_window_bytes=s.ack_window_bytes,
        max_text_chars=s.max_text_chars,
        max_concurrency=max(s.concurrency, 16),
    )
    model_name, _ = models.get(opts.model)
    return JobSpec(
        start=start,
        model=model_name,
        models=models.names,
        reduce_model=s.reduce_model or None,
        pipeline=PipelineConfig.from_settings(
            s,
            opts,
            model_name=model_name,
            concurrency=min(opts.concurrency or s.concurrency, limits.max_concurrency),
        ),
        ingest=ingest,
        limits=limits,
    )


def _too_big(size: int, limit: int) -> LimitExceeded:
    err = LimitExceeded(
        f"A message of {size} bytes exceeds the frame limit of {limit} bytes; send smaller slices.",
        code=ErrorCode.FRAME_TOO_LARGE,
    )
    err.close_code = CloseCode.MESSAGE_TOO_BIG
    return err
