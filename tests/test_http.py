"""The HTTP twin of the protocol (``/v1/jobs``, SSE) against a real uvicorn on 127.0.0.1.

Same jobs, same ``seq`` as ``/ws``: resume by ``Last-Event-ID`` exactly once,
cancel, the token, errors with the protocol's codes, and both directions between
HTTP and the WebSocket.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import websockets

from summarizer.cli import running_server
from summarizer.protocol import TERMINAL_TYPES, parse_server
from summarizer.settings import Settings

from .conftest import SAMPLES
from .fakes import EchoModel

pytestmark = pytest.mark.e2e

PARAGRAPH = (
    "The committee met on Tuesday to review the budget. Costs rose by ten percent over the year. "
    "Members agreed to cut travel and to delay the new building. The chair thanked the staff.\n\n"
)
TEXT = (PARAGRAPH * 40).encode()
"""About 8 KB of text: with chunk_size 600, a dozen chunks."""


@dataclass
class SSE:
    id: str | None
    event: str | None
    data: str

    def parsed(self) -> Any:
        return parse_server(self.data)


def read_sse(response: httpx.Response, *, comments: list[str] | None = None) -> Iterator[SSE]:
    """Parse a ``text/event-stream`` body as it arrives (the SSE spec's line rules)."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield SSE(fields.get("id"), fields.get("event"), "\n".join(data))
            fields, data = {}, []
        elif line.startswith(":"):
            if comments is not None:
                comments.append(line)
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            else:
                fields[name] = value


def assert_contiguous(seqs: list[int], first: int = 1) -> None:
    assert seqs == list(range(first, first + len(seqs))), seqs


def post(base: str, data: bytes = TEXT, *, options: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    files: dict[str, Any] = {}
    if options is not None:
        files["options"] = (None, json.dumps(options), "application/json")
    files["file"] = ("minutes.txt", data, "text/plain")
    return httpx.post(f"{base}/v1/jobs", files=files, timeout=30, **kwargs)


def follow(base: str, job_id: str, *, headers: dict[str, str] | None = None, **params: Any) -> list[Any]:
    with httpx.stream(
        "GET", f"{base}/v1/jobs/{job_id}/events", headers=headers, params=params, timeout=60
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = []
        for sse in read_sse(r):
            event = sse.parsed()
            assert sse.id == str(event.seq) and sse.event == event.type
            events.append(event)
        return events


@pytest.fixture(scope="module")
def slow_model() -> EchoModel:
    return EchoModel(words=4, delay_s=0.15)


@pytest.fixture(scope="module")
def server(slow_model: EchoModel) -> Iterator[str]:
    settings = Settings(chunk_size=600, chunk_overlap=50, concurrency=1, keepalive_s=0.05)
    with running_server(settings, models={"slow": slow_model}) as url:
        yield url.removesuffix("/ws").replace("ws://", "http://")


def test_post_then_events_then_status(server: str) -> None:
    r = post(server, options={"summary_words": 40})
    assert r.status_code == 201, r.text
    body = r.json()
    job_id = body["job_id"]
    assert body["events_url"] == f"/v1/jobs/{job_id}/events"
    events = follow(server, job_id)
    assert_contiguous([e.seq for e in events])
    assert events[0].type == "accepted" and events[-1].type == "summary"
    assert {e.job_id for e in events} == {job_id}
    status = httpx.get(f"{server}/v1/jobs/{job_id}").json()
    assert status["state"] == "done" and status["last_seq"] == events[-1].seq
    assert status["summary"] == events[-1].text


def test_sse_data_is_the_websocket_json(server: str) -> None:
    job_id = post(server).json()["job_id"]
    with httpx.stream("GET", f"{server}/v1/jobs/{job_id}/events", timeout=60) as r:
        sse_data = [sse.data for sse in read_sse(r)]

    async def over_ws() -> list[str]:
        async with websockets.connect(server.replace("http://", "ws://") + "/ws") as ws:
            await ws.send(json.dumps({"type": "resume", "job_id": job_id, "last_seq": 0}))
            frames = []
            while True:
                raw = str(await ws.recv())
                if json.loads(raw)["type"] == "resumed":
                    continue
                frames.append(raw)
                if json.loads(raw)["type"] in TERMINAL_TYPES:
                    return frames

    import asyncio

    assert asyncio.run(over_ws()) == sse_data


def test_resume_by_last_event_id_exactly_once(server: str) -> None:
    job_id = post(server, options={"model": "slow"}).json()["job_id"]
    first: list[Any] = []
    with httpx.stream("GET", f"{server}/v1/jobs/{job_id}/events", timeout=60) as r:
        for sse in read_sse(r):
            first.append(sse.parsed())
            if sse.event == "chunk.summary":
                break  # drop the connection mid-job
    assert first[-1].type == "chunk.summary"
    last_id = str(first[-1].seq)
    rest = follow(server, job_id, headers={"Last-Event-ID": last_id})
    assert rest[0].seq == first[-1].seq + 1
    seqs = [e.seq for e in first + rest]
    assert_contiguous(seqs)
    assert len(set(seqs)) == len(seqs)
    assert rest[-1].type == "summary"
    assert any(e.type == "chunk.summary" for e in rest), "the job was still running when resumed"
    # ?after= does the same, and Last-Event-ID wins over it (a reconnecting EventSource).
    again = follow(server, job_id, params={"after": "3"}, headers={"Last-Event-ID": last_id})
    assert [e.seq for e in again] == [e.seq for e in rest]
    assert [e.seq for e in follow(server, job_id, after=3)] == seqs[3:]


def test_keep_alive_comments_while_idle(server: str) -> None:
    job_id = post(server, options={"model": "slow"}).json()["job_id"]
    comments: list[str] = []
    with httpx.stream("GET", f"{server}/v1/jobs/{job_id}/events", timeout=60) as r:
        kinds = [sse.event for sse in read_sse(r, comments=comments)]
    assert kinds[-1] == "summary"
    assert ": keep-alive" in comments  # the slow model leaves gaps longer than keepalive_s


def test_cancel(server: str) -> None:
    job_id = post(server, options={"model": "slow"}).json()["job_id"]
    r = httpx.delete(f"{server}/v1/jobs/{job_id}")
    assert r.status_code == 202 and r.json()["job_id"] == job_id
    events = follow(server, job_id)
    assert events[-1].type == "cancelled"
    assert not any(e.type == "summary" for e in events)
    assert_contiguous([e.seq for e in events])
    assert httpx.get(f"{server}/v1/jobs/{job_id}").json()["state"] == "cancelled"
    again = httpx.delete(f"{server}/v1/jobs/{job_id}")
    assert again.status_code == 200 and again.json()["state"] == "cancelled"


def test_errors_carry_the_protocol_codes(server: str) -> None:
    unknown = httpx.get(f"{server}/v1/jobs/{'0' * 32}")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_job"
    assert httpx.get(f"{server}/v1/jobs/{'0' * 32}/events").status_code == 404
    assert httpx.delete(f"{server}/v1/jobs/{'0' * 32}").json()["code"] == "unknown_job"

    not_form = httpx.post(f"{server}/v1/jobs", content=TEXT, headers={"content-type": "text/plain"})
    assert not_form.status_code == 415 and not_form.json()["code"] == "unsupported_media_type"

    bad_json = httpx.post(f"{server}/v1/jobs", files={"options": (None, "{nope"), "file": ("a.txt", TEXT)})
    assert bad_json.status_code == 400 and bad_json.json()["code"] == "bad_json"

    bad_option = post(server, options={"chunk_size": 5})
    assert bad_option.status_code == 422 and bad_option.json()["code"] == "invalid_option"
    overlap = post(server, options={"chunk_size": 500, "chunk_overlap": 600})
    assert overlap.status_code == 422 and overlap.json()["code"] == "invalid_option"

    model = post(server, options={"model": "nope"})
    assert model.status_code == 422 and model.json()["code"] == "unknown_model"

    no_file = httpx.post(f"{server}/v1/jobs", files={"options": (None, "{}")})
    assert no_file.status_code == 400 and no_file.json()["code"] == "invalid_message"

    extra = httpx.post(f"{server}/v1/jobs", files={"file": ("a.txt", TEXT), "colour": (None, "red")})
    assert extra.status_code == 400 and extra.json()["code"] == "invalid_message"

    bad_after = httpx.get(f"{server}/v1/jobs/{post(server).json()['job_id']}/events", params={"after": "x"})
    assert bad_after.status_code == 400 and bad_after.json()["code"] == "invalid_message"


def test_a_document_error_is_a_422_with_the_job(server: str) -> None:
    junk = b"this is not a PDF at all" * 100
    r = httpx.post(f"{server}/v1/jobs", files={"file": ("book.pdf", junk, "application/pdf")})
    if r.status_code == 201:  # the parser had not looked at the bytes yet: the error is an event
        events = follow(server, r.json()["job_id"])
        assert events[-1].type == "error" and events[-1].code == "not_a_pdf"
    else:
        assert r.status_code == 422 and r.json()["code"] == "not_a_pdf" and r.json()["job_id"]


def test_token_is_required_on_every_route() -> None:
    with running_server(Settings(token="s3cret", chunk_size=600, chunk_overlap=50)) as url:
        base = url.removesuffix("/ws").replace("ws://", "http://")
        good = {"Authorization": "Bearer s3cret"}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            r = post(base, headers=headers)
            assert r.status_code == 401 and r.json()["code"] == "unauthorized", headers
            assert r.headers["www-authenticate"].startswith("Bearer")
        r = post(base, headers=good)
        assert r.status_code == 201
        job_id = r.json()["job_id"]
        for method, path in (
            ("GET", f"/v1/jobs/{job_id}"),
            ("GET", f"/v1/jobs/{job_id}/events"),
            ("DELETE", f"/v1/jobs/{job_id}"),
        ):
            denied = httpx.request(method, base + path)
            assert denied.status_code == 401 and denied.json()["code"] == "unauthorized", path
        events = follow(base, job_id, headers=good)
        assert events[-1].type == "summary"
        assert httpx.get(f"{base}/v1/jobs/{job_id}", headers=good).json()["state"] == "done"


async def test_http_job_followed_over_websocket(server: str) -> None:
    job_id = post(server, options={"model": "slow"}).json()["job_id"]
    over_http = []
    async with (
        httpx.AsyncClient(timeout=60) as http,
        http.stream("GET", f"{server}/v1/jobs/{job_id}/events") as r,
    ):
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                over_http.append(parse_server(line[6:]))
                if over_http[-1].type == "chunk.summary":
                    break
    async with websockets.connect(server.replace("http://", "ws://") + "/ws") as ws:
        await ws.send(json.dumps({"type": "resume", "job_id": job_id, "last_seq": over_http[-1].seq}))
        resumed = json.loads(await ws.recv())
        assert resumed["type"] == "resumed" and resumed["state"] == "processing"
        over_ws = []
        while not over_ws or over_ws[-1].type not in TERMINAL_TYPES:
            over_ws.append(parse_server(await ws.recv()))
    assert_contiguous([e.seq for e in over_http + over_ws])
    assert over_ws[-1].type == "summary"


async def test_websocket_job_followed_over_http(server: str) -> None:
    data = (SAMPLES / "documents" / "zen-of-python.md").read_bytes() * 8
    async with websockets.connect(server.replace("http://", "ws://") + "/ws") as ws:
        start = {"type": "start", "filename": "zen.md", "size": len(data), "options": {"model": "slow"}}
        await ws.send(json.dumps(start))
        accepted = parse_server(await ws.recv())
        await ws.send(data)
        await ws.send(json.dumps({"type": "end"}))
        over_ws = [accepted]
        while over_ws[-1].type != "chunk.summary":
            over_ws.append(parse_server(await ws.recv()))
    # The socket is gone; the job runs on. Follow it over HTTP from where the socket stopped.
    async with httpx.AsyncClient(timeout=60) as http:
        status = (await http.get(f"{server}/v1/jobs/{accepted.job_id}")).json()
        assert status["state"] == "processing"
        async with http.stream(
            "GET",
            f"{server}/v1/jobs/{accepted.job_id}/events",
            headers={"Last-Event-ID": str(over_ws[-1].seq)},
        ) as r:
            over_http = [parse_server(x[6:]) async for x in r.aiter_lines() if x.startswith("data: ")]
    assert_contiguous([e.seq for e in over_ws + over_http])
    assert over_http[-1].type == "summary"


def test_a_stalled_upload_is_refused_after_the_idle_time() -> None:
    import socket
    import time

    with running_server(Settings(idle_timeout_s=1.0)) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 100000\r\n\r\n"
                b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nsome text'
            )  # ... and nothing more
            started = time.monotonic()
            sock.settimeout(30)
            answer = b""
            while b"}" not in answer:
                piece = sock.recv(4096)
                if not piece:
                    break
                answer += piece
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"code":"idle_timeout"' in answer and b'"job_id"' in answer
    assert time.monotonic() - started < 20
