"""Benchmark 6: the embedded default (extractive model) end to end, and how cost grows with length.

Runs the CLI as a user would, ``python -m summarizer summarize FILE --json`` (an
in-process server on 127.0.0.1, the default extractive model), as a child
process measured with ``os.wait4`` (wall time, CPU, peak RSS of the largest
process) and a ``/proc`` sampler (peak summed RSS of the process tree, which
includes the PDF worker). Inputs: the PDF itself, then its extracted text
repeated 1x, 2x and 4x as ``.txt`` files, to show that time per character stays
flat (linear cost). Time per character is reported both from the wall clock
(which includes start-up) and from ``summary.elapsed_s`` (the job alone), and
as marginal cost (extra seconds per extra character from 1x to 2x and from 2x
to 4x), which cancels fixed costs; CPU seconds are the steadiest figure on a
shared machine.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import ROOT, Context, document_text, run_measured

__all__ = ["run"]


def _summarize(path: Path) -> dict[str, Any]:
    usage = run_measured(
        [sys.executable, "-m", "summarizer", "summarize", str(path), "--json"], timeout_s=1200, cwd=ROOT
    )
    summary: dict[str, Any] = {}
    document: dict[str, Any] = {}
    for line in usage.stdout.splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if event.get("type") == "summary":
            summary = event
        elif event.get("type") == "document":
            document = event
    if usage.returncode != 0 or not summary:
        raise RuntimeError(f"summarize {path.name} failed ({usage.returncode}): {usage.stderr[-1000:]}")
    return {
        "input": path.name,
        "characters": document.get("characters"),
        "chunks": document.get("chunks"),
        "pages": document.get("pages"),
        "calls": summary.get("calls"),
        "wall_s": usage.wall_s,
        "job_s": summary.get("elapsed_s"),
        "cpu_s": usage.cpu_s,
        "maxrss_mib": usage.maxrss_mib,
        "tree_peak_mib": usage.tree_peak_mib,
        "summary_words": len(str(summary.get("text", "")).split()),
    }


def run(ctx: Context) -> dict[str, Any]:
    """Summarize the PDF and its text at 1x, 2x and 4x with the CLI."""
    name = "tracemonkey.pdf" if ctx.quick else "freeculture.pdf"
    text = document_text(ctx.chunks(name))
    rows: list[dict[str, Any]] = []
    ctx.log(f"embedded: {name}")
    rows.append({**_summarize(ctx.pdf(name)), "kind": "pdf", "times": 1})
    with tempfile.TemporaryDirectory(prefix="bench-embedded-") as folder:
        for times in (1, 2, 4):
            path = Path(folder) / f"{Path(name).stem}-x{times}.txt"
            path.write_text("\n\n".join([text] * times), encoding="utf-8")
            ctx.log(f"embedded: {path.name} ({len(text) * times:,} characters)")
            rows.append({**_summarize(path), "kind": "text", "times": times})
    base = next(row for row in rows if row["kind"] == "text" and row["times"] == 1)
    for row in rows:
        chars = row["characters"] or 1
        row["wall_per_char_ratio"] = (row["wall_s"] / chars) / (base["wall_s"] / base["characters"])
        row["job_per_char_ratio"] = (row["job_s"] / chars) / (base["job_s"] / base["characters"])
    texts = [row for row in rows if row["kind"] == "text"]
    marginal = {key: _marginal(texts, key) for key in ("job_s", "cpu_s", "wall_s")}
    largest = rows[-1]
    return {
        "document": name,
        "rows": rows,
        "marginal": marginal,
        "job_per_char_ratio_4x": largest["job_per_char_ratio"],
        "wall_per_char_ratio_4x": largest["wall_per_char_ratio"],
    }


def _marginal(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    """Extra ``key`` per million extra characters from 1x to 2x and from 2x to 4x, and their ratio.

    Differences cancel fixed costs (start-up, the reduce call); a ratio near 1
    means the cost grows linearly with the text, above 1 faster than linearly.
    """
    one, two, four = rows[0], rows[1], rows[2]
    low = (two[key] - one[key]) / (two["characters"] - one["characters"]) * 1e6
    high = (four[key] - two[key]) / (four["characters"] - two["characters"]) * 1e6
    return {"per_mchar_1x_2x": low, "per_mchar_2x_4x": high, "ratio": high / low if low > 0 else float("nan")}
