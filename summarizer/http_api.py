"""The HTTP twin of the WebSocket protocol: ``/v1/jobs`` with Server-Sent Events.

For clients that cannot hold a WebSocket (serverless functions, corporate
proxies, ``curl`` in a shell script). Same jobs, same store, same events and the
same ``seq`` as ``/ws``: a job started here can be followed over the WebSocket
(``resume``) and the other way round. ``docs/http.md`` documents the routes::

    POST   /v1/jobs                 multipart/form-data: "options" (JSON, optional), then "file"
    GET    /v1/jobs/{id}            {"job_id", "state", "last_seq", "summary"?, "error"?}
    GET    /v1/jobs/{id}/events     text/event-stream; resumes after Last-Event-ID or ?after=
    DELETE /v1/jobs/{id}            cancel

The upload is parsed as it arrives (``python-multipart``'s streaming parser) and
the file part is fed to the job slice by slice: the body is never held in
memory, a ``Content-Length`` above the limit is refused before any byte is
read, and a body without one is refused as soon as it passes the limit.

An event stream reads the job's log by ``seq`` and writes one event at a time,
waiting for the socket to drain: a slow reader holds one event, not a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message, Send

from .errors import ErrorCode, LimitExceeded, ProtocolError, SummarizerError, Superseded
from .jobs import Job, JobManager
from .jobs.eventlog import StoredEvent
from .pacing import take_turn
from .protocol import ServerEvent, Start, StartOptions
from .session import build_job_spec
from .settings import Settings

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

__all__ = ["FORM_OVERHEAD_BYTES", "http_routes", "sse_event"]

log = logging.getLogger(__name__)

FORM_OVERHEAD_BYTES = 64 * 1024
"""Request bytes allowed beyond ``max_document_bytes``: boundaries, part headers, options."""

_SLICE_BYTES = 256 * 1024
"""Largest slice of the file part handed to the job at once (bytes)."""

_OPTIONS_MAX_BYTES = 16 * 1024
"""Largest ``options`` part (bytes)."""

_DRAIN_BYTES = 4 * 1024 * 1024
_DRAIN_S = 5.0
"""An error found mid-body is answered after reading (and dropping) at most this
many more bytes, for at most this long: a client that is still sending then
reads the answer instead of a connection reset. A longer body is cut off."""
"""Largest ``options`` part (bytes)."""

_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_JSON: 400,
    ErrorCode.INVALID_MESSAGE: 400,
    ErrorCode.UNEXPECTED_MESSAGE: 400,
    ErrorCode.SIZE_MISMATCH: 400,
    ErrorCode.CHECKSUM_MISMATCH: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.IDLE_TIMEOUT: 408,
    ErrorCode.UNKNOWN_JOB: 404,
    ErrorCode.SUPERSEDED: 409,
    ErrorCode.DOCUMENT_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.SERVER_BUSY: 503,
    ErrorCode.STORE_UNAVAILABLE: 503,
    ErrorCode.STORAGE_ERROR: 503,
    ErrorCode.INTERNAL_ERROR: 500,
}
"""HTTP status of an error code; any other code (options, models, the document) is 422."""


class _JSON(JSONResponse):
    """JSON ending in a newline, so that ``curl`` output reads well in a shell."""

    def render(self, content: Any) -> bytes:
        return super().render(content) + b"\n"


def _error(exc: SummarizerError, **extra: Any) -> JSONResponse:
    """``exc`` as ``{"code", "message", "retryable"}`` with the matching HTTP status."""
    status = _STATUS.get(exc.code, 422)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="summarizer"'
    if status == 503:
        headers["Retry-After"] = "60"
    body = {"code": str(exc.code), "message": exc.message, "retryable": exc.retryable, **extra}
    return _JSON(body, status_code=status, headers=headers)


async def _refuse_body(
    request: Request,
    exc: SummarizerError,
    *,
    body: AsyncIterator[bytes] | None = None,
    received: int = 0,
    drain: bool = True,
    **extra: Any,
) -> JSONResponse:
    """Answer ``exc`` before the request body was read to its end: the one path of every early refusal.

    The rest of a short body (at most ``_DRAIN_BYTES`` more, for at most
    ``_DRAIN_S``) is read and dropped first, so that a client still sending
    reads the answer instead of a reset connection; a longer one is not
    waited for. The connection is closed after the answer either way.

    Args:
        request: The refused request.
        exc: What to answer (its code gives the HTTP status).
        body: The body stream if the handler has started reading it (default: ``request.stream()``).
        received: Body bytes already read (counted against ``Content-Length``).
        drain: ``False`` to skip reading the rest (a body that stalled).
        **extra: More fields of the JSON answer (``job_id``).
    """
    if drain:
        with contextlib.suppress(ClientDisconnect, OSError):
            stream = request.stream() if body is None else body
            await _drain(stream, received, request.headers.get("content-length"))
    response = _error(exc, **extra)
    response.headers["Connection"] = "close"
    return response


def _check_token(request: Request) -> None:
    """Raise ``unauthorized`` unless the request has ``Authorization: Bearer <token>`` (if a token is set)."""
    settings: Settings = request.app.state.settings
    if settings.token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = settings.token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), expected):
        raise SummarizerError(
            "This server requires a token: send 'Authorization: Bearer <token>'.",
            code=ErrorCode.UNAUTHORIZED,
        )


def _job(request: Request) -> Job:
    """The job named in the path.

    Raises:
        SummarizerError: ``unknown_job`` if it never existed or has expired.
    """
    jobs: JobManager = request.app.state.jobs
    job_id = request.path_params["job_id"]
    job = jobs.get(job_id)
    if job is None:
        raise SummarizerError(
            f"No job {job_id}: it never existed or has expired.", code=ErrorCode.UNKNOWN_JOB
        )
    return job


def _endpoint(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Check the token, then run ``handler``; a :class:`SummarizerError` becomes its JSON answer."""

    async def endpoint(request: Request) -> Response:
        try:
            _check_token(request)
            return await handler(request)
        except SummarizerError as exc:
            if request.method != "POST":
                return _error(exc)
            return await _refuse_body(request, exc)

    endpoint.__name__ = handler.__name__
    endpoint.__doc__ = handler.__doc__
    return endpoint


