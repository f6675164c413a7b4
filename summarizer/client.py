"""Async Python client for protocol v1, on the ``websockets`` library.

Upload a file, bytes or a stream of text pieces and iterate over the server's
events (the very models of :mod:`summarizer.protocol`)::

    client = SummarizerClient("ws://127.0.0.1:8000/ws")
    async for event in client.summarize_file("book.pdf"):
        if event.type == "summary.token":
            print(event.text, end="", flush=True)

Flow control: binary frames are sent only while the bytes sent but not yet
acknowledged (``ack.received``) stay within the server's ``ack_window_bytes``,
so a slow server makes the client wait instead of buffering without bound.

Reconnection: if the connection drops before the job ends, the client
reconnects with exponential backoff and full jitter ("Exponential Backoff and
Jitter", AWS Architecture Blog, 2015), sends ``resume`` with the last ``seq`` it
has, continues the upload from the offset the server committed, and goes on
yielding events: none is lost or repeated. Each job is named by the client
(``start.job_id``), so a connection lost before ``accepted`` is recovered too:
the same ``start`` sent again re-attaches to the job. The attempts are counted across
reconnections and start again only when the job made progress (a new event), so
a server that drops every connection is given up on after ``reconnect_attempts``.

Text sources: the client owns the iteration of a ``summarize_text`` source. A
reconnection never cancels (and so never finalizes) the caller's async
generator: the pending ``anext()`` is shielded and picked up again after the
reconnection, and ``end`` is sent only once the source is exhausted. Pieces
longer than the server's ``max_frame_bytes`` are cut (between characters). An
exception raised by the source, or by a piece that cannot be sent, is raised to
the caller of ``summarize_text``.

Leniency: events are parsed leniently, as ``docs/protocol.md`` asks of clients:
fields this version does not know are ignored and event types it does not know
are skipped (logged at DEBUG), so a newer server within v1 does not break it.
The server, in turn, stays strict about what clients send.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import mimetypes
import random
import secrets
import typing
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import TypeAdapter, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from .errors import ErrorCode, TransportError
from .protocol import (
    TERMINAL_TYPES,
    Cancel,
    End,
    Limits,
    Resume,
    ServerEvent,
    Start,
    StartOptions,
    Text,
    dump,
)

if TYPE_CHECKING:
    from .http_client import HttpJob

__all__ = [
    "DEFAULT_URL",
    "ReconnectCallback",
    "SummarizerClient",
    "guess_media_type",
    "parse_event",
    "wire_filename",
]

log = logging.getLogger(__name__)

DEFAULT_URL = "ws://127.0.0.1:8000/ws"

_MEDIA_TYPES = {
    ".pdf": "application/pdf",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
}

ReconnectCallback = Callable[[int, float, str], None]
"""Called before each reconnection attempt with (attempt from 1, delay in seconds, reason)."""


class _RedactSecrets(logging.Filter):
    """Hide tokens and passwords in the websockets library's frame logs (DEBUG).

    Frames are logged truncated in the middle, so the secret values themselves
    are replaced, wherever they appear.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "***")
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_redact = _RedactSecrets()
_frame_log = logging.getLogger("summarizer.client.frames")
_frame_log.addFilter(_redact)


_events: TypeAdapter[ServerEvent] = TypeAdapter(ServerEvent)
_EVENT_TYPES = frozenset(
    model.model_fields["type"].default for model in typing.get_args(typing.get_args(ServerEvent)[0])
)


