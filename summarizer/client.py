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
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import mimetypes
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from .errors import TransportError
from .protocol import TERMINAL_TYPES, Cancel, End, Start, StartOptions, Text, dump, parse_server

__all__ = ["DEFAULT_URL", "SummarizerClient", "guess_media_type"]

DEFAULT_URL = "ws://127.0.0.1:8000/ws"

_MEDIA_TYPES = {
    ".pdf": "application/pdf",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
}


def guess_media_type(filename: str) -> str:
    """Media type for ``filename`` by extension (``""`` if unknown: the server sniffs)."""
    suffix = Path(filename).suffix.lower()
    return _MEDIA_TYPES.get(suffix) or mimetypes.guess_type(filename)[0] or ""


class _Window:
    """Bytes in flight versus the server's acknowledgement window."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0
        self.acked = 0
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


class SummarizerClient:
    """Client for one server.

    Args:
        url: WebSocket URL of the server's ``/ws`` endpoint.
        frame_bytes: Slice size for binary uploads (bytes, default 256 KiB); capped
            by the server's ``max_frame_bytes``.
        open_timeout: Seconds to wait for the connection (default 10).

    Each ``summarize_*`` call opens its own connection and yields every event
    up to and including the terminal one (``summary``, ``cancelled`` or ``error``).
    """

    def __init__(
        self, url: str = DEFAULT_URL, *, frame_bytes: int = 256 * 1024, open_timeout: float = 10.0
    ) -> None:
        self.url = url
        self.frame_bytes = frame_bytes
        self.open_timeout = open_timeout
        self._ws: ClientConnection | None = None

    async def cancel(self) -> None:
        """Ask the server to cancel the job of the running ``summarize_*`` call."""
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._ws.send(dump(Cancel()))

    def summarize_file(self, path: str | Path, *, options: StartOptions | None = None) -> AsyncIterator[Any]:
        """Upload the file at ``path`` and yield the job's events.

        Raises:
            OSError: The file cannot be read.
            TransportError: The server is unreachable or the connection drops.
        """
        p = Path(path)
        return self.summarize_bytes(p.read_bytes(), filename=p.name, options=options)

    async def summarize_bytes(
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
            TransportError: The server is unreachable or the connection drops.
        """
        start = Start(
            filename=filename,
            media_type=guess_media_type(filename) if media_type is None else media_type,
            size=len(data),
            options=options or StartOptions(),
        )

        async def upload(ws: ClientConnection, window: _Window, frame: int) -> None:
            view = memoryview(data)
            for offset in range(0, len(data), frame):
                piece = view[offset : offset + frame]
                await window.reserve(len(piece))
                await ws.send(bytes(piece))
            await ws.send(dump(End(sha256=hashlib.sha256(data).hexdigest())))

        async for event in self._session(start, upload):
            yield event

    async def summarize_text(
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
            TransportError: The server is unreachable or the connection drops.
        """
        start = Start(filename=filename, media_type=media_type, options=options or StartOptions())

        async def upload(ws: ClientConnection, window: _Window, frame: int) -> None:
            sha = hashlib.sha256()

            async def send(piece: str) -> None:
                encoded = piece.encode("utf-8")
                sha.update(encoded)
                await window.reserve(len(encoded))
                await ws.send(dump(Text(text=piece)))

            if isinstance(pieces, AsyncIterable):
                async for piece in pieces:
                    await send(piece)
            else:
                for piece in pieces:
                    await send(piece)
            await ws.send(dump(End(sha256=sha.hexdigest())))

        async for event in self._session(start, upload):
            yield event

    async def _session(self, start: Start, upload: Any) -> AsyncIterator[Any]:
        try:
            ws = await connect(self.url, max_size=None, compression=None, open_timeout=self.open_timeout)
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise TransportError(f"Cannot connect to {self.url}: {exc}") from exc
        self._ws = ws
        sender: asyncio.Task[None] | None = None
        try:
            await ws.send(dump(start))
            async for raw in ws:
                event = parse_server(raw)
                if event.type == "accepted":
                    window = _Window(event.limits.ack_window_bytes)
                    frame = max(1, min(self.frame_bytes, event.limits.max_frame_bytes))
                    sender = asyncio.create_task(upload(ws, window, frame))
                elif event.type == "ack" and sender is not None:
                    await window.ack(event.received)
                yield event
                if event.type in TERMINAL_TYPES:
                    return
            raise TransportError(
                f"The server closed the connection before the job ended "
                f"(code {ws.close_code}, reason {ws.close_reason!r})."
            )
        except ConnectionClosed as exc:
            raise TransportError(f"The connection to {self.url} was lost: {exc}") from exc
        finally:
            self._ws = None
            if sender is not None and not sender.done():
                sender.cancel()
            if sender is not None:
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await sender
            await ws.close()