# -- POST /v1/jobs --------------------------------------------------------------------------


@dataclass
class _Part:
    """One part of the form as the parser reports it."""

    name: str = ""
    filename: str | None = None
    content_type: str = ""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class _Form:
    """Streaming ``multipart/form-data`` reader over ``python-multipart``.

    The parser's callbacks are synchronous; they queue what they saw
    (``("begin", part)``, ``("data", bytes)``, ``("end", part)``) and
    :meth:`pieces` yields the queue after each network read, so at most one
    read's worth (tens of KiB) is ever pending.

    Args:
        boundary: The boundary from the request's ``Content-Type``.
        max_body_bytes: Request bytes accepted at most.
    """

    def __init__(self, boundary: bytes, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.received = 0
        self._pending: list[tuple[str, Any]] = []
        self._part = _Part()
        self._field = bytearray()
        self._value = bytearray()
        callbacks: MultipartCallbacks = {
            "on_part_begin": self._begin,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
        }
        self._parser = MultipartParser(boundary, callbacks)

    def _begin(self) -> None:
        self._part = _Part()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._part.headers.append((bytes(self._field).lower(), bytes(self._value)))
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        part = self._part
        for name, value in part.headers:
            if name == b"content-disposition":
                _, params = parse_options_header(value)
                part.name = params.get(b"name", b"").decode("utf-8", "replace")
                if b"filename" in params:
                    part.filename = params[b"filename"].decode("utf-8", "replace")
            elif name == b"content-type":
                part.content_type = value.decode("latin-1").split(";")[0].strip().lower()
        self._pending.append(("begin", part))

    def _data(self, data: bytes, start: int, end: int) -> None:
        self._pending.append(("data", data[start:end]))

    def _end(self) -> None:
        self._pending.append(("end", self._part))

    async def pieces(self, stream: AsyncIterator[bytes], idle_s: float) -> AsyncIterator[tuple[str, Any]]:
        """Parse ``stream`` and yield what each read held.

        Args:
            stream: The request body.
            idle_s: Longest wait for the next bytes of the body (seconds).

        Raises:
            LimitExceeded: ``document_too_large`` once more than ``max_body_bytes`` arrived.
            ProtocolError: ``invalid_message`` for a malformed body.
            SummarizerError: ``idle_timeout`` when the body stalls for ``idle_s``.
        """
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(_next(stream), idle_s)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise SummarizerError(
                        f"The upload stalled: no bytes for {idle_s:g} s.", code=ErrorCode.IDLE_TIMEOUT
                    ) from None
                self.received += len(chunk)
                if self.received > self.max_body_bytes:
                    raise LimitExceeded(
                        f"The request body passed {self.max_body_bytes} bytes, the server's document "
                        "limit plus room for the form.",
                        code=ErrorCode.DOCUMENT_TOO_LARGE,
                    )
                self._parser.write(chunk)
                for piece in self._pending:
                    yield piece
                self._pending.clear()
            self._parser.finalize()
        except FormParserError as exc:
            raise ProtocolError(f"The multipart/form-data body is malformed: {exc}") from None
        for piece in self._pending:
            yield piece
        self._pending.clear()


def _parse_options(raw: bytes) -> StartOptions:
    """The ``options`` part: a JSON object with the fields of ``start.options``.

    Raises:
        ProtocolError: ``bad_json`` (not a JSON object) or ``invalid_option`` (a wrong field).
    """
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"The 'options' part is not valid JSON: {exc}", code=ErrorCode.BAD_JSON) from None
    if not isinstance(data, dict):
        raise ProtocolError("The 'options' part must be a JSON object.", code=ErrorCode.BAD_JSON)
    try:
        return StartOptions.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'options'}: {err['msg']}" for err in exc.errors()
        )
        raise ProtocolError(f"Invalid options: {problems}.", code=ErrorCode.INVALID_OPTION) from None


