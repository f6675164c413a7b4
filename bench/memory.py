"""Benchmark: the book's ingestion wall and the peak RSS of the whole process tree, at 1x, 2x and 4x.

``python -m summarizer summarize <pdf> --dry-run`` (ingestion: the PDF worker,
cleaning and chunking, then the call estimate; no model call) runs as a child
process, measured with ``os.wait4`` and a ``/proc`` sampler of the summed RSS
of its process tree (the CLI and its PDF worker). The inputs are
``freeculture.pdf`` (352 pages) and the same pages written twice and four times
into one PDF (``pypdf.PdfWriter``, in a temporary directory). The reference is a
bare single-process pypdf loop (``PdfReader`` + ``extract_text()`` of every page)
over the same file, in a child process measured the same way.

Goals: peak tree RSS for the book <= 250 MiB; linear in size (the 4x / 1x ratio of
the peaks is reported, with the memory above the interpreter's baseline); wall of
our ingestion / bare loop <= 0.6 on two cores (needs parallel page ranges).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import ROOT, Context, run_measured

__all__ = ["MEMORY_GOAL_MIB", "WALL_GOAL", "run"]

MEMORY_GOAL_MIB = 250.0
WALL_GOAL = 0.6

_BARE = (
    "import sys, logging; import pypdf; logging.getLogger('pypdf').setLevel(logging.ERROR)\n"
    "for page in pypdf.PdfReader(sys.argv[1]).pages: page.extract_text()\n"
)
_BASELINE = "import summarizer.cli"


def _multiplied(source: Path, times: int, folder: Path) -> Path:
    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    writer = pypdf.PdfWriter()
    for _ in range(times):
        writer.append(str(source))
    path = folder / f"{source.stem}-x{times}.pdf"
    with path.open("wb") as out:
        writer.write(out)
    return path


def run(ctx: Context) -> dict[str, Any]:
    """Peak tree RSS and wall at 1x / 2x / 4x, and the bare pypdf loop at 1x."""
    book = ctx.pdf("freeculture.pdf")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        files = {1: book}
        for times in (2, 4) if not ctx.quick else (2,):
            files[times] = _multiplied(book, times, Path(folder))
        baseline = run_measured([sys.executable, "-c", _BASELINE], timeout_s=120, cwd=ROOT)
        for times, path in files.items():
            ctx.log(f"memory: {times}x the book ({path.stat().st_size:,} bytes)")
            ours = run_measured(
                [sys.executable, "-m", "summarizer", "summarize", str(path), "--dry-run"],
                timeout_s=1800,
                cwd=ROOT,
            )
            row: dict[str, Any] = {
                "times": times,
                "bytes": path.stat().st_size,
                "returncode": ours.returncode,
                "wall_s": ours.wall_s,
                "cpu_s": ours.cpu_s,
                "tree_peak_mib": ours.tree_peak_mib,
                "largest_process_mib": ours.maxrss_mib,
                "above_baseline_mib": ours.tree_peak_mib - baseline.tree_peak_mib,
            }
            if times == 1:
                bare = run_measured([sys.executable, "-c", _BARE, str(path)], timeout_s=1800, cwd=ROOT)
                row["bare_wall_s"] = bare.wall_s
                row["bare_peak_mib"] = bare.tree_peak_mib
                row["wall_ratio"] = ours.wall_s / bare.wall_s
            rows.append(row)
    first, last = rows[0], rows[-1]
    growth = (
        last["above_baseline_mib"] / first["above_baseline_mib"] if first["above_baseline_mib"] > 0 else None
    )
    return {
        "baseline_mib": baseline.tree_peak_mib,
        "rows": rows,
        "memory_goal_mib": MEMORY_GOAL_MIB,
        "wall_goal": WALL_GOAL,
        "growth_largest_over_1x": growth,
        "largest_times": last["times"],
        "passed_memory": first["tree_peak_mib"] <= MEMORY_GOAL_MIB,
        "passed_wall": first["wall_ratio"] <= WALL_GOAL,
    }
