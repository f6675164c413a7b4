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

Memory per connection stays bounded: at most ``read_buffer_bytes``, plus the
messages of the one socket read that crossed it (a read returns at most
256 KiB) and one message not yet complete (at most ``max_frame_bytes``), wait
in the process. A client that sends faster meets TCP backpressure, as before. The upload's own flow control
(the ack window, :mod:`summarizer.jobs.upload`) is unchanged.
"""

from __future__ import annotations

from typing import Any

from uvicorn._types import ASGIReceiveEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from .settings import Settings

__all__ = ["BufferedWebSocketProtocol", "protocol_class", "uvicorn_options"]


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

    def send_receive_event_to_app(self) -> None:
        """Queue the message just completed; uvicorn then pauses reading, undone below the bound."""
        size = sum(len(frame) for frame in self.frames)
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
        message = await self.queue.get()
        if message["type"] == "websocket.receive":
            self.queued_bytes -= len(message.get("bytes") or message.get("text") or b"")
        if self.read_paused and (self.queued_bytes <= self.read_buffer_bytes // 2 or self.queue.empty()):
            self.read_paused = False
            self.transport.resume_reading()
        return message


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
