"""Ingestion latency: a chunk leaves the moment the pages it needs are extracted.

Furniture detection (running heads, page numbers) must not hold chunks back:
the cleaner releases pages as soon as the chunker can cut its next chunk, so
when a chunk is yielded, the parser is at most one page past the chunk's last
page (the chunker needs ``chunk_size + 1`` characters to know where to cut).
Pages are real (pypdf in the worker process); the assertion is on page counts,
not on timings.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from summarizer.ingest import iter_chunks
from summarizer.ingest.types import Chunk, IngestOptions, IngestProgress

CORPUS = Path(__file__).parent.parent.parent / "shared" / "corpus" / "pdf"


async def _chunks_with_pages_done(name: str, options: IngestOptions) -> list[tuple[Chunk, int]]:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"corpus file {path} not available")
    data = path.read_bytes()
    latest = IngestProgress()

    def on_progress(progress: IngestProgress) -> None:
        nonlocal latest
        latest = progress

    async def upload() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 1 << 20):
            yield data[start : start + (1 << 20)]

    out: list[tuple[Chunk, int]] = []
    async for chunk in iter_chunks(
        upload(), filename=name, media_type="application/pdf", options=options, on_progress=on_progress
    ):
        out.append((chunk, latest.pages_done))
    return out


@pytest.mark.parametrize("name", ["tracemonkey.pdf", "freeculture.pdf"])
async def test_chunks_leave_as_soon_as_their_pages_are_extracted(name: str) -> None:
    timeline = await _chunks_with_pages_done(name, IngestOptions())
    first, pages_done = timeline[0]
    # The old pipeline held 8 pages in the cleaner and 3 x chunk_size in the
    # chunker: tracemonkey's first chunk (page 1) left after page 11.
    assert pages_done <= first.last_page + 1, (first.pages, pages_done)
    # Later chunks may wait one page more: the structure filter holds one page back to
    # join a word hyphenated across the page break. The last chunk waits for the end of
    # the document when only skipped back matter follows it (freeculture: pp. 313-352).
    last = timeline[-1][0]
    late = [
        (chunk.index, chunk.pages, done)
        for chunk, done in timeline
        if done > chunk.last_page + 2 and chunk is not last
    ]
    assert late == []


async def test_streamed_chunks_are_clean_of_freeculture_furniture() -> None:
    """The early release still removes printer's marks and running lines (the stream, not the batch)."""
    timeline = await _chunks_with_pages_done("freeculture.pdf", IngestOptions())
    text = "\n".join(chunk.text for chunk, _ in timeline)
    assert "4TH PASS PAGES" not in text
    assert ".qxd" not in text
    assert "free-culture.org/get-it" not in text
    assert not re.search(r"^(?:S32|R33|32S|33R)$", text, re.MULTILINE)


async def test_other_tasks_run_while_the_workers_are_pages_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every page is already extracted (the queue never waits): a task started at the first chunk
    (a map call) still runs long before the document ends."""
    import asyncio

    import summarizer.ingest.pipeline as pipeline
    from summarizer.ingest.pdf import PdfOpened, PdfPage

    sentences = " ".join(f"Sentence number {n} of the page tells something new." for n in range(40))

    async def extracted(data: bytes, **_: object) -> AsyncIterator[object]:
        yield PdfOpened(pages=60)
        for number in range(1, 61):
            yield PdfPage(number, f"{sentences} Page {number}.")

    monkeypatch.setattr(pipeline, "extract_pages", extracted)

    async def upload() -> AsyncIterator[bytes]:
        yield b"%PDF-1.7\n" + b"%" * 2000

    started_at: list[int] = []
    received = 0

    async def map_call() -> None:
        started_at.append(received)

    tasks = []
    async for _chunk in iter_chunks(
        upload(), filename="a.pdf", media_type="application/pdf", options=IngestOptions(chunk_size=4000)
    ):
        received += 1
        if received == 1:
            tasks.append(asyncio.create_task(map_call()))
    await asyncio.gather(*tasks)
    assert received > 10
    assert started_at and started_at[0] <= 2, (started_at, received)
