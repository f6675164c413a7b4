"""One feeder per job: a connection replaced by a resume cannot commit upload data after the
new connection was told the counts (issue 9 follow-up: the resume-mid-upload race)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import websockets

from summarizer.cli import running_server
from summarizer.jobs import JobManager
from summarizer.protocol import TERMINAL_TYPES, parse_server
from summarizer.settings import Settings
from summarizer.storage import Storage

from .fakes import EchoModel
from .test_jobs import collect, make_spec

PARAGRAPH = (
    "The committee met on Tuesday to review the budget. Costs rose by ten percent over the year. "
    "Members agreed to cut travel and to delay the new building. The chair thanked the staff.\n\n"
)
PIECES = [f"Item {i}. {PARAGRAPH}" for i in range(8)]
DOCUMENT = "".join(PIECES).encode()


async def recv_event(ws: Any, timeout: float = 10.0) -> Any:
    return parse_server(await asyncio.wait_for(ws.recv(), timeout))


async def until(ws: Any, done: Any, timeout: float = 10.0) -> list[Any]:
    out = []
    while True:
        event = await recv_event(ws, timeout)
        out.append(event)
        if done(event):
            return out


def text(piece: str) -> str:
    return json.dumps({"type": "text", "text": piece})


def start_message(job_id: str) -> str:
    return json.dumps(
        {"type": "start", "protocol": 1, "filename": "a.txt", "media_type": "text/plain", "job_id": job_id}
    )


def stored_upload(data_dir: Path, job_id: str) -> bytes:
    store = Storage(data_dir)
    try:
        return b"".join(r.encode("utf-8") if isinstance(r, str) else r for r in store.upload_records(job_id))
    finally:
        store.close()


@pytest.mark.e2e
async def test_frames_of_a_replaced_connection_arriving_after_resumed_are_refused(tmp_path: Path) -> None:
    """Old code: A's late piece was committed after B's ``resumed`` had reported the counts,
    B sent it again from those counts, and the upload ended in ``checksum_mismatch``."""
    job_id = secrets.token_hex(16)
    settings = Settings(data_dir=tmp_path, model="echo", chunk_size=300, chunk_overlap=20)
    with running_server(settings, models={"echo": EchoModel(words=4)}) as url:
        a = await websockets.connect(url)
        await a.send(start_message(job_id))
        assert (await recv_event(a)).type == "accepted"
        for piece in PIECES[:3]:
            await a.send(text(piece))
        await until(a, lambda e: e.type == "ack" and e.messages == 3)

        # A's connection looks dead to its client, which resumes on B ...
        b = await websockets.connect(url)
        await b.send(json.dumps({"type": "resume", "job_id": job_id, "last_seq": 0}))
        resumed = await recv_event(b)
        assert resumed.type == "resumed" and resumed.state == "uploading"
        assert (resumed.received, resumed.messages) == (len("".join(PIECES[:3]).encode()), 3)

        # ... while a piece A had in flight reaches the server only now.
        await a.send(text(PIECES[3]))
        seen_by_a: list[Any] = []
        try:
            while True:  # the old server committed and acked it, and kept A open: stop there
                event = await recv_event(a)
                seen_by_a.append(event)
                if event.type == "ack" and event.messages == 4:
                    break
        except websockets.ConnectionClosed:
            pass

        # B continues from the counts it was given; every byte is stored exactly once.
        for piece in PIECES[resumed.messages :]:
            await b.send(text(piece))
        await b.send(json.dumps({"type": "end", "sha256": hashlib.sha256(DOCUMENT).hexdigest()}))
        events = await until(b, lambda e: e.type in TERMINAL_TYPES, timeout=30)
        await b.close()
        await a.close()
    assert events[-1].type == "summary", events[-1]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert max(e.received for e in events if e.type == "ack") == len(DOCUMENT)
    assert stored_upload(tmp_path, job_id) == DOCUMENT
    # A was told, in-band, that its piece was refused, and closed.
    refusals = [e for e in seen_by_a if e.type == "error"]
    assert [(e.code, e.job_id, e.seq) for e in refusals] == [("superseded", None, 0)]
    assert a.close_code == 1008 and a.close_reason == "superseded"


@pytest.mark.e2e
async def test_a_follower_that_resumes_with_upload_false_leaves_the_upload_alone(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, model="echo", chunk_size=300, chunk_overlap=20)
    job_id = secrets.token_hex(16)
    with running_server(settings, models={"echo": EchoModel(words=4)}) as url:
        async with websockets.connect(url) as up, websockets.connect(url) as viewer:
            await up.send(start_message(job_id))
            assert (await recv_event(up)).type == "accepted"
            await up.send(text(PIECES[0]))
            await until(up, lambda e: e.type == "ack")
            await viewer.send(json.dumps({"type": "resume", "job_id": job_id, "upload": False}))
            assert (await recv_event(viewer)).type == "resumed"
            for piece in PIECES[1:]:
                await up.send(text(piece))
            await up.send(json.dumps({"type": "end", "sha256": hashlib.sha256(DOCUMENT).hexdigest()}))
            mine = await until(up, lambda e: e.type in TERMINAL_TYPES, timeout=30)
            theirs = await until(viewer, lambda e: e.type in TERMINAL_TYPES, timeout=30)
    assert mine[-1].type == theirs[-1].type == "summary"
    assert [e.seq for e in theirs] == list(range(1, len(theirs) + 1))


async def test_a_frame_waiting_for_room_when_another_feeder_takes_over_is_not_committed(
    tmp_path: Path,
) -> None:
    """The frame of the old feeder was already read from its socket and waits for queue room
    (nothing consumes the upload yet); the take-over refuses it instead of committing it later."""
    from summarizer.errors import Superseded

    store = Storage(tmp_path / "data")
    mgr = JobManager(store, lambda name: EchoModel(words=4))
    try:
        job = mgr.create(make_spec(window=len(PIECES[0].encode()) + 10))
        old, new = object(), object()
        job.take_over(old)
        job.check_feeder(old)
        await job.feed_text(PIECES[0])  # committed; the queue is now full (no ingestion yet)
        waiting = asyncio.create_task(job.feed_text(PIECES[1]))
        await asyncio.sleep(0.05)
        assert not waiting.done() and job.messages == 1
        job.take_over(new)
        counts = (job.received, job.messages)  # what 'resumed' reports
        with pytest.raises(Superseded):
            await waiting
        with pytest.raises(Superseded):
            job.check_feeder(old)
        assert (job.received, job.messages) == counts == (len(PIECES[0].encode()), 1)
        job.run()
        for piece in PIECES[counts[1] :]:
            job.check_feeder(new)
            await job.feed_text(piece)
        await job.end(hashlib.sha256(DOCUMENT).hexdigest())
        events = await collect(job)
        assert events[-1].type == "summary", events[-1]
    finally:
        await mgr.shutdown()
        store.close()
    assert stored_upload(tmp_path / "data", job.job_id) == DOCUMENT


def _chunk(data: bytes) -> bytes:
    """One piece of an HTTP/1.1 chunked body."""
    return b"%x\r\n" % len(data) + data + b"\r\n"


def _read_http_answer(sock: socket.socket, timeout: float = 20.0) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of the server's answer (``Content-Length`` framed)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")]
    length = lengths[0]
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return int(head.split(b" ", 2)[1]), json.loads(body[:length])


async def _uploading_job(data_dir: Path, received: int, timeout: float = 10.0) -> str:
    """The id of the one uploading job, once ``received`` bytes of it are committed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store = Storage(data_dir)
        try:
            rows = store.jobs_in_states(("uploading",))
        finally:
            store.close()
        if rows:
            assert len(rows) == 1, rows
            committed = len(stored_upload(data_dir, rows[0].id))
            if committed >= received:
                assert committed == received, committed
                return rows[0].id
        await asyncio.sleep(0.05)
    raise AssertionError(f"no uploading job with {received} bytes committed")


