"""docs/protocol.md answers what an independent client needs (issue 9's protocol gaps),
and recovery keeps the promises it states."""

from __future__ import annotations

import json
import re
from pathlib import Path

from summarizer.protocol import (
    JOB_STATES,
    ChunkRestart,
    ChunkStarted,
    ChunkSummary,
    Document,
    SummaryToken,
    parse_server,
)
from summarizer.recovery import Recovery

DOC = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text(encoding="utf-8")


def examples() -> list[dict[str, object]]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", DOC, re.S)]


def section(title: str) -> str:
    start = DOC.index(title)
    end = DOC.find("\n### ", start + len(title))
    return DOC[start : end if end != -1 else None]


def test_resumed_states_are_listed_and_define_an_unfinished_upload() -> None:
    table = section("### `resumed`")
    listed = [s for s in re.findall(r"^\| `([a-z]+)` \|", table, re.M) if s != "state"]
    assert sorted(listed) == sorted(JOB_STATES)
    resume = section("### `resume`")
    assert "not finished exactly when `resumed.state` is\n`uploading`" in resume


def test_the_error_answering_resume_is_shown_with_its_envelope() -> None:
    resume = section("### `resume`")
    (error,) = [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", resume, re.S) if '"error"' in b]
    assert error["job_id"] is None and error["seq"] == 0 and error["code"] == "unknown_job"
    parse_server(error)


def test_several_followers_ack_cadence_and_document_repeat_are_stated() -> None:
    assert "Several connections may follow one job at once" in DOC
    assert "whenever the server has taken\neverything it received" in section("### `ack`")
    assert "does not repeat `document`" in DOC


def test_restart_example_numbers_attempts_from_two() -> None:
    restarts = [e for e in examples() if str(e.get("type", "")).endswith(".restart")]
    assert restarts and all(int(str(e["attempt"])) >= 2 for e in restarts)


def test_recovery_announces_the_next_attempt_and_never_repeats_document() -> None:
    log = [
        ChunkStarted(index=0, pages=(1, 1)),
        ChunkSummary(index=0, pages=(1, 1), text="done"),
        ChunkStarted(index=1, pages=(2, 2)),
        ChunkRestart(index=1, pages=(2, 2), attempt=2, reason="rate_limited: slow down"),
        Document(pages=2, characters=100, chunks=2),
        SummaryToken(text="The "),
    ]
    plan = Recovery.from_log(log)
    assert plan.results.maps == {0: "done"}
    restarts = plan.restart_events()
    assert [(e.type, e.attempt) for e in restarts] == [("chunk.restart", 3), ("summary.restart", 2)]
    assert plan.restart_events() == []
    assert plan.is_duplicate(Document(pages=2, characters=100, chunks=2))
    assert not plan.is_duplicate(ChunkSummary(index=1, pages=(2, 2), text="again"))
