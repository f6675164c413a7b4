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
yielding events: none is lost or repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import mimetypes
import random
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from .errors import TransportError
from .protocol import (
    TERMINAL_TYPES,
    Cancel,
    End,
    Resume,
    Start,
    StartOptions,
    Text,
    dump,
    parse_server,
)

if TYPE_CHECKING:
    from .http_client import HttpJob

__all__ = ["DEFAULT_URL", "ReconnectCallback", "SummarizerClient", "guess_media_type"]

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
    """An upload that can restart from what the server committed."""

    async def send(
        self, ws: ClientConnection, window: _Window, frame: int, received: int, messages: int
    ) -> None:
        raise NotImplementedError


class _BytesUpload(_Upload):
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.sha256 = hashlib.sha256(data).hexdigest()

    async def send(
        self, ws: ClientConnection, window: _Window, frame: int, received: int, messages: int
    ) -> None:
        view = memoryview(self.data)
        for offset in range(received, len(self.data), frame):
            piece = view[offset : offset + frame]
            await window.reserve(len(piece))
            await ws.send(bytes(piece))
        await ws.send(dump(End(sha256=self.sha256)))


class _TextUpload(_Upload):
    """Text pieces from an (async) iterable; pieces are kept to resend after a reconnect."""

    def __init__(self, pieces: AsyncIterable[str] | Iterable[str]) -> None:
        self.source = pieces
        self.pieces: list[str] = []
        self.exhausted = False
        self._iterator: Any = None

    async def _next(self) -> str | None:
        if self._iterator is None:
            if isinstance(self.source, AsyncIterable):
                self._iterator = aiter(self.source)
            else:
                self._iterator = iter(self.source)
        try:
            if isinstance(self.source, AsyncIterable):
                piece: str = await anext(self._iterator)
            else:
                piece = next(self._iterator)
        except (StopAsyncIteration, StopIteration):
            self.exhausted = True
            return None
        self.pieces.append(piece)
        return piece

    async def send(
        self, ws: ClientConnection, window: _Window, frame: int, received: int, messages: int
    ) -> None:
        async def send_one(piece: str) -> None:
            await window.reserve(len(piece.encode("utf-8")))
            await ws.send(dump(Text(text=piece)))

        for piece in self.pieces[messages:]:
            await send_one(piece)
        while not self.exhausted:
            fresh = await self._next()
            if fresh is not None:
                await send_one(fresh)
        sha = hashlib.sha256()
        for piece in self.pieces:
            sha.update(piece.encode("utf-8"))
        await ws.send(dump(End(sha256=sha.hexdigest())))


class SummarizerClient:
    """Client for one server.

    Args:
        url: WebSocket URL of the server's ``/ws`` endpoint.
        frame_bytes: Slice size for binary uploads (bytes, default 256 KiB); capped
            by the server's ``max_frame_bytes``.
        open_timeout: Seconds to wait for a connection (default 10).
        token: The server's shared token (``SUMMARIZER_TOKEN``), if it needs one.
        reconnect_attempts: Reconnections tried in a row before giving up
            (default 8; 0 disables reconnecting).
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
        self._limits: Any = None
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
    ) -> AsyncIterator[Any]:
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
        return self.summarize_bytes(p.read_bytes(), filename=p.name, options=options)

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
    ) -> AsyncIterator[Any]:
        """Upload ``data`` as binary frames and yield the job's events.

        Args:
            data: The whole document (PDF, UTF-8 text or Markdown).
            filename: Name shown by the server and used to guess the type.
            media_type: Declared type; guessed from ``filename`` when ``None``.
            options: Per-job options.

        Raises:
            TransportError: As for :meth:`summarize_file`.
        """
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
    ) -> AsyncIterator[Any]:
        """Send the document as ``text`` messages, piece by piece as they come.

        Useful when the caller splits or produces the document itself; the server
        starts summarizing before the last piece arrives.

        Raises:
            TransportError: As for :meth:`summarize_file`.
        """
        start = Start(
            filename=filename, media_type=media_type, options=options or StartOptions(), token=self.token
        )
        return self._run(start, _TextUpload(pieces))

    def resume(self, job_id: str, last_seq: int = 0) -> AsyncIterator[Any]:
        """Re-open a job (running or finished, until it expires) and yield its events after ``last_seq``.

        The job's upload must be complete (a job resumed this way cannot be fed).

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
    ) -> AsyncIterator[Any]:
        attempt = 0
        if start is not None and start.options.password:
            _redact.secrets.add(start.options.password)
        ws = await self._connect()  # the first connection fails loudly
        while True:
            sender: asyncio.Task[None] | None = None
            window: _Window | None = None
            self._ws = ws
            reason = "the connection closed"
            try:
                if job_id is None:
                    assert start is not None
                    await ws.send(dump(start))
                else:
                    await ws.send(dump(Resume(job_id=job_id, last_seq=last_seq, token=self.token)))
                async for raw in ws:
                    event = parse_server(raw)
                    if event.type == "resumed":
                        attempt = 0
                        if event.state == "uploading" and upload is not None:
                            window, sender = self._start_upload(ws, upload, event.received, event.messages)
                        continue
                    if event.type == "error" and event.job_id is None:
                        if job_id is not None and event.code == "unknown_job":
                            raise TransportError(f"The server no longer has job {job_id}: {event.message}")
                        yield event  # refused before any job existed: terminal
                        return
                    if event.seq <= last_seq:
                        continue  # already delivered (cannot happen with a correct server)
                    last_seq = event.seq
                    if event.type == "accepted":
                        job_id = self.job_id = event.job_id
                        if upload is not None:
                            window, sender = self._start_upload(ws, upload, 0, 0, event)
                    elif event.type == "ack" and window is not None:
                        await window.ack(event.received)
                    yield event
                    if event.type in TERMINAL_TYPES:
                        return
                reason = f"the server closed the connection (code {ws.close_code})"
            except ConnectionClosed as exc:
                reason = f"the connection was lost ({exc})"
            finally:
                self._ws = None
                if sender is not None:
                    sender.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                        await sender
                await ws.close()
            if job_id is None:
                raise TransportError(
                    f"The connection to {self.url} closed before the job was accepted: {reason}."
                )
            ws, attempt = await self._reconnect(reason, attempt)

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
        self, ws: ClientConnection, upload: _Upload, received: int, messages: int, accepted: Any = None
    ) -> tuple[_Window, asyncio.Task[None]]:
        limits = accepted.limits if accepted is not None else self._limits
        self._limits = limits
        window = _Window(limits.ack_window_bytes, start=received)
        frame = max(1, min(self.frame_bytes, limits.max_frame_bytes))
        return window, asyncio.create_task(upload.send(ws, window, frame, received, messages))