def parse_event(raw: str | bytes) -> ServerEvent | None:
    """Parse one server event leniently, as protocol.md asks of clients.

    Fields this version does not know (at any depth) are dropped; an event whose
    ``type`` this version does not know gives ``None`` (skip it), and so does an
    event with a value this version does not know (a new progress ``stage``),
    except an ``error``: with an unknown ``code`` it is read as
    ``internal_error`` (its message kept), so it still ends the job.

    Args:
        raw: The frame's JSON text.

    Returns:
        The event, or ``None`` for an unknown event type.

    Raises:
        ValueError: The frame is not a JSON object, or a known event has wrong
            or missing fields (``pydantic.ValidationError`` is a ``ValueError``).
    """
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError(f"A server event must be a JSON object, got {type(data).__name__}.")
    kind = data.get("type")
    if kind not in _EVENT_TYPES:
        log.debug("Skipping an event of unknown type %r", kind)
        return None
    while True:
        try:
            return _events.validate_python(data)
        except ValidationError as exc:
            errors = exc.errors()
            extras = [e["loc"][1:] for e in errors if e["type"] == "extra_forbidden"]
            values = [e["loc"][1:] for e in errors if e["type"] in ("enum", "literal_error")]
            if len(extras) + len(values) != len(errors):
                raise
            if values:
                # A value from a newer server (an error code, a stage): an ``error``
                # still ends the job, with the generic code; other events are skipped.
                if kind == "error" and values == [("code",)]:
                    log.debug("Unknown error code %r, read as internal_error", data["code"])
                    data["code"] = ErrorCode.INTERNAL_ERROR.value
                    continue
                log.debug("Skipping a %r event with values this version does not know: %s", kind, values)
                return None
            for path in extras:  # loc: (tag, field, ..., unknown field)
                _drop(data, path)
            log.debug("Ignored unknown fields in a %r event: %s", kind, extras)


def _drop(data: Any, path: tuple[int | str, ...]) -> None:
    """Delete ``path`` (keys and list indexes) from nested JSON ``data``."""
    for key in path[:-1]:
        data = data[key]
    del data[path[-1]]


def _frame_bytes(text: str) -> int:
    """Bytes of the ``text`` message carrying ``text``, as sent."""
    return len(dump(Text(text=text)).encode("utf-8"))


