"""How the server runs WebSockets under uvicorn: a read buffer bounded in bytes, not one message.

uvicorn's ``websockets-sansio`` protocol stops reading the socket after every
message it hands to the app, and starts again once the app has taken it. An
upload of 64 KiB frames then costs one pause, one resume and one extra turn of
the event loop per frame, and the next frame waits in the kernel meanwhile.
:class:`BufferedWebSocketProtocol` keeps reading while the messages waiting for
the app total less than ``read_buffer_bytes``, stops above that, and starts
again once the app has taken them down to half of it (or all of them).

Measured with ``bench/upload.py`` (64 KiB frames, same run, ours / bare
``websockets`` server): see ``docs/benchmarks.md`` section 4.

Frames already read can be taken in one go: the protocol offers the app the
ASGI scope extension :data:`READY_FRAMES` (``scope["extensions"]["summarizer.ready_frames"]["take"]``),
a synchronous ``take(max_bytes, min_frame_bytes) -> list[bytes]`` that returns
the binary messages queued right behind the one just received, without
awaiting. The session commits such a run with one write and queues it with one
wake-up instead of one per frame. An app (or a server) without the extension
receives one message at a time, as before; message boundaries and order are the
same either way.

Memory per connection stays bounded: at most ``read_buffer_bytes``, plus the
messages of the one socket read that crossed it (a read returns at most
256 KiB) and one message not yet complete (at most ``max_frame_bytes``), wait
in the process; and the session holds at most one run it took
(:data:`summarizer.session.FRAME_RUN_BYTES`, 512 KiB) while that run waits for
room in the upload queue. A client that sends faster meets TCP backpressure,
as before. The upload's own flow control (the ack window,
:mod:`summarizer.jobs.upload`) is unchanged.
"""

from __future__ import annotations

import collections
from typing import Any

from uvicorn._types import ASGIReceiveEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from .settings import Settings

__all__ = ["READY_FRAMES", "BufferedWebSocketProtocol", "protocol_class", "uvicorn_options"]

READY_FRAMES = "summarizer.ready_frames"
"""Name of the ASGI scope extension that takes the binary messages already queued
(see the module docstring)."""


class BufferedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol, reading ahead up to :attr:`read_buffer_bytes`.

    Everything else (handshake, frames, close, pings) is uvicorn's. Use
    :func:`protocol_class` for another bound.
    """

    read_buffer_bytes: int = 1024 * 1024
    """Bytes of messages waiting for the app above which the socket is not read (bytes;
    a text message counts its characters)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queued_bytes = 0
        """Bytes of the messages waiting for the app."""
        self.peak_queued_bytes = 0
        """The most :attr:`queued_bytes` ever were (for tests and benchmarks)."""
        self._held: collections.deque[ASGIReceiveEvent] = collections.deque()
        """Messages :meth:`take_ready_frames` took off the queue but did not return
        (the next ones for :meth:`receive`)."""

    def handle_connect(self, event: Any) -> None:
        """uvicorn's handshake, and the :data:`READY_FRAMES` extension in the scope."""
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope.setdefault("extensions", {})[READY_FRAMES] = {"take": self.take_ready_frames}

    def send_receive_event_to_app(self) -> None:
        """Queue the message just completed; uvicorn then pauses reading, undone below the bound."""
        frames = self.frames
        size = len(frames[0]) if len(frames) == 1 else sum(map(len, frames))
        queued = self.queue.qsize()
        super().send_receive_event_to_app()
        if self.queue.qsize() > queued:  # not discarded after close, nor refused as bad UTF-8
            self.queued_bytes += size
            self.peak_queued_bytes = max(self.peak_queued_bytes, self.queued_bytes)
        if self.read_paused and self.queued_bytes < self.read_buffer_bytes and not self.close_sent:
            self.read_paused = False
            self.transport.resume_reading()

    async def receive(self) -> ASGIReceiveEvent:
        """The next message for the app; reading starts again once half the bound is free."""
        message = self._held.popleft() if self._held else await self.queue.get()
        if message["type"] == "websocket.receive":
            self.queued_bytes -= len(message.get("bytes") or message.get("text") or b"")
        self._maybe_resume()
        return message

    def take_ready_frames(self, max_bytes: int, min_frame_bytes: int = 0) -> list[bytes]:
        """The binary messages waiting right at the front of the queue, without awaiting.

        Stops before the first message that is not binary, is shorter than
        ``min_frame_bytes``, or would bring the total above ``max_bytes`` (bytes;
        one message is taken even if it alone is larger). That message stays first
        for :meth:`receive`.

        Returns:
            The payloads, in arrival order (possibly none).
        """
        frames: list[bytes] = []
        total = 0
        while self._held or not self.queue.empty():
            message = self._held.popleft() if self._held else self.queue.get_nowait()
            data = message.get("bytes") if message["type"] == "websocket.receive" else None
            if data is None or len(data) < min_frame_bytes or (frames and total + len(data) > max_bytes):
                self._held.appendleft(message)
                break
            frames.append(data)
            total += len(data)
            self.queued_bytes -= len(data)
        if frames:
            self._maybe_resume()
        return frames

    def _maybe_resume(self) -> None:
        if self.read_paused and (
            self.queued_bytes <= self.read_buffer_bytes // 2 or (self.queue.empty() and not self._held)
        ):
            self.read_paused = False
            self.transport.resume_reading()


def protocol_class(read_buffer_bytes: int) -> type[BufferedWebSocketProtocol]:
    """:class:`BufferedWebSocketProtocol` with another read-ahead bound (bytes, at least 1)."""
    if read_buffer_bytes == BufferedWebSocketProtocol.read_buffer_bytes:
        return BufferedWebSocketProtocol
    return type(
        "BufferedWebSocketProtocol",
        (BufferedWebSocketProtocol,),
        {"read_buffer_bytes": max(1, read_buffer_bytes)},
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The WebSocket options every uvicorn that serves the app gets (``uvicorn.run`` / ``Config`` keywords).

    The protocol above, frames up to ``max_frame_bytes``, no permessage-deflate
    (uploads are PDFs, already compressed; deflate would cost CPU per frame).
    """
    return {
        "ws": protocol_class(settings.ws_read_buffer_bytes),
        "ws_max_size": settings.max_frame_bytes,
        "ws_per_message_deflate": False,
    }