def _media_type(part: _Part) -> str:
    """The declared media type of the file part; generic ones mean "let the server sniff"."""
    generic = {"", "application/octet-stream", "binary/octet-stream"}
    return "" if part.content_type in generic else part.content_type


class _Upload:
    """Feeds the file part into a new job in slices of at most ``_SLICE_BYTES``.

    It is the job's one feeder (:meth:`Job.take_over`): should a WebSocket
    ``resume`` take the upload over, the rest of this body is refused
    (``superseded``, 409) and the job goes on with the new uploader.
    """

    def __init__(self, job: Job, slice_bytes: int) -> None:
        self.job = job
        self.slice_bytes = slice_bytes
        self.buffer = bytearray()

    async def feed(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= self.slice_bytes:
            await self.flush()

    async def flush(self) -> None:
        while self.buffer and not self.job.finished:
            piece = bytes(self.buffer[: self.slice_bytes])
            del self.buffer[: self.slice_bytes]
            self.job.check_feeder(self)
            await self.job.feed_bytes(piece)
        self.buffer.clear()


def _job_body(job: Job, status: int) -> JSONResponse:
    return _JSON(
        {
            "job_id": job.job_id,
            "state": job.state.value,
            "last_seq": job.last_seq,
            "events_url": f"/v1/jobs/{job.job_id}/events",
            "status_url": f"/v1/jobs/{job.job_id}",
        },
        status_code=status,
    )


async def create_job(request: Request) -> Response:
    """``POST /v1/jobs``: a multipart form with an optional ``options`` part, then a ``file`` part.

    Answers ``201`` with ``{"job_id", "state", "last_seq", "events_url", "status_url"}``
    once the file is stored; the job starts on the first bytes. Errors answer
    ``{"code", "message", "retryable"}`` (400, 401, 413, 415, 422, 503); an error
    found while the body still arrives is answered at once and closes the
    connection (with ``job_id`` if the job existed).
    """
    settings: Settings = request.app.state.settings
    jobs: JobManager = request.app.state.jobs
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        return await _refuse_body(
            request,
            SummarizerError(
                "Send the document as multipart/form-data with a 'file' part "
                "(curl -F file=@book.pdf); got Content-Type "
                f"{request.headers.get('content-type', '(none)')!r}.",
                code=ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            ),
        )
    max_body = settings.max_document_bytes + FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        return await _refuse_body(
            request,
            LimitExceeded(
                f"The request is {int(declared)} bytes; this server accepts documents of at most "
                f"{settings.max_document_bytes} bytes.",
                code=ErrorCode.DOCUMENT_TOO_LARGE,
            ),
        )
    form = _Form(params[b"boundary"], max_body)
    body = request.stream()
    options = StartOptions()
    options_raw: bytearray | None = None
    upload: _Upload | None = None
    current = ""
    job: Job | None = None
    try:
        async for kind, value in form.pieces(body, settings.idle_timeout_s):
            if kind == "begin":
                current = value.name
                if current == "options":
                    if upload is not None:
                        raise ProtocolError(
                            "The 'options' part must come before the 'file' part.",
                            code=ErrorCode.UNEXPECTED_MESSAGE,
                        )
                    options_raw = bytearray()
                elif current == "file":
                    if upload is not None:
                        raise ProtocolError(
                            "Send one 'file' part per job.", code=ErrorCode.UNEXPECTED_MESSAGE
                        )
                    if options_raw is not None:
                        options = _parse_options(bytes(options_raw))
                    start = Start(
                        filename=(value.filename or "document")[:1024],
                        media_type=_media_type(value)[:255],
                        options=options,
                    )
                    models = request.app.state.models
                    await take_turn()  # a burst of posts is spread over loop iterations
                    job = jobs.create(build_job_spec(start, settings=settings, models=models))
                    job.readers += 1
                    upload = _Upload(job, min(_SLICE_BYTES, settings.max_frame_bytes))
                    job.take_over(upload)
                    job.run()
                else:
                    raise ProtocolError(
                        f"Unknown form part {current!r}; expected 'options' and 'file'.",
                        code=ErrorCode.INVALID_MESSAGE,
                    )
            elif kind == "data":
                if current == "options" and options_raw is not None:
                    options_raw += value
                    if len(options_raw) > _OPTIONS_MAX_BYTES:
                        raise ProtocolError(
                            f"The 'options' part exceeds {_OPTIONS_MAX_BYTES} bytes.",
                            code=ErrorCode.INVALID_OPTION,
                        )
                elif upload is not None and not upload.job.finished:
                    await upload.feed(value)
            elif kind == "end" and current == "file" and upload is not None:
                await upload.flush()
            if job is not None and job.finished:
                break  # the job failed on what it got (say, not a PDF): say so now, stop reading
        if job is None:
            raise ProtocolError("The form has no 'file' part.", code=ErrorCode.INVALID_MESSAGE)
        if not job.finished:
            assert upload is not None
            job.check_feeder(upload)
            await job.end(None)
    except ClientDisconnect:
        if job is not None:
            job.fail(
                ProtocolError(
                    "The upload was interrupted: the request ended before the form was complete.",
                    code=ErrorCode.INVALID_MESSAGE,
                )
            )
        return Response(status_code=400)
    except SummarizerError as exc:
        if job is not None and not isinstance(exc, Superseded):  # superseded: the job goes on
            job.fail(exc)
        extra = {} if job is None else {"job_id": job.job_id}
        # A stalled body is not waited for again.
        drain = exc.code is not ErrorCode.IDLE_TIMEOUT
        return await _refuse_body(request, exc, body=body, received=form.received, drain=drain, **extra)
    finally:
        if job is not None:
            job.readers -= 1
            jobs.release(job)
    # A job that already failed (say, the file is not a PDF) is answered with its error.
    error = await _terminal_error(job)
    if error is None:
        return _job_body(job, 201)
    return await _refuse_body(request, error, body=body, received=form.received, job_id=job.job_id)


async def _drain(body: AsyncIterator[bytes], received: int, declared: str | None) -> None:
    """Read and drop the rest of a refused request body, if it is short (see ``_DRAIN_BYTES``)."""
    if declared is not None and declared.isdigit() and int(declared) - received > _DRAIN_BYTES:
        return
    dropped = 0
    with contextlib.suppress(ClientDisconnect, TimeoutError, RuntimeError):
        async with asyncio.timeout(_DRAIN_S):
            async for chunk in body:
                dropped += len(chunk)
                if dropped > _DRAIN_BYTES:
                    return


async def _last_event(job: Job) -> ServerEvent | None:
    """The terminal event of a finished job (``None`` for a job still running)."""
    last: StoredEvent | None = None
    if job.finished:
        async for event in job.events(max(job.last_seq - 1, 0)):
            last = event
    return None if last is None else last.event


async def _terminal_error(job: Job) -> SummarizerError | None:
    """The ``error`` that ended a failed job, as an exception (``None`` if none)."""
    last = await _last_event(job)
    if last is None or last.type != "error":
        return None
    return SummarizerError(last.message, code=ErrorCode(last.code), retryable=last.retryable)


# -- GET /v1/jobs/{id} ----------------------------------------------------------------------


async def job_status(request: Request) -> Response:
    """``GET /v1/jobs/{id}``: ``job_id``, ``state``, ``last_seq``; ``summary`` or ``error`` once finished."""
    job = _job(request)
    body: dict[str, Any] = {
        "job_id": job.job_id,
        "state": job.state.value,
        "last_seq": job.last_seq,
        "events_url": f"/v1/jobs/{job.job_id}/events",
    }
    last = await _last_event(job)
    if last is not None:
        if last.type == "summary":
            body["summary"] = last.text
            body["missing_pages"] = [list(r) for r in last.missing_pages]
        elif last.type == "error":
            body["error"] = {"code": str(last.code), "message": last.message}
    return _JSON(body)


async def cancel_job(request: Request) -> Response:
    """``DELETE /v1/jobs/{id}``: cancel; ``202`` while it stops, ``200`` if it had already ended."""
    job = _job(request)
    if job.finished:
        return _job_body(job, 200)
    job.cancel()
    return _job_body(job, 202)


# -- GET /v1/jobs/{id}/events ---------------------------------------------------------------


def sse_event(event: StoredEvent) -> bytes:
    """One stored event as a Server-Sent Event: ``id: <seq>``, ``event: <type>``, ``data: <JSON>``.

    ``data`` is the event's wire JSON exactly as the WebSocket sends it (serialized once,
    by the job's :class:`~summarizer.jobs.eventlog.EventLog`).
    """
    return f"id: {event.seq}\nevent: {event.type}\ndata: {event.body}\n\n".encode()


def _after_seq(request: Request) -> int:
    """The last ``seq`` the reader has: the ``Last-Event-ID`` header, else ``?after=`` (default 0).

    A reconnecting ``EventSource`` sends ``Last-Event-ID`` itself; it wins over
    the ``after`` of the URL it first opened.

    Raises:
        ProtocolError: ``invalid_message`` if the value is not a whole number >= 0.
    """
    raw = request.headers.get("last-event-id")
    source = "Last-Event-ID"
    if raw is None or not raw.strip():
        raw, source = request.query_params.get("after", "0"), "after"
    raw = raw.strip()
    if not raw.isdigit():
        raise ProtocolError(f"{source} must be a whole number >= 0 (a seq), got {raw!r}.")
    return int(raw)


class _EventStream(StreamingResponse):
    """A streaming response whose every write must complete within ``send_timeout_s``.

    A reader that stops reading fills its socket buffers; the next write then
    waits. After ``send_timeout_s`` the stream gives up without finishing the
    response, so the server closes the connection: the reader sees a cut stream
    (not a clean end) and can resume with ``Last-Event-ID``. A stalled reader
    thus holds its socket for a bounded time.
    """

    def __init__(self, content: AsyncIterator[bytes], *, send_timeout_s: float, headers: dict[str, str]):
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self.events = content
        self.send_timeout_s = send_timeout_s

    async def stream_response(self, send: Send) -> None:
        async def timed_send(message: Message) -> None:
            await asyncio.wait_for(send(message), self.send_timeout_s)

        try:
            await super().stream_response(timed_send)
        except TimeoutError:
            log.warning("an event stream's reader read nothing for %g s; closing it", self.send_timeout_s)
            with contextlib.suppress(Exception):
                await self.events.aclose()  # type: ignore[attr-defined]


async def _next(events: AsyncIterator[Any]) -> Any:
    return await anext(events)


async def _sse(job: Job, jobs: JobManager, after_seq: int, keepalive_s: float) -> AsyncIterator[bytes]:
    """The job's events after ``after_seq`` as SSE, with ``: keep-alive`` comments while idle.

    Ends after the terminal event. Each event is read from the job's log only
    when the previous one was written (no queue per reader).
    """
    job.readers += 1
    events = job.events(after_seq)
    pending: asyncio.Future[Any] | None = None
    try:
        yield b": summarizer event stream\n\n"
        while True:
            if pending is None:
                pending = asyncio.ensure_future(_next(events))
            done, _ = await asyncio.wait({pending}, timeout=keepalive_s)
            if not done:
                yield b": keep-alive\n\n"
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield sse_event(event)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        with contextlib.suppress(Exception):
            await events.aclose()  # type: ignore[attr-defined]
        job.readers -= 1
        jobs.release(job)


async def job_events(request: Request) -> Response:
    """``GET /v1/jobs/{id}/events``: replay after ``Last-Event-ID`` / ``?after=``, then live, as SSE."""
    job = _job(request)
    after = min(_after_seq(request), job.last_seq)
    settings: Settings = request.app.state.settings
    jobs: JobManager = request.app.state.jobs
    return _EventStream(
        _sse(job, jobs, after, settings.keepalive_s),
        send_timeout_s=settings.send_timeout_s,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def http_routes() -> list[Route]:
    """The ``/v1`` routes, to mount beside ``/ws`` (they use ``app.state.jobs``, ``settings``, ``models``)."""
    return [
        Route("/v1/jobs", _endpoint(create_job), methods=["POST"]),
        Route("/v1/jobs/{job_id}", _endpoint(job_status), methods=["GET"]),
        Route("/v1/jobs/{job_id}", _endpoint(cancel_job), methods=["DELETE"]),
        Route("/v1/jobs/{job_id}/events", _endpoint(job_events), methods=["GET"]),
    ]
