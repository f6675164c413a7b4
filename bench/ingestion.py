"""Benchmark 5: PDF ingestion speed against a bare pypdf loop, and whether it uses two cores.

* **ours**: :func:`summarizer.ingest.iter_chunks` on the file's bytes (1 MiB
  pieces, as an upload arrives): pypdf extracts pages in a worker process while
  this process cleans and chunks them as they come.
* **bare**: ``PdfReader`` + ``page.extract_text()`` for every page, in this
  process, with pypdf's logging silenced (ours forwards those messages instead
  of printing them).

Both read the same bytes; the forkserver that starts our workers is warmed up
first (a server pays that once). CPU time is this process's (all threads,
``time.process_time``) plus the worker's: the worker is a child of the
multiprocessing forkserver, which reaps it, so its CPU shows in the
forkserver's ``cutime + cstime`` in ``/proc``; ``RUSAGE_CHILDREN`` covers a
``spawn`` worker. CPU / wall > 1 means a second core was used.
"""

from __future__ import annotations

import asyncio
import io
import logging
import multiprocessing.forkserver
import resource
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from summarizer.ingest import IngestOptions, IngestProgress, iter_chunks

from .common import Context, median, proc_cpu_s

__all__ = ["run"]


def _children_cpu_s() -> float:
    """CPU seconds of reaped children of this process and of the forkserver."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    pid = getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None)
    if pid:
        forked = proc_cpu_s(pid, children=True)
        if forked == forked:  # not NaN
            total += forked
    return total


def _settled_children_cpu_s(previous: float) -> float:
    """:func:`_children_cpu_s` once the worker has been reaped (the value stops changing)."""
    value = _children_cpu_s()
    for _ in range(20):
        time.sleep(0.05)
        again = _children_cpu_s()
        if again == value and value != previous:
            break
        value = again
    return value


def _ours(data: bytes, name: str) -> dict[str, Any]:
    pages = chunks = 0

    def on_progress(progress: IngestProgress) -> None:
        nonlocal pages
        pages = progress.pages_done

    async def upload() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 1 << 20):
            yield data[start : start + (1 << 20)]

    async def consume() -> None:
        nonlocal chunks
        async for _chunk in iter_chunks(
            upload(),
            filename=name,
            media_type="application/pdf",
            options=IngestOptions(),
            on_progress=on_progress,
        ):
            chunks += 1

    children = _children_cpu_s()
    cpu = time.process_time()
    began = time.perf_counter()
    asyncio.run(consume())
    wall = time.perf_counter() - began
    own = time.process_time() - cpu
    worker = _settled_children_cpu_s(children) - children
    return {
        "pages": pages,
        "chunks": chunks,
        "wall_s": wall,
        "cpu_s": own + worker,
        "cpu_main_s": own,
        "cpu_worker_s": worker,
        "pages_per_s": pages / wall,
        "cpu_per_wall": (own + worker) / wall,
    }


def _bare(data: bytes) -> dict[str, Any]:
    from pypdf import PdfReader

    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        cpu = time.process_time()
        began = time.perf_counter()
        reader = PdfReader(io.BytesIO(data))
        characters = 0
        for page in reader.pages:
            characters += len(page.extract_text())
        wall = time.perf_counter() - began
        own = time.process_time() - cpu
    finally:
        logger.setLevel(level)
    pages = len(reader.pages)
    return {
        "pages": pages,
        "characters": characters,
        "wall_s": wall,
        "cpu_s": own,
        "pages_per_s": pages / wall,
        "cpu_per_wall": own / wall,
    }


def run(ctx: Context) -> dict[str, Any]:
    """Alternate our PDF path and the bare loop; compare median pages per second."""
    name = "tracemonkey.pdf" if ctx.quick else "freeculture.pdf"
    path: Path = ctx.pdf(name)
    data = path.read_bytes()
    ctx.log("ingestion: warming up the PDF worker's forkserver")
    _ours(ctx.pdf("google-doc-document.pdf").read_bytes(), "warmup.pdf")
    repeats = ctx.repeats(3)
    ours: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    for attempt in range(repeats):
        ctx.log(f"ingestion: {name} ours / bare ({attempt + 1}/{repeats})")
        ours.append(_ours(data, name))
        bare.append(_bare(data))
    ours_pps = median([r["pages_per_s"] for r in ours])
    bare_pps = median([r["pages_per_s"] for r in bare])
    return {
        "document": name,
        "bytes": len(data),
        "repeats": repeats,
        "ours": ours,
        "bare": bare,
        "ours_pages_per_s": ours_pps,
        "bare_pages_per_s": bare_pps,
        "overhead_ratio": median([r["wall_s"] for r in ours]) / median([r["wall_s"] for r in bare]),
        "ours_cpu_per_wall": median([r["cpu_per_wall"] for r in ours]),
        "two_cores": median([r["cpu_per_wall"] for r in ours]) > 1.0,
    }
