"""Figures for issue 9: server RSS after finished jobs nobody watched; closing silent sockets.

Run: ``PYTHONPATH=$PWD python -m tests.resource_figures`` (about a minute). It starts
``tests.echo_server`` processes on free ports with temporary data directories and prints:

* the server's RSS at start, after 50 and after 300 jobs that finished with no
  client attached (each client uploads ~8 KB of text, sends ``end`` and leaves);
* the time until 40 silent sockets (each sent a valid ``start``, then nothing)
  are closed with ``SUMMARIZER_IDLE_TIMEOUT_S=3``, and whether a new client is
  accepted right after.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
import urllib.request
from pathlib import Path

import websockets

from .rawws import handshake, read_until_closed, send_json
from .serverproc import EchoServer

PARAGRAPH = (
    "The committee met on Tuesday to review the budget. Costs rose by ten percent over the year. "
    "Members agreed to cut travel and to delay the new building. The chair thanked the staff.\n\n"
)


def running(server: EchoServer) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=10) as r:
        return int(json.loads(r.read())["jobs_running"])


async def fire_and_forget(url: str) -> None:
    """Start a job, upload it, end it, leave without reading a single event."""
    async with websockets.connect(url) as ws:
        await ws.send(
            json.dumps({"type": "start", "protocol": 1, "filename": "a.txt", "media_type": "text/plain"})
        )
        await ws.recv()  # accepted
        text = PARAGRAPH * 30
        for i in range(0, len(text), 2000):
            await ws.send(json.dumps({"type": "text", "text": text[i : i + 2000]}))
        await ws.send(json.dumps({"type": "end"}))


async def jobs(server: EchoServer, count: int) -> None:
    for first in range(0, count, 25):
        await asyncio.gather(*(fire_and_forget(server.url) for _ in range(min(25, count - first))))
        while running(server):
            await asyncio.sleep(0.1)


async def rss_figures() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        server = EchoServer(Path(tmp), {"SUMMARIZER_MAX_JOBS": "64", "ECHO_DELAY_S": "0"})
        server.start()
        try:
            await jobs(server, 5)  # warm up: imports, first model calls
            out = {"after 5 (warm-up)": server.rss_bytes() / 2**20}
            await jobs(server, 45)
            out["after 50"] = server.rss_bytes() / 2**20
            await jobs(server, 250)
            out["after 300"] = server.rss_bytes() / 2**20
            return out
        finally:
            server.stop()


async def silent_figures(count: int = 40, idle_s: float = 3.0) -> tuple[float, bool]:
    with tempfile.TemporaryDirectory() as tmp:
        server = EchoServer(
            Path(tmp), {"SUMMARIZER_IDLE_TIMEOUT_S": str(idle_s), "SUMMARIZER_MAX_JOBS": str(count + 8)}
        )
        server.start()
        try:
            socks = []
            for _ in range(count):
                sock, status = handshake(server.port)
                assert status == 101
                send_json(sock, {"type": "start", "protocol": 1, "filename": "a.txt"})
                socks.append(sock)
            started = time.monotonic()
            results = await asyncio.gather(
                *(asyncio.to_thread(read_until_closed, sock, 60.0) for sock in socks)
            )
            took = time.monotonic() - started
            assert all(closed for closed, _ in results)
            for sock in socks:
                sock.close()
            async with websockets.connect(server.url) as ws:
                await ws.send(json.dumps({"type": "start", "protocol": 1, "filename": "b.txt"}))
                accepted = json.loads(await ws.recv())["type"] == "accepted"
            return took, accepted and running(server) == 1
        finally:
            server.stop()


def main() -> None:
    rss = asyncio.run(rss_figures())
    for label, mib in rss.items():
        print(f"server RSS {label} jobs finished with no client attached: {mib:.1f} MiB")
    took, ok = asyncio.run(silent_figures())
    print(
        f"40 silent sockets (each sent 'start') closed {took:.2f} s after the last one opened "
        f"(idle timeout 3 s); a new client accepted afterwards, no slot held: {ok}"
    )


if __name__ == "__main__":
    main()
