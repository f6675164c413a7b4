"""The CLI, called as main([...])."""

from __future__ import annotations

import json

import pytest

from summarizer.cli import EXIT_ERROR, EXIT_TRANSPORT, main

from .conftest import SAMPLES, corpus_file


def json_lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.e2e
def test_summarize_json_on_tracemonkey(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["summarize", str(corpus_file("pdf", "tracemonkey.pdf")), "--json"])
    events = json_lines(capsys.readouterr().out)
    assert status == 0
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(events) + 1))
    (document,) = [e for e in events if e["type"] == "document"]
    chunk_summaries = [e for e in events if e["type"] == "chunk.summary"]
    assert len(chunk_summaries) == document["chunks"]
    assert sorted(e["index"] for e in chunk_summaries) == list(range(document["chunks"]))  # type: ignore[type-var]
    assert events[-1]["type"] == "summary" and str(events[-1]["text"]).strip()


@pytest.mark.e2e
def test_summarize_renders_summary_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["summarize", str(SAMPLES / "documents" / "zen-of-python.md")])
    captured = capsys.readouterr()
    assert status == 0
    assert "better than" in captured.out
    assert "chunk 1" in captured.err


@pytest.mark.e2e
def test_summarize_against_url_and_bad_file(live_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["summarize", str(corpus_file("bad", "encrypted-rc4-password.pdf")), "--url", live_server])
    captured = capsys.readouterr()
    assert status == EXIT_ERROR
    assert "encrypted_pdf" in captured.err


def test_unreachable_url(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        ["summarize", str(SAMPLES / "documents" / "zen-of-python.md"), "--url", "ws://127.0.0.1:9/ws"]
    )
    assert status == EXIT_TRANSPORT
    assert "Cannot connect" in capsys.readouterr().err


def test_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "summarize" in capsys.readouterr().out
    assert main(["serve", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--concurrency" in out and "SUMMARIZER_CONCURRENCY" in out and "default: 4" in out
    assert main(["summarize", "/no/such/file.pdf"]) == 2
    assert main(["serve", "--port", "not-a-port"]) == 2
    assert main(["summarize", str(SAMPLES / "documents" / "zen-of-python.md"), "--chunk-size", "5"]) == 2
