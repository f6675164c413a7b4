"""PDF workers: page ranges in parallel, a worker stuck at its memory limit, pypdf loaded before the job."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from summarizer.errors import DamagedDocument, ErrorCode
from summarizer.ingest import IngestOptions, IngestProgress, iter_chunks
from summarizer.ingest.pdf import (
    SPLIT_LATEST_PAGES,
    SPLIT_MIN_PAGES,
    PdfOpened,
    PdfPage,
    extract_pages,
    live_workers,
    prewarm,
    spare_workers,
    stop_prewarmed,
    worker_command,
)
from summarizer.ingest.worker import read_frame
from tests.test_ingest_pdf import BAD, BAD_OUTCOMES, corpus_path, ingest, no_workers_left, slices, workers


async def pages_of(data: bytes, **options: object) -> tuple[list[PdfPage], int]:
    """Every page event, and the most worker process groups seen alive at once."""
    pages: list[PdfPage] = []
    most = 0
    async with contextlib.aclosing(extract_pages(data, **options)) as events:  # type: ignore[arg-type]
        async for event in events:
            most = max(most, len(workers()))
            if isinstance(event, PdfPage):
                pages.append(event)
    return pages, most


async def test_a_big_pdf_is_read_by_two_workers_each_page_once_in_order() -> None:
    data = corpus_path("pdf", "freeculture.pdf").read_bytes()
    alone, most_alone = await pages_of(data, workers=1)
    shared, most_shared = await pages_of(data, workers=2)
    assert most_alone == 1
    assert most_shared == 2, "the second worker never ran"
    assert [page.number for page in shared] == list(range(1, 353))  # in order, each once
    assert [page.text for page in shared] == [page.text for page in alone]
    assert await no_workers_left()


async def _workers_by_page(data: bytes, gate: threading.Event, open_at: int | None) -> dict[int, int]:
    """Worker process groups alive as each page comes; ``gate`` is set when page ``open_at`` comes."""
    alive: dict[int, int] = {}
    async with contextlib.aclosing(extract_pages(data, workers=2, split_gate=gate)) as events:
        async for event in events:
            if isinstance(event, PdfPage):
                alive[event.number] = len(workers())
                if event.number == open_at:
                    gate.set()
    return alive


async def test_the_second_worker_waits_for_the_gate_then_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a ``split_gate`` the first worker reads alone until the caller opens it (its first chunk)."""
    import summarizer.ingest.pdf as pdf

    monkeypatch.setattr(pdf, "SPLIT_LATEST_PAGES", 10**6)  # the gate alone decides (a slow machine)
    data = corpus_path("pdf", "freeculture.pdf").read_bytes()
    opened_at = 12
    alive = await _workers_by_page(data, threading.Event(), opened_at)
    assert list(alive) == list(range(1, 353))
    assert max(alive[n] for n in range(1, opened_at + 1)) == 1, alive
    assert max(alive.values()) == 2, "the second worker never started"
    assert await no_workers_left()


