"""Protocol messages: round trips, parse errors, and docs/protocol.md kept in step."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from summarizer import protocol
from summarizer.errors import ErrorCode, ProtocolError
from summarizer.protocol import (
    Accepted,
    Ack,
    Cancel,
    Cancelled,
    ChunkFailed,
    ChunkRestart,
    ChunkStarted,
    ChunkSummary,
    ChunkToken,
    Collapse,
    CollapseRestart,
    CollapseSummary,
    CollapseToken,
    Document,
    End,
    Error,
    JobWarning,
    Limits,
    Progress,
    Resume,
    Resumed,
    Start,
    StartOptions,
    Summary,
    SummaryRestart,
    SummaryToken,
    Text,
    Usage,
    dump,
    parse_client,
    parse_server,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"

LIMITS = Limits(
    max_document_bytes=10, max_frame_bytes=5, ack_window_bytes=8, max_text_chars=100, max_concurrency=4
)
SERVER_EXAMPLES: list[BaseModel] = [
    Accepted(
        job_id="a" * 32,
        seq=1,
        limits=LIMITS,
        model="extractive",
        models=["extractive"],
        chunk_size=4000,
        chunk_overlap=200,
        concurrency=4,
    ),
    Ack(job_id="a" * 32, seq=2, received=10, messages=1),
    Progress(job_id="a" * 32, seq=3, stage="map", done=1, total=None, elapsed_s=0.5, eta_s=None),
    Document(job_id="a" * 32, seq=4, pages=3, characters=100, chunks=2),
    ChunkStarted(job_id="a" * 32, seq=5, index=0, pages=(1, 2), characters=99),
    ChunkToken(job_id="a" * 32, seq=6, index=0, pages=(1, 2), text="Hé "),
    ChunkSummary(job_id="a" * 32, seq=7, index=0, pages=(1, 2), text="Hé there.", elapsed_s=0.1),
    Collapse(job_id="a" * 32, seq=8, level=1, groups=2, characters=500),
    CollapseToken(job_id="a" * 32, seq=9, level=1, group=0, pages=(1, 9), text="A "),
    CollapseSummary(job_id="a" * 32, seq=10, level=1, group=0, pages=(1, 9), text="A b."),
    SummaryToken(job_id="a" * 32, seq=11, text="The "),
    Summary(
        job_id="a" * 32, seq=12, text="The end.", elapsed_s=1.5, calls={"map": 2, "reduce": 1}, model="x"
    ),
    Cancelled(job_id="a" * 32, seq=13, elapsed_s=2.0),
    JobWarning(job_id="a" * 32, seq=14, message="Page 1 has no text layer."),
    Resumed(job_id="a" * 32, seq=0, state="processing", last_seq=14, received=100, messages=2),
    ChunkRestart(job_id="a" * 32, seq=15, index=3, pages=(4, 5), attempt=2, reason="server restarted"),
    CollapseRestart(job_id="a" * 32, seq=16, level=1, group=0, pages=(1, 9), reason="retry"),
    SummaryRestart(job_id="a" * 32, seq=17, attempt=2, reason="retry"),
    ChunkFailed(job_id="a" * 32, seq=18, index=4, pages=(5, 6), code=ErrorCode.RATE_LIMITED, message="429"),
    ChunkSummary(
        job_id="a" * 32,
        seq=19,
        index=1,
        pages=(2, 3),
        text="B.",
        usage=Usage(input_tokens=100, output_tokens=10, total_tokens=110),
    ),
    Summary(
        job_id="a" * 32,
        seq=20,
        text="The end.",
        elapsed_s=1.5,
        calls={"map": 2, "reduce": 1},
        model="openai:gpt-4o-mini",
        missing_pages=[(5, 6)],
        usage=Usage(input_tokens=1000, output_tokens=100, total_tokens=1100),
        cost_usd=0.0002,
        retries=3,
    ),
    Error(job_id=None, seq=0, code=ErrorCode.BAD_JSON, message="bad", retryable=False),
]
CLIENT_EXAMPLES: list[BaseModel] = [
    Start(
        filename="a.pdf",
        media_type="application/pdf",
        size=3,
        options=StartOptions(model="extractive", chunk_size=500),
    ),
    Start(
        filename="b.pdf",
        options=StartOptions(
            length="short", format="bullets", language="French", instructions="Focus on money.", strict=True
        ),
    ),
    Text(text="hello \u2603\n"),
    End(sha256="ab" * 32),
    End(),
    Cancel(),
    Resume(job_id="a" * 32, last_seq=17, token="secret"),
]


def _union_types(annotation: Any) -> set[str]:
    union = typing.get_args(annotation)[0]
    return {cls.model_fields["type"].default for cls in typing.get_args(union)}


SERVER_TYPES = _union_types(protocol.ServerEvent)
CLIENT_TYPES = _union_types(protocol.ClientMessage)


def test_every_message_type_has_a_round_trip_example() -> None:
    assert {m.type for m in SERVER_EXAMPLES} == SERVER_TYPES  # type: ignore[attr-defined]
    assert {m.type for m in CLIENT_EXAMPLES} == CLIENT_TYPES  # type: ignore[attr-defined]


@pytest.mark.parametrize("message", SERVER_EXAMPLES, ids=lambda m: m.type)  # type: ignore[attr-defined]
def test_server_event_round_trip(message: BaseModel) -> None:
    assert parse_server(dump(message)) == message
    assert parse_server(json.loads(dump(message))) == message


@pytest.mark.parametrize("message", CLIENT_EXAMPLES, ids=lambda m: m.type)  # type: ignore[attr-defined]
def test_client_message_round_trip(message: BaseModel) -> None:
    assert parse_client(dump(message)) == message


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", ErrorCode.BAD_JSON),
        ("[1, 2]", ErrorCode.BAD_JSON),
        ('"start"', ErrorCode.BAD_JSON),
        ("{}", ErrorCode.UNKNOWN_TYPE),
        ('{"type": "launch"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type": "summary", "text": "server-only type"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type": "text"}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "text", "text": 5}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "start", "size": -1}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "start", "options": {"chunk_size": 5}}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "start", "surprise": true}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "end", "sha256": "xyz"}', ErrorCode.INVALID_MESSAGE),
    ],
)
def test_parse_client_errors_have_specific_codes(raw: str, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client(raw)
    assert info.value.code is code
    assert info.value.message


def test_invalid_message_names_the_field() -> None:
    with pytest.raises(ProtocolError, match=r"options\.chunk_size"):
        parse_client('{"type": "start", "options": {"chunk_size": 5}}')


def _doc_examples() -> list[dict[str, Any]]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return [json.loads(block) for block in blocks]


def test_docs_examples_parse_and_cover_every_type() -> None:
    examples = _doc_examples()
    seen = set()
    for example in examples:
        kind = example["type"]
        seen.add(kind)
        if kind in CLIENT_TYPES:
            assert dump(parse_client(json.dumps(example))), kind
        else:
            event = parse_server(example)
            assert event.type == kind
    assert seen == SERVER_TYPES | CLIENT_TYPES


def test_docs_list_every_error_code() -> None:
    text = DOC.read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([a-z_]+)` \|", text, re.M))
    assert {c.value for c in ErrorCode} <= listed