def _split_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into pieces whose ``text`` messages fit in ``limit`` bytes each.

    Cuts fall between characters (never inside a UTF-8 sequence); JSON escaping
    (quotes, control characters) is counted.

    Args:
        text: The piece to send (``""`` gives no piece).
        limit: The server's ``max_frame_bytes`` (bytes, at least 64).

    Returns:
        The pieces, joined equal to ``text``.
    """
    if not text:
        return []
    overhead = _frame_bytes("")
    if len(text) * 6 + overhead <= limit or _frame_bytes(text) <= limit:
        return [text]
    budget = max(1, limit - overhead)
    pieces: list[str] = []
    start = 0
    while start < len(text):
        n = min(len(text) - start, budget)  # every character takes at least one byte
        while n > 1:
            content = _frame_bytes(text[start : start + n]) - overhead
            if content <= budget:
                break
            n = max(1, min(n - 1, n * budget // content))
        pieces.append(text[start : start + n])
        start += n
    return pieces


def wire_filename(name: str) -> str:
    """``name`` as valid Unicode for ``start.filename``.

    A file name that is not valid UTF-8 reaches Python with lone surrogates
    (``os.fsdecode``'s ``surrogateescape``); each undecodable byte becomes
    U+FFFD, so the name stays readable.
    """
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return name.encode("utf-8", "replace").decode("utf-8")


def guess_media_type(filename: str) -> str:
    """Media type for ``filename`` by extension (``""`` if unknown: the server sniffs)."""
    suffix = Path(filename).suffix.lower()
    return _MEDIA_TYPES.get(suffix) or mimetypes.guess_type(filename)[0] or ""


class _Window:
    """Bytes in flight versus the server's acknowledgement window."""

    def __init__(self, size: int, start: int = 0) -> None:
        self.size = size
        self.sent = start
        self.acked = start
        self._changed = asyncio.Condition()

    async def reserve(self, n: int) -> None:
        """Wait until ``n`` more bytes fit (a lone frame may exceed the window)."""
        async with self._changed:
            await self._changed.wait_for(
                lambda: self.sent == self.acked or self.sent - self.acked + n <= self.size
            )
            self.sent += n

    async def ack(self, received: int) -> None:
        async with self._changed:
            self.acked = max(self.acked, received)
            self._changed.notify_all()


class _Upload:
    """An upload that can restart from what the server committed.

    Attributes:
        failure: The exception that ended the upload for good (not a lost
            connection), to be raised to the caller; ``None`` while it is fine.
    """

    failure: BaseException | None = None

    async def send(
        self, ws: ClientConnection, window: _Window, limits: Limits, frame: int, received: int, messages: int
    ) -> None:
        """Send from byte offset ``received`` / message ``messages`` on, then ``end``."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release what the upload holds once the call is over (default: nothing)."""


class _BytesUpload(_Upload):
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sha256 = hashlib.sha256(data).hexdigest()

    async def send(
        self, ws: ClientConnection, window: _Window, limits: Limits, frame: int, received: int, messages: int
    ) -> None:
        view = memoryview(self.data)
        for offset in range(received, len(self.data), frame):
            piece = view[offset : offset + frame]
            await window.reserve(len(piece))
            await ws.send(bytes(piece))
        await ws.send(dump(End(sha256=self.sha256)))


class _Exhausted:
    """Marks the end of a text source."""


_EXHAUSTED = _Exhausted()


async def _pull(iterator: AsyncIterator[str]) -> str | _Exhausted:
    try:
        return await anext(iterator)
    except StopAsyncIteration:
        return _EXHAUSTED


class _TextUpload(_Upload):
    """Text pieces from an (async) iterable, owned by the client.

    Every piece (cut to the frame limit) is kept, to resend after a reconnect
    from the message the server committed. The pending ``anext()`` runs in its
    own task and is awaited through :func:`asyncio.shield`: cancelling the
    sender (a dropped connection) leaves the caller's generator untouched, and
    the next sender picks the same pending piece up.
    """

    def __init__(self, pieces: AsyncIterable[str] | Iterable[str]) -> None:
        self.source = pieces
        self.pieces: list[str] = []
        self.exhausted = False
        self._sha = hashlib.sha256()
        self._async: AsyncIterator[str] | None = None
        self._sync: Iterator[str] | None = None
        self._fetch: asyncio.Task[str | _Exhausted] | None = None

    async def _next(self) -> str | _Exhausted:
        if not isinstance(self.source, AsyncIterable):
            if self._sync is None:
                self._sync = iter(self.source)
            return next(self._sync, _EXHAUSTED)
        if self._fetch is None:
            if self._async is None:
                self._async = aiter(self.source)
            self._fetch = asyncio.ensure_future(_pull(self._async))
        result = await asyncio.shield(self._fetch)  # a cancelled sender leaves the fetch running
        self._fetch = None
        return result

    async def _fill(self, limit: int) -> None:
        """Take the source's next piece: cut it and append it, or mark the source exhausted."""
        piece = await self._next()
        if isinstance(piece, _Exhausted):
            self.exhausted = True
            return
        if not isinstance(piece, str):
            raise TypeError(f"summarize_text needs str pieces, got {type(piece).__name__}.")
        self._sha.update(piece.encode("utf-8"))  # UnicodeEncodeError (lone surrogates) goes to the caller
        self.pieces.extend(_split_text(piece, limit))

    async def send(
        self, ws: ClientConnection, window: _Window, limits: Limits, frame: int, received: int, messages: int
    ) -> None:
        sent = messages
        while True:
            while sent < len(self.pieces):
                piece = self.pieces[sent]
                await window.reserve(len(piece.encode("utf-8")))
                await ws.send(dump(Text(text=piece)))
                sent += 1
            if self.exhausted:
                break
            await self._fill(limits.max_frame_bytes)
        await ws.send(dump(End(sha256=self._sha.hexdigest())))

    async def close(self) -> None:
        fetch, self._fetch = self._fetch, None
        if fetch is None:
            return
        if not fetch.done():
            fetch.cancel()  # the call is over: nothing will resume the upload
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await fetch


class SummarizerClient:
    """Client for one server.

    Args:
        url: WebSocket URL of the server's ``/ws`` endpoint.
        frame_bytes: Slice size for binary uploads (bytes, default 256 KiB); capped
            by the server's ``max_frame_bytes``.
        open_timeout: Seconds to wait for a connection (default 10).
        token: The server's shared token (``SUMMARIZER_TOKEN``), if it needs one.
        reconnect_attempts: Reconnections tried without the job making progress
            (no new event) before giving up (default 8; 0 disables reconnecting).
            A ``resumed`` answer alone is not progress, so a server that drops
            every connection after it is given up on.
        backoff_base_s: First backoff ceiling in seconds (default 0.5); doubles
            per attempt up to ``backoff_max_s`` (default 10); the delay is drawn
            uniformly below the ceiling (full jitter).
        on_reconnect: Called before each reconnection attempt.

    Each ``summarize_*`` call yields every event up to and including the
    terminal one (``summary``, ``cancelled`` or ``error``), each once.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        frame_bytes: int = 256 * 1024,
        open_timeout: float = 10.0,
        token: str | None = None,
        reconnect_attempts: int = 8,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 10.0,
        on_reconnect: ReconnectCallback | None = None,
    ) -> None:
        self.url = url
        self.frame_bytes = frame_bytes
        self.open_timeout = open_timeout
        self.token = token
        self.reconnect_attempts = reconnect_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.on_reconnect = on_reconnect
        self.job_id: str | None = None
        """The job of the current (or last) ``summarize_*`` call, once accepted."""
        self._ws: ClientConnection | None = None
        self._http_job: HttpJob | None = None
        if token:
            _redact.secrets.add(token)

    async def cancel(self) -> None:
        """Ask the server to cancel the job of the running ``summarize_*`` call."""
        if self._http_job is not None:
            await self._http_job.cancel()
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(dump(Cancel()))

    def summarize_file(
        self,
        path: str | Path,
        *,
        options: StartOptions | None = None,
        transport: Literal["ws", "http"] = "ws",
    ) -> AsyncIterator[ServerEvent]:
        """Upload the file at ``path`` and yield the job's events.

        Args:
            path: The document.
            options: Per-job options.
            transport: ``"ws"`` (default): the WebSocket at :attr:`url`;
                ``"http"``: ``POST /v1/jobs`` and Server-Sent Events on the same
                server (:mod:`summarizer.http_client`), the same events.

        Raises:
            OSError: The file cannot be read.
            TransportError: The server is unreachable, or stayed unreachable
                through every reconnection attempt.
        """
        p = Path(path)
        if transport == "http":
            return self._summarize_http(p, options)
        return self.summarize_bytes(p.read_bytes(), filename=wire_filename(p.name), options=options)

    async def _summarize_http(self, path: Path, options: StartOptions | None) -> AsyncIterator[Any]:
        from .http_client import HttpJob, http_base_url

        job = HttpJob(
            http_base_url(self.url),
            token=self.token,
            open_timeout=self.open_timeout,
            reconnect_attempts=self.reconnect_attempts,
            backoff_base_s=self.backoff_base_s,
            backoff_max_s=self.backoff_max_s,
        )
        self._http_job = job
        try:
            async for event in job.summarize_file(path, options=options):
                self.job_id = job.job_id
                yield event
        finally:
            self._http_job = None

    def summarize_bytes(
        self,
        data: bytes,
        *,
        filename: str = "document",
        media_type: str | None = None,
        options: StartOptions | None = None,
    ) -> AsyncIterator[ServerEvent]:
        """Upload ``data`` as binary frames and yield the job's events.

        Args:
            data: The whole document (PDF, UTF-8 text or Markdown).
            filename: Name shown by the server and used to guess the type
                (undecodable bytes of a file name become U+FFFD).
            media_type: Declared type; guessed from ``filename`` when ``None``.
            options: Per-job options.

        Raises:
            TransportError: As for :meth:`summarize_file`.
        """
        filename = wire_filename(filename)
        start = Start(
            filename=filename,
            media_type=guess_media_type(filename) if media_type is None else media_type,
            size=len(data),
            options=options or StartOptions(),
            token=self.token,
        )
        return self._run(start, _BytesUpload(data))

    def summarize_text(
        self,
        pieces: AsyncIterable[str] | Iterable[str],
        *,
        filename: str = "document.txt",
        media_type: str = "text/plain",
        options: StartOptions | None = None,
    ) -> AsyncIterator[ServerEvent]:
        """Send the document as ``text`` messages, piece by piece as they come.

        Useful when the caller splits or produces the document itself; the server
        starts summarizing before the last piece arrives. The client owns the
        iteration: a reconnection never cancels the source, and ``end`` is sent
        only after the source is exhausted. Pieces above the server's
        ``max_frame_bytes`` are cut between characters.

        Raises:
            TransportError: As for :meth:`summarize_file`.
            TypeError: A piece is not a ``str``.
            UnicodeEncodeError: A piece holds a lone surrogate.
            Exception: Whatever the source raises, as it raised it.
        """
        start = Start(
            filename=wire_filename(filename),
            media_type=media_type,
            options=options or StartOptions(),
            token=self.token,
        )
        return self._run(start, _TextUpload(pieces))

    def resume(self, job_id: str, last_seq: int = 0) -> AsyncIterator[ServerEvent]:
        """Re-open a job (running or finished, until it expires) and yield its events after ``last_seq``.

        The job's upload must be complete (a job resumed this way cannot be fed);
        while it is not, this only follows the job (``resume.upload`` false) and
        leaves the upload to its uploader.

        Raises:
            TransportError: The server is unreachable, or the job is unknown.
        """
        self.job_id = job_id
        return self._run(None, None, job_id=job_id, last_seq=last_seq)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)

    async def _connect(self) -> ClientConnection:
        try:
            return await connect(
                self.url, max_size=None, compression=None, open_timeout=self.open_timeout, logger=_frame_log
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise TransportError(f"Cannot connect to {self.url}: {exc}") from exc

    async def _run(
        self, start: Start | None, upload: _Upload | None, *, job_id: str | None = None, last_seq: int = 0
    ) -> AsyncIterator[ServerEvent]:
        if start is not None and start.options.password:
            _redact.secrets.add(start.options.password)
        if start is not None and start.job_id is None:
            # Name the job ourselves: if the connection drops before ``accepted``,
            # the same ``start`` sent again re-attaches to it instead of orphaning it.
            start = start.model_copy(update={"job_id": secrets.token_hex(16)})
        limits: Limits | None = None  # from ``accepted``
        pending: tuple[int, int] | None = None  # upload offsets ``resumed`` gave before ``accepted``
        try:
            ws = await self._connect()  # the first connection fails loudly
            attempt = 0  # reconnections since the job last made progress
            while True:
                sender: asyncio.Task[None] | None = None
                window: _Window | None = None
                self._ws = ws
                reason = "the connection closed"
                refused: str | None = None  # the server refused this connection's upload
                try:
                    if job_id is None:
                        assert start is not None
                        await ws.send(dump(start))
                    else:
                        resume = Resume(
                            job_id=job_id, last_seq=last_seq, token=self.token, upload=upload is not None
                        )
                        await ws.send(dump(resume))
                    async for raw in ws:
                        if upload is not None and upload.failure is not None:
                            break  # the upload failed: raised below
                        event = parse_event(raw)
                        if event is None:
                            continue  # a type from a newer server
                        if event.type == "resumed":
                            if event.state == "uploading" and upload is not None:
                                if limits is None:  # a re-sent start: ``accepted`` is replayed next
                                    pending = (event.received, event.messages)
                                else:
                                    window, sender = self._start_upload(
                                        ws, upload, limits, event.received, event.messages
                                    )
                            continue
                        if event.type == "error" and event.job_id is None:
                            if event.code == "store_unavailable" and job_id is not None:
                                # The server cannot read its job store now; the job may be
                                # running: resume again after the usual backoff.
                                refused = f"the server could not look the job up ({event.message})"
                                break
                            if event.code == "server_busy" and job_id is not None:
                                # The job moved to another replica (this one lost its lease):
                                # resume, through the load balancer, where it runs now.
                                refused = f"the job moved ({event.message})"
                                break
                            if event.code == "superseded":
                                # Another connection took our upload over (say, ours was cut
                                # and its buffered frames arrived late): resume to take it back.
                                refused = f"the server refused this connection's upload ({event.message})"
                                break
                            if job_id is not None and event.code == "unknown_job":
                                raise TransportError(
                                    f"The server no longer has job {job_id}: {event.message}"
                                )
                            yield event  # refused before any job existed: terminal
                            return
                        if event.seq <= last_seq:
                            continue  # already delivered (cannot happen with a correct server)
                        last_seq = event.seq
                        attempt = 0  # real progress: a new event of the job
                        if event.type == "accepted":
                            job_id = self.job_id = event.job_id
                            limits = event.limits
                            if upload is not None:
                                received, messages = pending or (0, 0)
                                window, sender = self._start_upload(ws, upload, limits, received, messages)
                        elif event.type == "ack" and window is not None:
                            await window.ack(event.received)
                        yield event
                        if event.type in TERMINAL_TYPES:
                            return
                    reason = refused or f"the server closed the connection (code {ws.close_code})"
                except ConnectionClosed as exc:
                    reason = f"the connection was lost ({exc})"
                finally:
                    self._ws = None
                    await _stop(sender)
                    await ws.close()
                if upload is not None and upload.failure is not None:
                    raise upload.failure
                if job_id is None and start is None:
                    raise TransportError(f"The connection to {self.url} closed: {reason}.")
                pending = None
                ws, attempt = await self._reconnect(reason, attempt)
        finally:
            if upload is not None:
                await upload.close()

    async def _reconnect(self, reason: str, attempt: int) -> tuple[ClientConnection, int]:
        """Connect again after backoff; returns the connection and the attempts used so far."""
        while True:
            attempt += 1
            if attempt > self.reconnect_attempts:
                raise TransportError(
                    f"Gave up after {self.reconnect_attempts} reconnection attempts: {reason}."
                )
            delay = self._backoff(attempt)
            log.info("%s; reconnecting in %.2f s (attempt %d)", reason, delay, attempt)
            if self.on_reconnect is not None:
                self.on_reconnect(attempt, delay, reason)
            await asyncio.sleep(delay)
            try:
                return await self._connect(), attempt
            except TransportError as exc:
                reason = exc.message

    def _start_upload(
        self, ws: ClientConnection, upload: _Upload, limits: Limits, received: int, messages: int
    ) -> tuple[_Window, asyncio.Task[None]]:
        window = _Window(limits.ack_window_bytes, start=received)
        frame = max(1, min(self.frame_bytes, limits.max_frame_bytes))
        return window, asyncio.create_task(
            _send_upload(ws, upload, window, limits, frame, received, messages)
        )


async def _send_upload(
    ws: ClientConnection,
    upload: _Upload,
    window: _Window,
    limits: Limits,
    frame: int,
    received: int,
    messages: int,
) -> None:
    """Run ``upload.send``; on a failure other than a lost connection, end the connection and re-raise.

    Closing the connection ends the reader's wait for events, which then raises
    the failure to the caller (see :func:`_stop`); the server is asked to cancel
    the job first, so it frees its slot at once.
    """
    try:
        await upload.send(ws, window, limits, frame, received, messages)
    except ConnectionClosed:
        return  # the reader sees it too, and reconnects
    except Exception as exc:
        upload.failure = exc  # before the cancel: the reader must not mistake its answer for the end
        with contextlib.suppress(ConnectionClosed):
            await ws.send(dump(Cancel()))
        await ws.close()
        raise


async def _stop(sender: asyncio.Task[None] | None) -> None:
    """Cancel the upload task if it still runs, and wait for it."""
    if sender is not None and not sender.done():
        sender.cancel()
    if sender is not None:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender  # its failure, if any, is in ``upload.failure``
