"""The CLI, called as main([...])."""

from __future__ import annotations

import json
import os
from pathlib import Path

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
    assert "Chunk 1 of 1" in captured.err


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


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.e2e
@pytest.mark.parametrize("name", ["notes [red]x.txt", "[bold]b[i].md"])
def test_file_names_in_messages_are_not_markup(
    name: str, live_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Old code: '[red]' vanished from the server's message ('[/b]' in server text: test_render)."""
    path = tmp_path / name
    path.write_bytes(b"")  # the server's empty_document message names the file
    status = main(["summarize", str(path), "--url", live_server])
    err = flat(capsys.readouterr().err)
    assert status == EXIT_ERROR
    assert "empty_document" in err and name in err, err


@pytest.mark.e2e
def test_file_name_that_is_not_utf8(
    live_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Old code: a pydantic traceback (a lone surrogate in start.filename)."""
    empty = tmp_path / os.fsdecode(b"bad\xffname.txt")
    empty.write_bytes(b"")
    status = main(["summarize", str(empty), "--url", live_server])
    err = flat(capsys.readouterr().err)
    assert status == EXIT_ERROR and "bad\ufffdname.txt" in err, err
    good = tmp_path / os.fsdecode(b"good\xfe.md")
    good.write_bytes((SAMPLES / "documents" / "zen-of-python.md").read_bytes())
    assert main(["summarize", str(good), "--url", live_server]) == 0
    assert "better than" in capsys.readouterr().out


@pytest.mark.e2e
def test_summary_bar_completes(live_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["summarize", str(SAMPLES / "documents" / "zen-of-python.md"), "--url", live_server])
    err = capsys.readouterr().err
    assert status == 0
    (bar,) = [line for line in err.splitlines() if "Writing the summary" in line]
    assert "1/1" in bar, err
    assert "$0.0000" not in err


@pytest.mark.e2e
def test_encrypted_pdf_names_the_cli_flag(live_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Old code: 'send its password in options.password' (the protocol's name, not the flag)."""
    path = str(corpus_file("bad", "encrypted-rc4-password.pdf"))
    assert main(["summarize", path, "--url", live_server]) == EXIT_ERROR
    err = flat(capsys.readouterr().err)
    assert "--password" in err and "options.password" not in err, err
    assert main(["summarize", path, "--url", live_server, "--password", "wrong"]) == EXIT_ERROR
    err = flat(capsys.readouterr().err)
    assert "--password" in err and "options.password" not in err and "does not open" in err, err
    assert main(["summarize", path, "--dry-run"]) == EXIT_ERROR
    err = flat(capsys.readouterr().err)
    assert "--password" in err and "options.password" not in err, err


def test_readme_flag_table_lists_every_summarize_flag() -> None:
    """Old README: ``--no-chunks`` was missing from the table."""
    from summarizer.cli import summarize

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `--"))
    flags = {
        opt for param in summarize.params for opt in param.opts if opt.startswith("--") and opt != "--help"
    }
    missing = sorted(flag for flag in flags if f"`{flag}" not in table)
    assert not missing, missing


def test_password_required_after_restart_names_the_cli_flag() -> None:
    from summarizer.cli import _reword

    message = (
        "The server restarted, and it never stores PDF passwords: start the job again with options.password."
    )
    shown = _reword(password_given=True)("password_required", message)
    assert "--password" in shown and "options.password" not in shown
    assert _reword(password_given=False)("damaged_pdf", "as is") == "as is"


def test_dry_run_parses_the_pdf_before_loading_langchain() -> None:
    """The CLI's model-side modules (LangChain, ~45 MiB) are not loaded while the PDF workers run:
    they would add to the process tree's peak memory (the memory benchmark's goal). Nor after:
    the estimate needs no chat model, and LangChain's language models cost ~1 s of CPU to import."""
    import subprocess
    import sys

    path = str(corpus_file("pdf", "tracemonkey.pdf"))
    script = (
        "import sys, summarizer.ingest as ingest\n"
        "from summarizer.cli import main\n"
        "real = ingest.read_document\n"
        "def spy(*args, **kwargs):\n"
        "    print('LOADED' if 'langchain_core' in sys.modules else 'NOT LOADED', file=sys.stderr)\n"
        "    return real(*args, **kwargs)\n"
        "ingest.read_document = spy\n"
        f"code = main(['summarize', {path!r}, '--dry-run', '--ocr', 'off'])\n"
        "late = sorted(m for m in ('langchain_core.language_models', 'langchain_core.prompts.chat', "
        "'langsmith', 'summarizer.pipeline') if m in sys.modules)\n"
        "print('AFTER', late, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "NOT LOADED" in done.stderr, done.stderr[-2000:]
    assert "AFTER []" in done.stderr, done.stderr[-2000:]


def test_the_choice_flags_offer_exactly_what_the_protocol_and_settings_accept() -> None:
    """``--length``, ``--format``, ``--ocr`` and ``--model-http-client`` list their values from the
    ``Literal`` types they fill (``start.options``, the settings), not from a copy."""
    from typing import get_args

    import click

    from summarizer.cli import cli
    from summarizer.protocol import StartOptions
    from summarizer.settings import Settings

    def choices(command: str, flag: str) -> list[str]:
        group = cli
        assert isinstance(group, click.Group)
        sub = group.commands[command]
        (param,) = [p for p in sub.params if flag in getattr(p, "opts", [])]
        assert isinstance(param.type, click.Choice)
        return list(param.type.choices)

    def literal(annotation: object) -> list[str]:
        (inner, *_) = [a for a in get_args(annotation) if get_args(a)] or [annotation]
        return list(get_args(inner))

    fields = StartOptions.model_fields
    assert (
        choices("summarize", "--length")
        == literal(fields["length"].annotation)
        == ["short", "medium", "long"]
    )
    assert choices("summarize", "--format") == literal(fields["format"].annotation)
    assert choices("summarize", "--ocr") == literal(fields["ocr"].annotation) == ["auto", "off", "force"]
    http = Settings.model_fields["model_http_client"].annotation
    assert choices("serve", "--model-http-client") == list(get_args(http))
