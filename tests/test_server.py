"""The /ws endpoint in-process with Starlette's TestClient: happy paths and every refusal."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from summarizer.errors import CloseCode
from summarizer.protocol import TERMINAL_TYPES, parse_server
from summarizer.server import create_app
from summarizer.settings import Settings

from .conftest import SAMPLES
from .fakes import EchoModel

TEST_HOSTS = ["testserver"]
"""Starlette's TestClient addresses the app as ``testserver``: allow it (DNS-rebinding guard)."""

PARAGRAPH = (
    "The committee met on Tuesday to review the budget. Costs rose by ten percent over the year. "
    "Members agreed to cut travel and to delay the new building. The chair thanked the staff.\n\n"
)


@pytest.fixture
def client() -> Iterator[TestClient]:
    app = create_app(
        Settings(max_frame_bytes=64 * 1024, chunk_size=600, chunk_overlap=50, allowed_hosts=TEST_HOSTS)
    )
    with TestClient(app) as c:
        yield c


def events_until_terminal(ws: Any) -> list[Any]:
    out = []
    while True:
        event = parse_server(ws.receive_text())
        out.append(event)
        if event.type in TERMINAL_TYPES:
            return out


def start(ws: Any, **fields: Any) -> Any:
    ws.send_json({"type": "start", "protocol": 1, **fields})
    return parse_server(ws.receive_text())


def assert_seq(events: list[Any]) -> None:
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + len(events)))
    assert len({e.job_id for e in events}) == 1


def test_text_messages_end_to_end(client: TestClient) -> None:
    text = PARAGRAPH * 20
    with client.websocket_connect("/ws") as ws:
        accepted = start(ws, filename="minutes.txt", media_type="text/plain")
        assert accepted.type == "accepted" and accepted.seq == 1 and len(accepted.job_id) == 32
        pieces = [text[i : i + 500] for i in range(0, len(text), 500)]
        for piece in pieces:
            ws.send_json({"type": "text", "text": piece})
        ws.send_json({"type": "end", "sha256": hashlib.sha256(text.encode()).hexdigest()})
        events = [accepted, *events_until_terminal(ws)]
    assert_seq(events)
    acks = [e for e in events if e.type == "ack"]
    assert len(acks) == len(pieces) and acks[-1].received == len(text.encode())
    (document,) = [e for e in events if e.type == "document"]
    summaries = [e for e in events if e.type == "chunk.summary"]
    assert document.chunks == len(summaries) > 1
    assert sorted(e.index for e in summaries) == list(range(document.chunks))
    final = events[-1]
    assert final.type == "summary" and final.text.strip()
    assert "".join(e.text for e in events if e.type == "summary.token") == final.text
    for s in summaries:
        assert "".join(e.text for e in events if e.type == "chunk.token" and e.index == s.index) == s.text


def test_binary_upload_with_checksum_and_second_job(client: TestClient) -> None:
    data = (SAMPLES / "documents" / "zen-of-python.md").read_bytes()
    with client.websocket_connect("/ws") as ws:
        for _ in range(2):  # two jobs, one after the other, on one connection
            accepted = start(ws, filename="zen.md", media_type="text/markdown", size=len(data))
            ws.send_bytes(data[:100])
            ws.send_bytes(data[100:])
            ws.send_json({"type": "end", "sha256": hashlib.sha256(data).hexdigest()})
            events = [accepted, *events_until_terminal(ws)]
            assert_seq(events)
            assert events[-1].type == "summary"


def test_injected_model_is_used(settings: Settings) -> None:
    model = EchoModel(words=3)
    app = create_app(settings.model_copy(update={"allowed_hosts": TEST_HOSTS}), models={"echo": model})
    with TestClient(app) as c, c.websocket_connect("/ws") as ws:
        accepted = start(ws, filename="a.txt", options={"model": "echo"})
        assert accepted.model == "echo" and "echo" in accepted.models
        ws.send_json({"type": "text", "text": PARAGRAPH})
        ws.send_json({"type": "end"})
        events = events_until_terminal(ws)
    assert events[-1].type == "summary" and events[-1].model == "echo"
    assert model.prompts


@pytest.mark.parametrize(
    ("frame", "code", "close"),
    [
        ("this is not json", "bad_json", CloseCode.PROTOCOL_ERROR),
        ('{"type": "launch"}', "unknown_type", CloseCode.PROTOCOL_ERROR),
        ('{"type": "text", "text": "before start"}', "unexpected_message", CloseCode.PROTOCOL_ERROR),
        ('{"type": "end"}', "unexpected_message", CloseCode.PROTOCOL_ERROR),
        ('{"type": "cancel"}', "unexpected_message", CloseCode.PROTOCOL_ERROR),
        ('{"type": "start", "protocol": 2}', "unsupported_protocol", CloseCode.UNSUPPORTED_DATA),
        (
            '{"type": "start", "options": {"chunk_size": 500, "chunk_overlap": 600}}',
            "invalid_option",
            CloseCode.PROTOCOL_ERROR,
        ),
    ],
)
def test_protocol_errors_are_reported_then_closed(
    client: TestClient, frame: str, code: str, close: int
) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_text(frame)
        error = parse_server(ws.receive_text())
        assert error.type == "error" and error.code == code and error.job_id is None and error.seq == 0
        assert error.message
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == close


