"""Property-based test (hypothesis): arbitrary JSON, binary frames and message orders.

Whatever a client sends, the server answers with documented messages only (every
frame parses as a protocol event, every error code is an ``ErrorCode``), closes
only with documented close codes, never raises, and leaves no job stuck.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from summarizer.errors import CloseCode, ErrorCode
from summarizer.protocol import TERMINAL_TYPES, parse_server
from summarizer.server import create_app
from summarizer.settings import Settings
from summarizer.store import SqliteStore as Storage

from .fakes import EchoModel

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
types = st.sampled_from(["start", "text", "end", "cancel", "resume", "summary", "", "START"])
fields = st.dictionaries(
    st.sampled_from(
        ["protocol", "filename", "media_type", "size", "options", "text", "sha256", "job_id", "last_seq"]
    ),
    json_values,
    max_size=4,
)
typed = st.builds(lambda t, f: json.dumps({"type": t, **f}), types, fields)
valid = st.sampled_from(
    [
        json.dumps({"type": "start", "protocol": 1, "filename": "a.txt", "media_type": "text/plain"}),
        json.dumps({"type": "start", "protocol": 1, "filename": "a.pdf", "size": 8}),
        json.dumps({"type": "text", "text": "Some words here. And a second sentence.\n\n"}),
        json.dumps({"type": "end"}),
        json.dumps({"type": "end", "sha256": "0" * 64}),
        json.dumps({"type": "cancel"}),
        json.dumps({"type": "resume", "job_id": "0" * 32, "last_seq": 0}),
    ]
)
frames = st.lists(
    st.one_of(
        valid,
        typed,
        json_values.map(json.dumps),
        st.text(max_size=40),
        st.binary(max_size=64).map(lambda b: b or b"%PDF-1.4"),
    ),
    min_size=1,
    max_size=8,
)

DOCUMENTED_CLOSES = {int(c) for c in CloseCode}
CODES = {c.value for c in ErrorCode}


@pytest.fixture(scope="module")
def app_client() -> Any:
    storage = Storage(None)
    app = create_app(
        Settings(max_frame_bytes=4096, idle_timeout_s=5, allowed_hosts=["testserver"]),
        models={"echo": EchoModel()},
        storage=storage,
    )
    with TestClient(app) as client:
        yield client


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=frames)
def test_any_input_gets_documented_answers(app_client: TestClient, frames: list[Any], caplog: Any) -> None:
    caplog.set_level(logging.ERROR)
    closed_with: int | None = None
    received: list[Any] = []
    with app_client.websocket_connect("/ws") as ws:
        try:
            for frame in frames:
                if isinstance(frame, bytes):
                    ws.send_bytes(frame)
                else:
                    ws.send_text(frame)
            ws.send_text(json.dumps({"type": "cancel"}))  # end any job the frames left running
            while True:
                message = ws.receive()
                if message["type"] == "websocket.close":
                    closed_with = message["code"]
                    break
                event = parse_server(message["text"])
                received.append(event)
                if event.type == "error" and event.job_id is None and event.code == "unexpected_message":
                    # 'cancel' without a job: reported, then closed (1002).
                    continue
                if event.type in TERMINAL_TYPES and event.job_id is not None:
                    break
        except WebSocketDisconnect as exc:
            closed_with = exc.code
    for event in received:
        if event.type == "error":
            assert event.code in CODES and event.message
    if closed_with is not None:
        assert closed_with in DOCUMENTED_CLOSES
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert_no_stuck_job(app_client)


def assert_no_stuck_job(client: TestClient) -> None:
    """Every job the example left behind finishes: processing ones by themselves,
    abandoned uploads through the idle expiry."""
    jobs = client.app.state.jobs  # type: ignore[attr-defined]
    live = list(jobs._jobs.values())

    async def settle() -> None:
        jobs.expire_abandoned(0.0)
        for _ in range(100):
            if all(job.finished for job in live):
                return
            await asyncio.sleep(0.05)

    client.portal.call(settle)  # type: ignore[union-attr]
    assert all(job.finished for job in live), [(job.id, job.state) for job in live]
    for job in live:
        jobs.release(job)
