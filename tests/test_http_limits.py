"""Hostile and slow HTTP clients against a real server process (its memory measured in /proc).

* a request that claims 1 GiB is refused before its body is read, and one that
  streams towards 1 GiB without a length is refused once past the limit, with
  the server's memory flat;
* stalled SSE readers cost the server a bounded amount of memory (a reader
  holds one event, not a queue), and get every event, once, when they read again.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .serverproc import ServerProc

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
LIMIT = 8 * MiB
"""The test server's max_document_bytes."""
SEND_TIMEOUT_S = 8.0
"""The test server's send_timeout_s: how long an event stream may wait for its reader."""


class Server(ServerProc):
    """``summarizer serve`` with a small document limit and send timeout, healthy once made."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(
            "summarizer",
            ["serve", "--port", "{port}"],
            env={
                "SUMMARIZER_DATA_DIR": str(tmp / "data"),
                "SUMMARIZER_MAX_DOCUMENT_BYTES": str(LIMIT),
                "SUMMARIZER_LOG_LEVEL": "warning",
                "SUMMARIZER_TOKEN_COALESCE_S": "0",  # one event per streamed piece: a stream of MiB
                "SUMMARIZER_SEND_TIMEOUT_S": str(SEND_TIMEOUT_S),
            },
        )
        self.spawn()
        try:
            self.wait_healthy()
        except RuntimeError:
            self.stop()
            raise

    @property
    def rss(self) -> int:
        return self.rss_bytes()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("http-limits"))
    try:
        yield s
    finally:
        s.stop()


def _read_response(sock: socket.socket, timeout: float = 30.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")]
    length = lengths[0] if lengths else 0
    while len(body) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return head + b"\r\n\r\n" + body


def test_a_1_gib_content_length_is_refused_before_the_body(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=XyZ\r\n"
            b"Content-Length: 1073741824\r\n\r\n"
        )
        answer = _read_response(sock)  # not one byte of the body was sent
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"connection: close" in head.lower()
    assert json.loads(body)["code"] == "document_too_large"


def test_a_1_gib_stream_without_length_is_refused_past_the_limit(server: Server) -> None:
    before = server.rss
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=XyZ\r\nTransfer-Encoding: chunked\r\n\r\n"
    )

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n" % len(data) + data + b"\r\n"

    head = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n%PDF-1.7\n"
    )
    sock.sendall(chunk(head))
    block = chunk(os.urandom(64 * 1024))
    sent = 0
    answer = b""
    peak = before
    sock.setblocking(False)
    deadline = time.monotonic() + 120
    try:
        while sent < 1024 * MiB and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 5)
            if readable:
                piece = sock.recv(65536)
                answer += piece
                if not piece or b"}" in answer:
                    break
            if writable:
                with contextlib.suppress(BlockingIOError):
                    sent += sock.send(block)
            if sent % (4 * MiB) < len(block):
                peak = max(peak, server.rss)
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"code":"document_too_large"' in answer
    # Refused once past the limit: socket buffers (up to tcp_rmem's 32 MiB) aside, nothing like 1 GiB.
    assert sent < LIMIT + 64 * MiB, sent / MiB
    assert peak - before < 40 * MiB, (before / MiB, peak / MiB)
    print(f"\nrefused after {sent / MiB:.1f} MiB sent; server RSS {before / MiB:.0f} -> {peak / MiB:.0f} MiB")


def _stalled_reader(port: int, path: str) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a tiny window: the server must wait
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def _read_all_events(sock: socket.socket) -> tuple[list[int], bool]:
    """Read an SSE response (chunked) to its end or EOF: the ``id:`` of every event, and
    whether the response ended properly (its last chunk) rather than being cut."""
    sock.settimeout(60)
    data = bytearray()
    complete = False
    while True:
        piece = sock.recv(1 << 20)
        if not piece:
            break
        data += piece
        if data.endswith(b"\r\n0\r\n\r\n"):
            complete = True
            break
    ids = [int(line[4:]) for line in bytes(data).split(b"\n") if line.startswith(b"id: ")]
    return ids, complete


@dataclass
class BigJob:
    events_url: str
    last_seq: int
    stream_bytes: int


@pytest.fixture(scope="module")
def big_job(server: Server) -> BigJob:
    """A finished job whose event stream is several MiB (tens of thousands of events)."""
    random.seed(7)
    words = ["the", "committee", "met", "to", "review", "costs", "that", "rose", "and", "agreed", "to", "cut"]
    text = " ".join(random.choice(words) for _ in range(100_000)).encode()
    options = json.dumps({"chunk_size": 400, "chunk_overlap": 0})
    job = httpx.post(
        server.base + "/v1/jobs",
        files={"options": (None, options), "file": ("words.txt", text, "text/plain")},
        timeout=60,
    ).json()
    stream_bytes = 0
    with httpx.stream("GET", server.base + job["events_url"], timeout=300) as r:
        for piece in r.iter_bytes():
            stream_bytes += len(piece)
    last_seq = httpx.get(f"{server.base}/v1/jobs/{job['job_id']}").json()["last_seq"]
    assert stream_bytes > 1 * MiB, stream_bytes
    return BigJob(job["events_url"], last_seq, stream_bytes)


def test_stalled_sse_readers_hold_bounded_memory(server: Server, big_job: BigJob) -> None:
    readers = 24
    before = server.rss
    socks = [_stalled_reader(server.port, big_job.events_url) for _ in range(readers)]
    try:
        time.sleep(3)  # the server writes what the windows take, then waits (less than SEND_TIMEOUT_S)
        during = server.rss
        # Were the streams buffered in the server, it would hold readers x stream_bytes.
        assert during - before < max(16 * MiB, readers * big_job.stream_bytes / 3), (
            f"RSS {before / MiB:.0f} -> {during / MiB:.0f} MiB with {readers} stalled readers "
            f"of {big_job.stream_bytes / MiB:.1f} MiB each"
        )
        ids, complete = _read_all_events(socks[0])
        assert complete and ids == list(range(1, big_job.last_seq + 1))
    finally:
        for sock in socks:
            sock.close()
    print(
        f"\n{readers} stalled readers of a {big_job.stream_bytes / MiB:.1f} MiB stream: "
        f"server RSS {before / MiB:.0f} -> {during / MiB:.0f} MiB"
    )


def test_a_stalled_reader_is_cut_off_and_can_resume(server: Server, big_job: BigJob) -> None:
    sock = _stalled_reader(server.port, big_job.events_url)
    try:
        time.sleep(SEND_TIMEOUT_S + 4)
        ids, complete = _read_all_events(sock)
    finally:
        sock.close()
    assert not complete, "the server waited for the stalled reader for ever"
    assert ids and ids == list(range(1, ids[-1] + 1)) and ids[-1] < big_job.last_seq
    with httpx.stream(
        "GET", server.base + big_job.events_url, headers={"Last-Event-ID": str(ids[-1])}, timeout=120
    ) as r:
        rest = [int(line[4:]) for line in r.iter_lines() if line.startswith("id: ")]
    assert ids + rest == list(range(1, big_job.last_seq + 1))
