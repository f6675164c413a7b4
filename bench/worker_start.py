"""Where the time before the first PDF page goes: worker start, imports, opening the file.

For the first and second job of one process, :func:`summarizer.ingest.pdf.extract_pages`
is timed to its ``PdfOpened`` and first ``PdfPage`` events; beside it, in fresh
interpreters, ``import pypdf`` alone and bare pypdf (import excluded) opening the
file and extracting page 1. This explains the latency the first chunk pays before
any page exists, and what a prewarmed worker would save.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

from .common import ROOT, Context, median

__all__ = ["run"]

_IMPORT = "import time; t = time.perf_counter(); import pypdf; print(time.perf_counter() - t)"
_BARE = (
    "import io, sys, time, logging; import pypdf; logging.getLogger('pypdf').setLevel(logging.ERROR); "
    "data = open(sys.argv[1], 'rb').read(); t = time.perf_counter(); r = pypdf.PdfReader(io.BytesIO(data)); "
    "o = time.perf_counter() - t; r.pages[0].extract_text(); print(o, time.perf_counter() - t)"
)


async def _job(data: bytes) -> dict[str, float]:
    from summarizer.ingest.pdf import PdfOpened, PdfPage, extract_pages

    began = time.perf_counter()
    out: dict[str, float] = {}
    events = extract_pages(data)
    try:
        async for event in events:
            if isinstance(event, PdfOpened):
                out["opened_s"] = time.perf_counter() - began
            elif isinstance(event, PdfPage):
                out["first_page_s"] = time.perf_counter() - began
                break
    finally:
        await events.aclose()
    return out


def _jobs_in_fresh_process(path: str) -> list[dict[str, float]]:
    code = (
        "import asyncio, json, sys\n"
        "from bench.worker_start import _job\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "async def main():\n"
        "    return [await _job(data) for _ in range(3)]\n"
        "if __name__ == '__main__':\n"
        "    print(json.dumps(asyncio.run(main())))\n"
    )
    import json

    done = subprocess.run(
        [sys.executable, "-c", code, path], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    result: list[dict[str, float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(ctx: Context) -> dict[str, Any]:
    """Time the worker path and the bare pieces for tracemonkey.pdf."""
    path = str(ctx.pdf("tracemonkey.pdf"))
    repeats = ctx.repeats(3, 2)
    jobs = [_jobs_in_fresh_process(path) for _ in range(repeats)]
    imports = [
        float(
            subprocess.run([sys.executable, "-c", _IMPORT], capture_output=True, text=True, timeout=60).stdout
        )
        for _ in range(repeats)
    ]
    bare = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", _BARE, path], capture_output=True, text=True, timeout=60)
        opened, first = map(float, out.stdout.split())
        bare.append({"open_s": opened, "open_and_page1_s": first})
    by_job = {
        f"job{i + 1}": {
            key: median([run[i][key] for run in jobs if key in run[i]])
            for key in ("opened_s", "first_page_s")
        }
        for i in range(3)
    }
    return {
        "document": "tracemonkey.pdf",
        "worker": by_job,
        "import_pypdf_s": median(imports),
        "bare_open_s": median([b["open_s"] for b in bare]),
        "bare_open_and_page1_s": median([b["open_and_page1_s"] for b in bare]),
        "runs": jobs,
    }
