"""A bounded chaos run against a real server process.

Many jobs at once, each client misbehaving at random: dropping its connection
mid-upload or mid-map and resuming, plus silent sockets that start a job and go
quiet, a reader that never reads, and one SIGKILL of the server followed by a
restart on the same data. At the end:

* every job is finished: ``summary``, or ``error`` with a code;
* each client saw every ``seq`` from 1 exactly once, across all its reconnections;
* no job slot is held (``/healthz`` reports 0 running);
* the server's RSS stays under :data:`RSS_BOUND` bytes.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websockets

from summarizer.protocol import TERMINAL_TYPES, parse_server

from .rawws import handshake, send_json
from .serverproc import EchoServer

pytestmark = pytest.mark.e2e

JOBS = 24
RSS_BOUND = 400 * 2**20
"""Server RSS allowed at the end (bytes): ~100 MiB measured; a leak of token logs would pass it."""
PARAGRAPH = (
    "The committee met on Tuesday to review the budget. Costs rose by ten percent over the year. "
    "Members agreed to cut travel and to delay the new building. The chair thanked the staff.\n\n"
)


@dataclass
class Run:
    """One client's view of its job."""

    job_id: str
    behaviour: str
    pieces: list[str]
    events: list[Any] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    connections: int = 0

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq if self.events else 0

    @property
    def done(self) -> bool:
        return bool(self.events) and self.events[-1].type in TERMINAL_TYPES


async def drive(url: str, run: Run, rng: random.Random, deadline: float) -> None:
    """Run one job to its end through drops and server restarts."""
    dropped_upload = dropped_map = False
    while not run.done and time.monotonic() < deadline:
        run.connections += 1
        try:
            async with websockets.connect(url, open_timeout=5, max_size=None) as ws:
                if not run.events:  # never saw 'accepted': a repeated start re-attaches (job_id)
                    await ws.send(
                        json.dumps(
                            {"type": "start", "protocol": 1, "filename": "a.txt", "job_id": run.job_id}
                        )
                    )
                else:
                    await ws.send(
                        json.dumps({"type": "resume", "job_id": run.job_id, "last_seq": run.last_seq})
                    )
                sent = 0
                upload_open = True
                first = parse_server(await asyncio.wait_for(ws.recv(), 10))
                if first.type == "resumed":
                    sent, upload_open = first.messages, first.state == "uploading"
                elif first.type == "error" and first.job_id is None:
                    run.violations.append(f"refused: {first.code}")
                    return
                else:
                    take(run, first)
                    if first.type != "accepted":
                        run.violations.append(f"first event {first.type}")
                if upload_open:
                    for piece in run.pieces[sent:]:
                        if run.behaviour == "drop-upload" and not dropped_upload and rng.random() < 0.3:
                            dropped_upload = True
                            raise ConnectionAbortedError("drop mid-upload")
                        await ws.send(json.dumps({"type": "text", "text": piece}))
                    await ws.send(json.dumps({"type": "end"}))
                while not run.done:
                    event = parse_server(await asyncio.wait_for(ws.recv(), 20))
                    take(run, event)
                    if (
                        run.behaviour == "drop-map"
                        and not dropped_map
                        and event.type == "chunk.summary"
                        and rng.random() < 0.5
                    ):
                        dropped_map = True
                        raise ConnectionAbortedError("drop mid-map")
        except (OSError, websockets.ConnectionClosed, websockets.InvalidHandshake, TimeoutError):
            await asyncio.sleep(rng.uniform(0.05, 0.3))


def take(run: Run, event: Any) -> None:
    if event.type == "resumed":
        return
    if event.seq != run.last_seq + 1:
        run.violations.append(f"seq {event.seq} after {run.last_seq}")
        return
    run.events.append(event)


def jobs_running(server: EchoServer) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=10) as r:
        return int(json.loads(r.read())["jobs_running"])


async def test_chaos(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "9")))
    server = EchoServer(
        tmp_path / "data",
        {
            "SUMMARIZER_IDLE_TIMEOUT_S": "2",
            "SUMMARIZER_SEND_TIMEOUT_S": "2",
            "SUMMARIZER_SEND_BUFFER_BYTES": "65536",
            "SUMMARIZER_CHUNK_SIZE": "400",
            "SUMMARIZER_CHUNK_OVERLAP": "20",
            "SUMMARIZER_CONCURRENCY": "2",
            "ECHO_DELAY_S": "0.03",
        },
    )
    server.start()
    try:
        behaviours = ["normal", "drop-upload", "drop-map"]
        runs = [
            Run(
                job_id=f"{i:032x}",
                behaviour=behaviours[i % 3],
                pieces=[PARAGRAPH * 3] * rng.randint(4, 10),
            )
            for i in range(1, JOBS + 1)
        ]
        deadline = time.monotonic() + 45
        tasks = [asyncio.create_task(drive(server.url, run, rng, deadline)) for run in runs]
        # Hostile extras: silent starts, and a reader that never reads.
        silent = []
        for _ in range(4):
            sock, status = handshake(server.port)
            assert status == 101
            send_json(sock, {"type": "start", "protocol": 1, "filename": "silent.txt"})
            silent.append(sock)
        sock, _ = handshake(server.port, rcvbuf=4096)
        send_json(sock, {"type": "resume", "job_id": runs[0].job_id, "last_seq": 0})
        silent.append(sock)
        # One SIGKILL once some jobs are mid-map, then a restart on the same data.
        while (
            time.monotonic() < deadline
            and sum(any(e.type == "chunk.summary" for e in run.events) for run in runs) < JOBS // 3
        ):
            await asyncio.sleep(0.05)
        killed_at = time.monotonic()
        server.kill()
        await asyncio.sleep(0.3)
        server.start()
        await asyncio.gather(*tasks)
        print(
            f"chaos: killed at {killed_at - deadline + 45:.1f} s, "
            f"jobs done at {time.monotonic() - deadline + 45:.1f} s"
        )
        for sock in silent:
            sock.close()
        # Silent jobs fail by the idle timeout; then no slot is held.
        settle = time.monotonic() + 10
        while jobs_running(server) and time.monotonic() < settle:
            await asyncio.sleep(0.2)
        assert jobs_running(server) == 0
        rss = server.rss_bytes()
    finally:
        server.stop()

    unfinished = [run.job_id for run in runs if not run.done]
    assert not unfinished, unfinished
    for run in runs:
        assert not run.violations, (run.job_id, run.violations)
        assert [e.seq for e in run.events] == list(range(1, len(run.events) + 1))
        final = run.events[-1]
        assert final.type == "summary" or (final.type == "error" and final.code), final
        summaries = [e.index for e in run.events if e.type == "chunk.summary"]
        assert len(summaries) == len(set(summaries)), run.job_id
    assert sum(run.events[-1].type == "summary" for run in runs) >= JOBS - 2
    assert sum(run.connections > 1 for run in runs) >= JOBS // 3  # many really resumed
    assert rss < RSS_BOUND, rss
