"""README.md's examples run as a user would paste them.

"Using it from Python" is written to a script, verbatim, and run on a PDF named
``book.pdf`` in the script's directory: no ``if __name__ == "__main__":`` guard,
so the PDF worker must not depend on the caller's ``__main__``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SAMPLES

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.S | re.M)


def test_quick_start_makes_a_venv_first() -> None:
    (first, *_) = code_blocks(section("Quick start"), "bash")
    commands = [line for line in first.splitlines() if line.strip() and not line.startswith("#")]
    assert "venv" in commands[0] and any("pip install" in c for c in commands[1:]), commands


@pytest.mark.slow
def test_using_it_from_python_runs_verbatim_on_a_pdf(tmp_path: Path) -> None:
    (example,) = code_blocks(section("Using it from Python"), "python")
    assert '"book.pdf"' in example
    script = tmp_path / "summarize_book.py"
    script.write_text(example, encoding="utf-8")
    shutil.copy(SAMPLES / "documents" / "short-history-of-summarization.pdf", tmp_path / "book.pdf")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, script.name], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(done.stdout.split()) > 20, done.stdout  # the summary, streamed to stdout
    assert "malformed" not in done.stderr
    print(f"\n$ python {script.name}\n{done.stdout.strip()[:600]}")
