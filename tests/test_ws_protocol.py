"""The WebSocket protocol under uvicorn: reading ahead of the app, bounded in bytes.

A real uvicorn in a thread on a loopback port, a real ``websockets`` client,
and an ASGI app that accepts and then does not receive until it is told to: a
client pushing frames at it shows how much the server reads ahead.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest
import uvicorn
from websockets.asyncio.client import connect

from summarizer.settings import Settings
from summarizer.ws_protocol import READY_FRAMES, BufferedWebSocketProtocol, protocol_class, uvicorn_options

FRAME = 64 * 1024
BOUND = 1024 * 1024
READ = 256 * 1024
"""Most bytes one socket read returns (uvloop's read buffer is 256,000 bytes; asyncio's 256 KiB)."""


class _Probe(BufferedWebSocketProtocol):
    """The real protocol, remembering its instances so the test can read their counters."""

    read_buffer_bytes = BOUND
    instances: ClassVar[list[_Probe]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _Probe.instances.append(self)


class _HoldingApp:
    """Accepts, waits for ``release``, then receives every message and records the payloads."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.received: list[bytes] = []
        self.done = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                break
            self.received.append(message["bytes"])
            if message["bytes"] == b"last":
                await send({"type": "websocket.close", "code": 1000})
                break
        self.done.set()


@contextmanager
def _server(app: Any, ws: type[BufferedWebSocketProtocol]) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", ws=ws, ws_per_message_deflate=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(1000):
            if server.started:
                break
            threading.Event().wait(0.01)
        yield f"ws://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


async def _push(url: str, app: _HoldingApp, seconds: float) -> list[bytes]:
    """Send numbered frames for ``seconds`` (a send blocks once TCP backpressure reaches the client),
    then release the app and end with ``last``."""
    sent: list[bytes] = []
    async with connect(url, max_size=None, compression=None, write_limit=FRAME) as ws:
        pushing = True

        async def producer() -> None:
            while pushing:
                frame = len(sent).to_bytes(4, "big") * (FRAME // 4)
                await ws.send(frame)
                sent.append(frame)

        task = asyncio.create_task(producer())
        await asyncio.sleep(seconds)
        pushing = False  # the send under way (blocked or not) completes once the app reads
        await asyncio.sleep(0.3)  # let the server read what the kernel holds, up to its bound
        app.release.set()
        await asyncio.wait_for(task, timeout=20)
        await ws.send(b"last")
        await asyncio.wait_for(ws.wait_closed(), timeout=20)
    return sent


def test_the_server_reads_ahead_up_to_its_bound_and_no_further() -> None:
    _Probe.instances.clear()
    app = _HoldingApp()
    with _server(app, _Probe) as url:
        sent = asyncio.run(_push(url, app, seconds=1.5))
        assert app.done.wait(20)
    (protocol,) = _Probe.instances
    # uvicorn's own protocol stops reading after the messages of one read (<= 256 KiB); ours reads ahead...
    assert protocol.peak_queued_bytes >= BOUND
    # ...but never past its bound plus the messages of the one socket read that crossed it.
    assert protocol.peak_queued_bytes <= BOUND + READ + FRAME
    # Nothing lost, nothing reordered: every frame reached the app, in order.
    assert len(sent) * FRAME > 2 * BOUND  # the client really outran the app
    assert app.received == [*sent, b"last"]
    assert protocol.queued_bytes == 0


class _TakingApp:
    """Waits for ``release``, then takes frames the way the session does: after each large
    binary message, the ones queued right behind it (``READY_FRAMES``), at most ``TAKE`` bytes."""

    TAKE = 3 * FRAME
    SMALL = 16 * 1024

    def __init__(self) -> None:
        self.release = threading.Event()
        self.groups: list[list[bytes | str]] = []
        self.extension: dict[str, Any] | None = None
        self.done = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        self.extension = scope["extensions"].get(READY_FRAMES)
        await send({"type": "websocket.accept"})
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        assert self.extension is not None
        take = self.extension["take"]
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                break
            data = message.get("bytes")
            group: list[bytes | str] = [data if data is not None else message["text"]]
            if data is not None and len(data) >= self.SMALL:
                group += take(self.TAKE, self.SMALL)
            self.groups.append(group)
            if group[-1] == "last":
                await send({"type": "websocket.close", "code": 1000})
                break
        self.done.set()


def test_ready_frames_are_taken_in_runs_of_large_binary_frames_in_order() -> None:
    """The extension hands over the large binary frames queued behind the one received, up to
    its byte limit; a small frame or a text message ends the run and is received next."""
    _Probe.instances.clear()
    app = _TakingApp()
    big = [i.to_bytes(4, "big") * (FRAME // 4) for i in range(10)]
    script: list[bytes | str] = [*big[:6], b"s" * 1024, *big[6:8], "a text", *big[8:], "last"]

    async def client(url: str) -> None:
        async with connect(url, max_size=None, compression=None) as ws:
            for message in script:
                await ws.send(message)
            await asyncio.sleep(0.3)  # all of it is read ahead (well under the 1 MiB bound)
            app.release.set()
            await asyncio.wait_for(ws.wait_closed(), timeout=20)

    with _server(app, _Probe) as url:
        asyncio.run(client(url))
        assert app.done.wait(20)
    (protocol,) = _Probe.instances
    assert [m for group in app.groups for m in group] == script  # nothing lost or reordered
    sizes = [len(group) for group in app.groups]
    # 6 large frames: one received + 3 taken (the byte limit), then 1 + 1; the small frame and
    # the text each end a run and arrive alone.
    assert sizes == [4, 2, 1, 2, 1, 2, 1]
    assert all(sum(map(len, g[1:])) <= _TakingApp.TAKE for g in app.groups)
    assert protocol.queued_bytes == 0


def test_protocol_class_sets_the_bound_and_the_options_use_the_setting() -> None:
    assert protocol_class(BufferedWebSocketProtocol.read_buffer_bytes) is BufferedWebSocketProtocol
    custom = protocol_class(128 * 1024)
    assert issubclass(custom, BufferedWebSocketProtocol) and custom.read_buffer_bytes == 128 * 1024
    options = uvicorn_options(Settings(ws_read_buffer_bytes=512 * 1024, max_frame_bytes=2 * 1024 * 1024))
    assert options["ws"].read_buffer_bytes == 512 * 1024
    assert options["ws_max_size"] == 2 * 1024 * 1024 and options["ws_per_message_deflate"] is False


@pytest.mark.parametrize("size", [1024, 0])
def test_a_bound_below_the_minimum_is_refused(size: int) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="ws_read_buffer_bytes"):
        Settings(ws_read_buffer_bytes=size)