@pytest.mark.e2e
async def test_an_http_upload_taken_over_by_a_websocket_resume_is_answered_409_superseded(
    tmp_path: Path,
) -> None:
    """``POST /v1/jobs`` is the job's feeder until a WebSocket ``resume`` takes the upload
    over: the rest of the request body is refused (409 ``superseded``, with the job id), not
    committed, the job is not failed, and it completes with what the new feeder sends."""
    document = (PARAGRAPH * 60).encode()
    slice_bytes = 4096  # the HTTP upload hands the job slices of max_frame_bytes
    first = document[: 2 * slice_bytes]
    settings = Settings(
        data_dir=tmp_path, model="echo", chunk_size=300, chunk_overlap=20, max_frame_bytes=slice_bytes
    )
    with running_server(settings, models={"echo": EchoModel(words=4)}) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        http = socket.create_connection(("127.0.0.1", port))
        try:
            http.sendall(
                b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: multipart/form-data; boundary=XyZ\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            head = (
                b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="minutes.txt"\r\n'
                b"Content-Type: text/plain\r\n\r\n"
            )
            http.sendall(_chunk(head + first))
            job_id = await _uploading_job(tmp_path, len(first))

            async with websockets.connect(url) as ws:
                await ws.send(json.dumps({"type": "resume", "job_id": job_id, "last_seq": 0}))
                resumed = await recv_event(ws)
                assert resumed.type == "resumed" and resumed.state == "uploading"
                assert resumed.received == len(first)

                # The HTTP client, unaware, sends the rest of its file and the form's end.
                http.sendall(_chunk(document[len(first) :] + b"\r\n--XyZ--\r\n") + _chunk(b""))
                status, answer = await asyncio.to_thread(_read_http_answer, http)
                assert status == 409, (status, answer)
                assert answer["code"] == "superseded" and answer["job_id"] == job_id, answer

                # The new feeder continues from the counts it was told; the job goes on.
                rest = document[resumed.received :]
                for i in range(0, len(rest), slice_bytes):
                    await ws.send(rest[i : i + slice_bytes])
                await ws.send(json.dumps({"type": "end", "sha256": hashlib.sha256(document).hexdigest()}))
                events = await until(ws, lambda e: e.type in TERMINAL_TYPES, timeout=30)
        finally:
            http.close()
    assert events[-1].type == "summary", events[-1]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert stored_upload(tmp_path, job_id) == document


@pytest.mark.parametrize("frame", [1000, 64 * 1024])
async def test_a_client_whose_window_is_one_frame_never_stalls(tmp_path: Path, frame: int) -> None:
    """protocol.md: 'any smaller window of your own works'. A client that keeps at most one
    frame unacknowledged (far below the server's ack step of 256 KiB) gets an ``ack`` for
    every frame it sends, because the server acks whenever ingestion has taken everything."""
    settings = Settings(data_dir=tmp_path, token_coalesce_s=0, models=["echo"], model="echo")
    body = (PARAGRAPH * (1 + 20 * frame // len(PARAGRAPH))).encode()[: 20 * frame]
    with running_server(settings, models={"echo": EchoModel(words=4)}) as url:
        async with websockets.connect(url, max_size=None) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "start",
                        "protocol": 1,
                        "filename": "a.txt",
                        "media_type": "text/plain",
                        "size": len(body),
                    }
                )
            )
            assert (await recv_event(ws)).type == "accepted"
            for sent in range(frame, len(body) + 1, frame):
                await ws.send(body[sent - frame : sent])
                acked = 0
                while acked < sent:  # one frame in flight: wait for its ack before the next
                    event = await recv_event(ws, timeout=5.0)
                    if event.type == "ack":
                        acked = event.received
            await ws.send(json.dumps({"type": "end", "sha256": hashlib.sha256(body).hexdigest()}))
            events = await until(ws, lambda e: e.type in TERMINAL_TYPES, timeout=60)
            assert events[-1].type == "summary"
