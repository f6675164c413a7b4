"""docs/http.md's ``curl`` session works as written, against a live server.

The bash blocks that the page marks as tested are run with ``bash -e`` (only
``BASE=http://127.0.0.1:8000`` is pointed at the test server's port), from a
directory where ``samples/`` is the checkout's.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from summarizer.cli import running_server
from summarizer.settings import Settings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "http.md"
_BLOCK = re.compile(r"<!-- tests/test_http_docs\.py runs [^\n]*-->\n```bash\n(.*?)```", re.S)


def marked_blocks() -> list[str]:
    blocks = _BLOCK.findall(DOC.read_text(encoding="utf-8"))
    assert len(blocks) == 2, "docs/http.md should mark its session and its token example as tested"
    return blocks


def run_block(block: str, base: str, cwd: Path) -> str:
    assert "BASE=http://127.0.0.1:8000" in block
    script = block.replace("BASE=http://127.0.0.1:8000", f"BASE={base}")
    (cwd / "samples").symlink_to(ROOT / "samples")
    done = subprocess.run(["bash", "-e", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and not done.stderr, done.stdout + done.stderr
    return done.stdout


def sse_ids(text: str) -> list[int]:
    return [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]


def test_the_curl_session_works_as_written(tmp_path: Path) -> None:
    session, _ = marked_blocks()
    with running_server(Settings()) as url:
        base = url.removesuffix("/ws").replace("ws://", "http://")
        out = run_block(session, base, tmp_path)
    lines = out.splitlines()
    created = json.loads(lines[0])
    assert created["events_url"] == f"/v1/jobs/{created['job_id']}/events"
    events = (tmp_path / "events.txt").read_text()
    ids = sse_ids(events)
    assert ids == list(range(1, len(ids) + 1)) and "event: summary" in events
    rest = sse_ids((tmp_path / "rest.txt").read_text())
    assert rest == list(range(41, ids[-1] + 1))  # after Last-Event-ID 40, each once
    status, cancelled = json.loads(lines[-2]), json.loads(lines[-1])
    assert status["state"] == "done" and status["summary"] and status["last_seq"] == ids[-1]
    assert cancelled["state"] == "done"
    print("\n" + "\n".join(line[:160] for line in lines[:16]))


def test_the_token_example_works_as_written(tmp_path: Path) -> None:
    _, token = marked_blocks()
    with running_server(Settings(token="s3cret")) as url:
        base = url.removesuffix("/ws").replace("ws://", "http://")
        out = run_block(token, base, tmp_path)
        assert json.loads(out)["job_id"]
        without = subprocess.run(
            ["curl", "-sS", "-F", f"file=@{ROOT / 'samples/documents/zen-of-python.md'}", f"{base}/v1/jobs"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert json.loads(without.stdout)["code"] == "unauthorized"
