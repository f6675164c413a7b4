"""Input and security: invalid text, DNS rebinding, secrets at rest, bugs that must not stall silently."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import websockets
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from summarizer.cli import running_server
from summarizer.protocol import TERMINAL_TYPES, parse_server
from summarizer.server import create_app
from summarizer.settings import Settings

from .fakes import EchoModel
from .rawws import handshake

pytestmark = pytest.mark.e2e

PARAGRAPH = "The committee met on Tuesday to review the budget. Costs rose by ten percent.\n\n"


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def until_terminal(ws: Any) -> list[Any]:
    out = []
    while True:
        event = parse_server(ws.receive_text())
        out.append(event)
        if event.type in TERMINAL_TYPES:
            return out


def test_lone_surrogate_in_text_is_bad_encoding(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, allowed_hosts=["testserver"])
    with TestClient(create_app(settings)) as client, client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start", "protocol": 1, "filename": "a.txt", "media_type": "text/plain"})
        assert parse_server(ws.receive_text()).type == "accepted"
        ws.send_text('{"type": "text", "text": "Hello \\ud800 world"}')  # valid JSON, not valid Unicode text
        events = until_terminal(ws)
        assert events[-1].type == "error" and events[-1].code == "bad_encoding", events[-1]
        # The connection stays open: the next job works.
        ws.send_json({"type": "start", "protocol": 1, "filename": "b.txt", "media_type": "text/plain"})
        assert parse_server(ws.receive_text()).type == "accepted"


def test_dns_rebinding_is_refused_by_host_and_origin() -> None:
    with running_server(Settings(allowed_hosts=[])) as url:
        port = port_of(url)
        # A rebinding page: its own name resolves to 127.0.0.1; it controls Host and Origin alike.
        sock, status = handshake(port, host=f"rebind.example:{port}", origin=f"http://rebind.example:{port}")
        sock.close()
        assert status == 400
        # Allowed host, foreign page.
        sock, status = handshake(port, origin="http://evil.example")
        sock.close()
        assert status == 403
        for host, origin in (
            (f"127.0.0.1:{port}", None),
            (f"localhost:{port}", "http://localhost:5173"),
            (f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"),
            (f"[::1]:{port}", f"http://[::1]:{port}"),
        ):
            sock, status = handshake(port, host=host, origin=origin)
            sock.close()
            assert status == 101, (host, origin)
    with running_server(Settings(allowed_hosts=["summaries.example.org"])) as url:
        port = port_of(url)
        sock, status = handshake(port, host="summaries.example.org", origin="https://summaries.example.org")
        sock.close()
        assert status == 101
        sock, status = handshake(port, host=f"localhost:{port}")
        sock.close()
        assert status == 400  # an explicit list replaces the defaults


def test_pdf_password_is_never_written_and_a_recovered_job_asks_for_it(tmp_path: Path) -> None:
    secret = "correct-horse-battery-staple"
    settings = Settings(data_dir=tmp_path, allowed_hosts=["testserver"])
    with TestClient(create_app(settings)) as client, client.websocket_connect("/ws") as ws:
        ws.send_json(
            {
                "type": "start",
                "protocol": 1,
                "filename": "a.txt",
                "media_type": "text/plain",
                "options": {"password": secret},
            }
        )
        job_id = parse_server(ws.receive_text()).job_id
        ws.send_json({"type": "text", "text": PARAGRAPH})
        assert parse_server(ws.receive_text()).type == "ack"
    # The server stopped with the job unfinished ("uploading"): nothing on disk holds the password.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    with TestClient(create_app(settings)) as client, client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "resume", "job_id": job_id, "last_seq": 0})
        resumed = parse_server(ws.receive_text())
        assert resumed.type == "resumed"
        events = until_terminal(ws)
        assert events[-1].type == "error" and events[-1].code == "password_required"
        assert events[-1].retryable


async def test_a_bug_in_the_event_sender_closes_with_1011_instead_of_stalling(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    real = WebSocket.send_text

    async def buggy(self: WebSocket, data: str) -> None:
        if '"type":"ack"' in data:
            raise RuntimeError("a bug that is not about the socket")
        await real(self, data)

    monkeypatch.setattr(WebSocket, "send_text", buggy)
    with running_server(Settings(model="echo"), models={"echo": EchoModel()}) as url:
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "start", "protocol": 1, "filename": "a.txt"}))
            assert json.loads(await ws.recv())["type"] == "accepted"
            await ws.send(json.dumps({"type": "text", "text": PARAGRAPH}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    assert "a bug that is not about the socket" in caplog.text