async def test_a_gate_never_opened_delays_the_second_worker_only_so_far(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the :data:`SPLIT_LATEST_PAGES` bound a closed gate keeps one worker; with it, two."""
    import summarizer.ingest.pdf as pdf

    data = corpus_path("pdf", "freeculture.pdf").read_bytes()
    assert SPLIT_LATEST_PAGES < 352
    alive = await _workers_by_page(data, threading.Event(), None)
    assert max(alive.values()) == 2, "the second worker never started"
    monkeypatch.setattr(pdf, "SPLIT_LATEST_PAGES", 10**6)
    alive = await _workers_by_page(data, threading.Event(), None)
    assert max(alive.values()) == 1, "a second worker started with the gate closed"
    assert await no_workers_left()


async def test_ingestion_opens_the_gate_with_its_first_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """``iter_chunks`` reads a book's first chunk with one worker; the second starts after it."""
    import summarizer.ingest.pdf as pdf

    monkeypatch.setattr(pdf, "SPLIT_LATEST_PAGES", 10**6)  # the gate alone decides (a slow machine)
    data = corpus_path("pdf", "freeculture.pdf").read_bytes()
    before_first: list[int] = []  # workers alive at each page before the first chunk
    after_first: list[int] = []
    chunks = 0

    def on_progress(_progress: IngestProgress) -> None:
        (after_first if chunks else before_first).append(len(workers()))

    async for _chunk in iter_chunks(
        slices(data),
        filename="freeculture.pdf",
        media_type="application/pdf",
        options=IngestOptions(parse_workers=2, ocr="off"),
        on_progress=on_progress,
    ):
        chunks += 1
    assert before_first and max(before_first) == 1, before_first
    assert max(after_first) == 2, "the second worker never started"
    assert await no_workers_left()


async def test_a_taken_spare_is_replaced_once_the_document_is_parsed_not_beside_its_pages() -> None:
    """A prewarmed worker's replacement starts after the parse: its start would slow the first pages."""
    data = corpus_path("pdf", "tracemonkey.pdf").read_bytes()
    prewarm(1)
    try:
        first = spare_workers()
        assert len(first) == 1
        during: list[int] = []
        async with contextlib.aclosing(extract_pages(data)) as events:
            async for event in events:
                if isinstance(event, PdfPage):
                    during.append(len(spare_workers()))
                    await asyncio.sleep(0.02)  # the parse lasts long enough for a start to show
        assert during and max(during) == 0, f"spares while parsing, page by page: {during}"
        deadline = time.monotonic() + 10
        while not spare_workers() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        replaced = spare_workers()
        assert len(replaced) == 1 and replaced != first, "the spare was not replaced after the parse"
    finally:
        await asyncio.to_thread(stop_prewarmed)
    assert not spare_workers()
    assert await no_workers_left()


async def test_a_small_pdf_stays_with_one_worker() -> None:
    data = corpus_path("pdf", "tracemonkey.pdf").read_bytes()
    assert SPLIT_MIN_PAGES > 14
    pages, most = await pages_of(data, workers=2)
    assert [page.number for page in pages] == list(range(1, 15))
    assert most == 1
    assert await no_workers_left()


async def test_the_first_worker_reads_the_first_pages() -> None:
    """Page 1 comes before the second worker exists: the first chunk does not wait for it."""
    data = corpus_path("pdf", "freeculture.pdf").read_bytes()
    async with contextlib.aclosing(extract_pages(data, workers=2)) as events:
        async for event in events:
            if isinstance(event, PdfPage):
                assert event.number == 1
                break
    assert await no_workers_left()


async def test_cancellation_kills_every_worker() -> None:
    path = corpus_path("pdf", "freeculture.pdf")
    chunks: list[object] = []

    async def consume() -> None:
        async for chunk in iter_chunks(
            slices(path.read_bytes()),
            filename=path.name,
            media_type="application/pdf",
            options=IngestOptions(parse_workers=2),
        ):
            chunks.append(chunk)

    task = asyncio.create_task(consume())
    deadline = time.monotonic() + 60
    while len(workers()) < 2:
        assert not task.done(), "the document was read before a second worker ran"
        assert time.monotonic() < deadline, "no second worker within 60 s"
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await no_workers_left(2.0)


async def test_the_wall_clock_limit_stops_every_worker() -> None:
    from summarizer.errors import DocumentError

    # The book takes two workers several seconds even on a fast machine (CI read it in
    # under 2.5 s once); 0.8 s is past both workers' start and far from the end.
    path = corpus_path("pdf", "freeculture.pdf")
    with pytest.raises(DocumentError) as info:
        await ingest(path, parse_timeout_s=0.8, parse_workers=2)
    assert info.value.code == ErrorCode.PARSE_TIMEOUT
    assert await no_workers_left()


async def test_each_worker_has_the_memory_limit() -> None:
    path = corpus_path("pdf", "freeculture.pdf")
    with pytest.raises(DamagedDocument, match="memory limit") as info:
        await ingest(path, parse_memory_bytes=2 * 1024 * 1024, parse_workers=2)
    assert info.value.code == ErrorCode.DAMAGED_PDF
    assert await no_workers_left()


@pytest.mark.parametrize(
    "name",
    sorted(name for name, outcome in BAD_OUTCOMES.items() if isinstance(outcome, ErrorCode)),
)
async def test_malformed_pdfs_keep_their_error_code_with_two_workers(name: str) -> None:
    path = BAD / name
    if not path.exists():
        pytest.skip(f"corpus file {path} not available")
    with pytest.raises(Exception) as info:
        await ingest(path, parse_workers=2, parse_timeout_s=60)
    assert getattr(info.value, "code", None) == BAD_OUTCOMES[name]
    assert await no_workers_left()


async def test_a_worker_stuck_at_its_memory_limit_is_out_of_memory() -> None:
    """Tiny limits leave no memory to unwind a MemoryError; CPython 3.11 can spin there for ever.

    Each limit must end within a few seconds, as the memory error (or the pages
    read, where a page's own error absorbed it), never as the wall-clock timeout
    (nor a hang). tracemonkey.pdf: parsing it needs more than the slack the
    worker's imports leave in its address space.
    """
    data = corpus_path("pdf", "tracemonkey.pdf").read_bytes()
    outcomes: list[str] = []
    for step in range(8):
        limit = 1024 * 1024 + step * 512 * 1024
        started = time.perf_counter()
        try:
            async with contextlib.aclosing(extract_pages(data, memory_bytes=limit, timeout_s=10.0)) as events:
                async for _ in events:
                    pass
            outcomes.append("read")
        except DamagedDocument as exc:
            assert "memory limit" in exc.message
            outcomes.append("memory")
        took = time.perf_counter() - started
        assert took < 8, f"limit {limit} bytes: {took:.1f} s"
    assert "memory" in outcomes, outcomes  # the sweep reaches the limit
    assert await no_workers_left()


def test_a_worker_has_pypdf_loaded_before_its_job(tmp_path: Path) -> None:
    """``ready`` comes after ``import pypdf``, so a prewarmed worker's job does not pay for it."""
    log = tmp_path / "imports.txt"
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(part for part in (root, env.get("PYTHONPATH", "")) if part)
    command = worker_command()
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [command[0], "-X", "importtime", *command[1:]],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
        try:
            assert process.stdout is not None
            frame = read_frame(process.stdout)
            assert frame is not None and json.loads(frame) == ["ready"]
            imported = log.read_text()
        finally:
            process.kill()
            process.wait(5)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
    assert "| pypdf\n" in imported, "pypdf is imported only after the document came"


def test_only_the_first_worker_plans_ocr() -> None:
    """The second worker sends no OCR plan and loads no OCR engine before a page of its own needs it."""
    import logging

    import pypdf

    from summarizer.ingest.worker import WorkerConfig, _Ocr

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    data = corpus_path("pdf", "freeculture.pdf").read_bytes()  # page 1, the cover, is an image
    pages = pypdf.PdfReader(io.BytesIO(data)).pages
    sent: list[tuple[object, ...]] = []

    class Channel:
        def send(self, *message: object) -> None:
            sent.append(message)

    second = _Ocr.create(data, WorkerConfig(ocr="auto", secondary=True), Channel(), pages, len(pages))  # type: ignore[arg-type]
    assert second is not None and sent == []
    assert second._available is None  # not even checked
    first = _Ocr.create(data, WorkerConfig(ocr="auto"), Channel(), pages, len(pages))  # type: ignore[arg-type]
    # A document with a text layer: OCR is checked when its cover is OCR'd, off the page loop.
    assert first is not None and sent == [] and first._available is None
    first.start()
    first.start()  # once
    assert [message[0] for message in sent] in (["ocr_plan"], ["ocr_unavailable"])
    for ocr in (first, second):
        ocr.close()


async def test_scans_in_either_workers_ranges_are_ocrd(tmp_path: Path) -> None:
    """The second worker starts OCR itself for a scanned page of its own (it sent no plan)."""
    import logging

    import pypdf

    from summarizer.ingest.ocr import unavailable_reason

    if (reason := unavailable_reason("eng")) is not None:
        pytest.skip(f"OCR cannot run here: {reason}")
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    source = str(corpus_path("pdf", "freeculture.pdf"))  # page 1, the cover, is an image
    writer = pypdf.PdfWriter()
    scans = []
    for start in (1, 9, 17, 25):  # the cover after every 8 pages: ranges of both workers
        writer.append(source, pages=(start, start + 8))
        writer.append(source, pages=(0, 1))
        scans.append(len(writer.pages))
    path = tmp_path / "scans.pdf"
    with path.open("wb") as out:
        writer.write(out)
    pages, most = await pages_of(path.read_bytes(), workers=2, ocr="auto")
    assert most == 2
    assert [page.number for page in pages if page.ocr] == scans
    assert all("FREE CULTURE" in pages[number - 1].text for number in scans)
    assert await no_workers_left()


async def test_opened_and_pages_with_two_workers_on_a_doubled_book(tmp_path: Path) -> None:
    """Uneven work: the doubled book ends with the index twice; every page still comes once, in order."""
    import logging

    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    source = corpus_path("pdf", "freeculture.pdf")
    writer = pypdf.PdfWriter()
    writer.append(str(source), pages=(300, 352))
    writer.append(str(source), pages=(0, 20))
    path = tmp_path / "mixed.pdf"
    with path.open("wb") as out:
        writer.write(out)
    opened = 0
    numbers: list[int] = []
    async with contextlib.aclosing(extract_pages(path.read_bytes(), workers=2)) as events:
        async for event in events:
            if isinstance(event, PdfOpened):
                opened += 1
            elif isinstance(event, PdfPage):
                numbers.append(event.number)
    assert opened == 1
    assert numbers == list(range(1, 73))
    assert not live_workers() or await no_workers_left()


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("process groups and /proc: Linux only")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_the_cover_thread_alone_runs_at_a_lower_priority() -> None:
    """The cover's OCR yields the cores to the page loop: its thread (and its Tesseract) alone is niced."""
    import os
    import threading

    from summarizer.ingest.worker import COVER_NICENESS, _lower_priority

    own = os.getpriority(os.PRIO_PROCESS, 0)
    seen: list[int] = []

    def cover() -> None:
        _lower_priority()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=cover)
    thread.start()
    thread.join()
    assert seen == [min(19, own + COVER_NICENESS)]
    assert os.getpriority(os.PRIO_PROCESS, 0) == own  # the calling thread keeps its priority