def test_binary_before_start(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_bytes(b"%PDF-1.7")
        error = parse_server(ws.receive_text())
        assert error.code == "unexpected_message"
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == CloseCode.PROTOCOL_ERROR


def test_frame_too_large_closes_1009(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        start(ws, filename="a.txt")
        ws.send_bytes(b"x" * (64 * 1024 + 1))
        events = events_until_terminal(ws)
        assert events[-1].code == "frame_too_large"
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == CloseCode.MESSAGE_TOO_BIG


def test_unknown_model_keeps_connection(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        error = start(ws, filename="a.txt", options={"model": "openai:gpt-nope"})
        assert error.type == "error" and error.code == "unknown_model"
        accepted = start(ws, filename="a.txt")
        assert accepted.type == "accepted"


def test_declared_size_too_large(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        error = start(ws, filename="a.pdf", size=10**12)
        assert error.code == "document_too_large"
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
        assert info.value.code == CloseCode.POLICY_VIOLATION


def test_checksum_mismatch_discards_upload(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        start(ws, filename="a.pdf", media_type="application/pdf", size=4)
        ws.send_bytes(b"%PDF")
        ws.send_json({"type": "end", "sha256": "0" * 64})
        events = events_until_terminal(ws)
        assert events[-1].code == "checksum_mismatch"
        assert not any(e.type in ("document", "chunk.started") for e in events)


def test_size_mismatch(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        start(ws, filename="a.txt", size=10)
        ws.send_bytes(b"hello")
        ws.send_json({"type": "end"})
        assert events_until_terminal(ws)[-1].code == "size_mismatch"


def test_mixed_binary_and_text(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        start(ws, filename="a.txt")
        ws.send_bytes(b"hello ")
        ws.send_json({"type": "text", "text": "world"})
        assert events_until_terminal(ws)[-1].code == "unexpected_message"


@pytest.mark.parametrize(
    ("filename", "media_type", "data", "code"),
    [
        ("a.pdf", "application/pdf", b"this is not a pdf at all" * 10, "not_a_pdf"),
        ("a.bin", "application/octet-stream", bytes(range(256)) * 4, "unsupported_media_type"),
        ("a.txt", "text/plain", "caf\u00e9 ".encode("latin-1") * 50, "bad_encoding"),
        ("a.txt", "text/plain", b"   \n\n  ", "empty_document"),
    ],
)
def test_bad_documents_end_the_job_not_the_connection(
    client: TestClient, filename: str, media_type: str, data: bytes, code: str
) -> None:
    with client.websocket_connect("/ws") as ws:
        start(ws, filename=filename, media_type=media_type, size=len(data))
        ws.send_bytes(data)
        ws.send_json({"type": "end"})
        events = events_until_terminal(ws)
        assert events[-1].type == "error" and events[-1].code == code, events[-1]
        assert events[-1].message
        # The connection still serves a new job.
        assert start(ws, filename="b.txt").type == "accepted"


def test_cancel_during_upload(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        start(ws, filename="a.txt")
        ws.send_json({"type": "text", "text": PARAGRAPH})
        ws.send_json({"type": "cancel"})
        events = events_until_terminal(ws)
        assert events[-1].type == "cancelled"
        assert_seq(events)


def test_healthz_config_and_page(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    config = client.get("/api/config").json()
    assert config["protocol"] == 1 and "extractive" in config["models"]
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_docs_match_limits(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        accepted = start(ws, filename="a.txt")
    assert json.loads(accepted.limits.model_dump_json())["max_frame_bytes"] == 64 * 1024


def test_start_up_heap_is_frozen_while_serving_and_thawed_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """Full collections skip the start-up heap while an app serves (gc.freeze), and not after it stops."""
    import gc

    import summarizer.server

    # An app an earlier test left running (never shut down) may hold the heap frozen and
    # count as serving: start from a process where no app serves.
    monkeypatch.setattr(summarizer.server, "_FROZEN_APPS", 0)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    settings = Settings(allowed_hosts=TEST_HOSTS)
    with TestClient(create_app(settings)) as first:
        assert gc.get_freeze_count() > 1000  # the imported libraries, at least
        with TestClient(create_app(settings)):  # a second app in the process shares the frozen heap
            assert gc.get_freeze_count() > 1000
        assert gc.get_freeze_count() > 1000  # the first one still serves: still frozen
        assert first.get("/healthz").status_code == 200
    assert gc.get_freeze_count() == 0
