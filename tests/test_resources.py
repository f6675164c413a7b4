"""Resources a client can hold, against a real uvicorn: silent sockets, readers that never read,
followers of one job, an idempotent start, the supervised expiry."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import websockets

from summarizer.cli import running_server
from summarizer.jobs import JobManager
from summarizer.jobs.upload import Upload
from summarizer.protocol import TERMINAL_TYPES, parse_server
from summarizer.settings import Settings

from .fakes import EchoModel
from .rawws import handshake, read_until_closed, send_json

pytestmark = pytest.mark.e2e

PARAGRAPH = (
    "The committee met on Tuesday to review the budget. Costs rose by ten percent over the year. "
    "Members agreed to cut travel and to delay the new building. The chair thanked the staff.\n\n"
)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


async def recv_event(ws: Any, timeout: float = 10.0) -> Any:
    return parse_server(await asyncio.wait_for(ws.recv(), timeout))


async def until_terminal(ws: Any, timeout: float = 30.0) -> list[Any]:
    out = []
    while True:
        event = await recv_event(ws, timeout)
        out.append(event)
        if event.type in TERMINAL_TYPES:
            return out


def start_message(**extra: Any) -> str:
    fields = {"type": "start", "protocol": 1, "filename": "a.txt", "media_type": "text/plain"}
    return json.dumps({**fields, **extra})


async def test_silent_starts_do_not_hold_job_slots(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_jobs=3, idle_timeout_s=1.0, model="echo")
    with running_server(settings, models={"echo": EchoModel()}) as url:
        silent = []
        for _ in range(3):
            ws = await websockets.connect(url)
            await ws.send(start_message())
            assert (await recv_event(ws)).type == "accepted"
            silent.append(ws)
        started = time.monotonic()
        # Each silent socket is closed (idle_timeout) and its job fails, freeing the slot.
        for ws in silent:
            events = []
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    events.append(await recv_event(ws, 6.0))
            assert {e.code for e in events if e.type == "error"} == {"idle_timeout"}
        assert time.monotonic() - started < 6.0
        async with websockets.connect(url) as ws:
            await ws.send(start_message())
            assert (await recv_event(ws)).type == "accepted"
            await ws.send(json.dumps({"type": "text", "text": PARAGRAPH}))
            await ws.send(json.dumps({"type": "end"}))
            assert (await until_terminal(ws))[-1].type == "summary"


async def test_silent_raw_sockets_are_closed_after_the_idle_time(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_jobs=4, idle_timeout_s=1.0, model="echo")
    with running_server(settings, models={"echo": EchoModel()}) as url:
        port = port_of(url)
        socks = []
        for i in range(6):
            sock, status = handshake(port)
            assert status == 101
            if i < 4:  # four start a job, two never send anything
                send_json(sock, {"type": "start", "protocol": 1, "filename": "a.txt"})
            socks.append(sock)
        started = time.monotonic()
        for sock in socks:
            closed, _ = read_until_closed(sock, timeout=8.0)
            assert closed
            sock.close()
        assert time.monotonic() - started < 9.0
        async with websockets.connect(url) as ws:  # no slot is held
            await ws.send(start_message())
            assert (await recv_event(ws)).type == "accepted"


async def test_a_receive_timeout_that_fires_early_still_closes_after_one_idle_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """uvloop's timers count whole milliseconds of a loop time read once per turn, so the
    receive timeout can fire a little before the upload's clock reads ``idle_timeout_s``.
    Old code: such a socket then "kept waiting" a second full idle time (40 silent sockets
    with a 3 s timeout: some closed after 8 s instead of 5 s)."""
    real = Upload.idle_for
    monkeypatch.setattr(Upload, "idle_for", lambda self: max(0.0, real(self) - 0.002))  # 2 ms early
    settings = Settings(data_dir=tmp_path, idle_timeout_s=1.5, model="echo")
    with running_server(settings, models={"echo": EchoModel()}) as url:
        async with websockets.connect(url) as ws:
            await ws.send(start_message())
            assert (await recv_event(ws)).type == "accepted"
            started = time.monotonic()
            events = []
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    events.append(await recv_event(ws, 10.0))
            took = time.monotonic() - started
    assert 1.4 < took < 2.4, f"closed {took:.2f} s after the last message (idle timeout 1.5 s)"
    assert [e.code for e in events if e.type == "error"] == ["idle_timeout"]
    assert (ws.close_code, ws.close_reason) == (1000, "idle")


async def test_a_reader_that_never_reads_is_disconnected_and_the_server_stays_bounded(tmp_path: Path) -> None:
    model = EchoModel(words=5000)  # every word of every chunk becomes a token event
    settings = Settings(
        data_dir=tmp_path,
        model="echo",
        send_timeout_s=1.0,
        send_buffer_bytes=65536,
        chunk_size=300,
        chunk_overlap=10,
        token_coalesce_s=0,  # one event per streamed piece: thousands of events
    )
    text = PARAGRAPH * 400
    with running_server(settings, models={"echo": model}) as url:
        async with websockets.connect(url, max_size=None) as ws:  # a job with ~10,000 events (~1 MB)
            await ws.send(start_message())
            job_id = (await recv_event(ws)).job_id
            for i in range(0, len(text), 20_000):
                await ws.send(json.dumps({"type": "text", "text": text[i : i + 20_000]}))
            await ws.send(json.dumps({"type": "end"}))
            total = 0
            while True:
                raw = await asyncio.wait_for(ws.recv(), 60)
                total += len(raw)
                if parse_server(raw).type in TERMINAL_TYPES:
                    break
        assert total > 600_000, total
        # A client asks for all of it, then reads nothing.
        port = port_of(url)
        sock, status = handshake(port, rcvbuf=4096)
        assert status == 101
        send_json(sock, {"type": "resume", "job_id": job_id, "last_seq": 0})
        await asyncio.sleep(4.0)  # send_timeout_s (1 s) + the close wait (2 s)
        closed, got = await asyncio.to_thread(read_until_closed, sock, 8.0)
        sock.close()
        assert closed, "the server kept the never-reading connection open"
        assert got < total  # it was dropped before the log was through
        # Everyone else is served as before.
        async with websockets.connect(url, max_size=None) as ws:
            await ws.send(json.dumps({"type": "resume", "job_id": job_id, "last_seq": 0}))
            assert (await recv_event(ws)).type == "resumed"
            replay = await until_terminal(ws, 60)
        assert [e.seq for e in replay] == list(range(1, len(replay) + 1))


async def test_several_connections_follow_one_job_each_seeing_every_seq_once(tmp_path: Path) -> None:
    model = EchoModel(words=5, delay_s=0.05)
    settings = Settings(data_dir=tmp_path, model="echo", chunk_size=300, chunk_overlap=20)
    with running_server(settings, models={"echo": model}) as url:
        async with websockets.connect(url) as up:
            await up.send(start_message())
            accepted = await recv_event(up)

            async def follow(after: int) -> list[Any]:
                async with websockets.connect(url) as ws:
                    # A follower leaves the upload to ``up`` (a plain resume would take it over).
                    resume = {"type": "resume", "job_id": accepted.job_id, "last_seq": after, "upload": False}
                    await ws.send(json.dumps(resume))
                    assert (await recv_event(ws)).type == "resumed"
                    return await until_terminal(ws)

            followers = [asyncio.create_task(follow(0)), asyncio.create_task(follow(1))]
            await asyncio.sleep(0.2)
            for _ in range(8):
                await up.send(json.dumps({"type": "text", "text": PARAGRAPH * 3}))
            await up.send(json.dumps({"type": "end"}))
            mine = [accepted, *await until_terminal(up)]
            first, second = await asyncio.gather(*followers)
    n = len(mine)
    assert [e.seq for e in mine] == list(range(1, n + 1))
    assert [e.seq for e in first] == list(range(1, n + 1))
    assert [e.seq for e in second] == list(range(2, n + 1))
    assert first[-1].type == second[-1].type == mine[-1].type == "summary"


async def test_a_repeated_start_with_the_same_job_id_re_attaches(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, model="echo", max_jobs=2)
    job_id = "0123456789abcdef" * 2
    with running_server(settings, models={"echo": EchoModel()}) as url:
        async with websockets.connect(url) as ws:
            await ws.send(start_message(job_id=job_id))
        # The connection dropped before we read 'accepted'; start again with the same id.
        async with websockets.connect(url) as ws:
            await ws.send(start_message(job_id=job_id))
            resumed = await recv_event(ws)
            assert resumed.type == "resumed" and resumed.job_id == job_id and resumed.state == "uploading"
            accepted = await recv_event(ws)
            assert accepted.type == "accepted" and accepted.seq == 1 and accepted.job_id == job_id
            # Only one job exists: a second slot is still free.
            async with websockets.connect(url) as other:
                await other.send(start_message())
                answer = await recv_event(other)
                assert answer.type == "accepted", answer
            await ws.send(json.dumps({"type": "text", "text": PARAGRAPH}))
            await ws.send(json.dumps({"type": "end"}))
            events = await until_terminal(ws)
            assert events[-1].type == "summary" and {e.job_id for e in events} == {job_id}


async def test_the_expiry_task_survives_an_exception(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = 0
    real = JobManager.purge_expired

    def flaky(self: JobManager) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:  # the first run of the background task (call 1 is at start-up)
            raise RuntimeError("disk hiccup")
        return real(self)

    monkeypatch.setattr(JobManager, "purge_expired", flaky)
    settings = Settings(data_dir=tmp_path, model="echo", idle_timeout_s=0.4)
    with running_server(settings, models={"echo": EchoModel()}) as url:
        await asyncio.sleep(0.6)
        assert calls >= 2
        async with websockets.connect(url) as ws:
            await ws.send(start_message())
            job_id = (await recv_event(ws)).job_id
            await ws.send(json.dumps({"type": "text", "text": PARAGRAPH}))
        # The uploader vanished: the (supervised) expiry fails the abandoned upload.
        await asyncio.sleep(2.0)
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "resume", "job_id": job_id, "last_seq": 0}))
            resumed = await recv_event(ws)
            assert resumed.state == "failed", resumed
            events = await until_terminal(ws)
            assert events[-1].code == "idle_timeout"


async def test_a_large_pdf_upload_does_not_grow_the_server_by_its_size(tmp_path: Path) -> None:
    """A client uploads 64 MiB of a PDF (every byte acknowledged: ingestion took it) to a real
    server process: its RSS grows by a bounded amount, not by the upload (a PDF is read from the
    store's upload file, not collected in memory; it grew by more than 64 MiB before)."""
    from .serverproc import EchoServer

    total, frame = 64 * 2**20, 256 * 1024
    server = EchoServer(tmp_path / "data", {"SUMMARIZER_MAX_DOCUMENT_BYTES": str(2 * total)})
    server.start()
    try:
        async with websockets.connect(server.url, max_size=None, compression=None) as ws:
            await ws.send(json.dumps({"type": "start", "protocol": 1, "filename": "big.pdf", "size": total}))
            accepted = await recv_event(ws)
            window = accepted.limits.ack_window_bytes
            before = server.rss_bytes()
            head = b"%PDF-1.7\n%a large upload\n"
            sent = acked = 0
            while acked < total:
                while sent < total and sent - acked + frame <= window:
                    piece = head + bytes(frame - len(head)) if sent == 0 else bytes(frame)
                    await ws.send(piece)
                    sent += frame
                event = await recv_event(ws, 30)
                if event.type == "ack":
                    acked = event.received
                assert event.type in ("ack", "progress"), event
            grown = server.rss_bytes() - before
            await ws.send(json.dumps({"type": "cancel"}))
        assert grown < 24 * 2**20, f"the server grew by {grown / 2**20:.0f} MiB during a 64 MiB upload"
    finally:
        server.stop()
