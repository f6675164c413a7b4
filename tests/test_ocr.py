"""OCR of scanned PDFs: scans made at test time from corpus PDFs that have a text layer.

A scan is pages of a corpus PDF rendered with PDFium at 200 dpi (grayscale)
and put back into a PDF with Pillow as images only (:func:`bench.ocr.make_scan`);
nothing generated is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pytesseract")
pytest.importorskip("pypdfium2")

from bench.ocr import SOURCE, cer, ingest_text, make_scan, text_layer
from summarizer.client import SummarizerClient
from summarizer.errors import DocumentError, ErrorCode, NoTextError
from summarizer.ingest import IngestOptions, IngestProgress, iter_chunks
from summarizer.ingest.ocr import (
    MAX_SIDE_PIXELS,
    PageRenderer,
    clean_ocr_text,
    page_ranges,
    render_scale,
    unavailable_reason,
)
from summarizer.ingest.pdf import PdfPage, extract_pages, live_workers
from summarizer.ingest.pdf import unreadable_reason as unreadable_reason_of
from summarizer.protocol import StartOptions

from .test_ingest_pdf import BAD, assert_consistent, group_alive, no_workers_left, workers

if unavailable_reason("eng") is not None:
    pytest.skip(f"OCR unavailable: {unavailable_reason('eng')}", allow_module_level=True)
if not SOURCE.exists():
    pytest.skip(f"corpus file {SOURCE} not available", allow_module_level=True)

SCAN_PAGES = range(6)
"""Pages 1-6 of the Jinx Ship story (about 19,000 characters)."""


@pytest.fixture(scope="module")
def scan() -> bytes:
    return make_scan(SOURCE, SCAN_PAGES, dpi=200)


@pytest.fixture(scope="module")
def reference() -> str:
    return text_layer(SOURCE, SCAN_PAGES)


@pytest.fixture(scope="module")
def ocr_run(scan: bytes) -> dict[str, Any]:
    """The scan ingested once with OCR (2 workers)."""
    return ingest_text(scan, ocr="auto", ocr_workers=2, chunk_size=2000, chunk_overlap=100)


def test_the_scan_has_no_text_layer(scan: bytes) -> None:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(scan))
    assert len(reader.pages) == len(SCAN_PAGES)
    assert all(not page.extract_text().strip() for page in reader.pages)


def test_character_error_rate_at_200_dpi(ocr_run: dict[str, Any], reference: str) -> None:
    assert len(reference) > 15_000
    rate = cer(ocr_run["text"], reference)
    assert rate <= 0.03, f"CER {rate:.2%}"


def test_ocr_pages_chunks_and_progress(ocr_run: dict[str, Any]) -> None:
    last: IngestProgress = ocr_run["progress"]
    assert last.finished
    assert last.ocr_pages == [1, 2, 3, 4, 5, 6]
    assert last.ocr_done == last.ocr_total == 6
    chunks = ocr_run["chunks"]
    assert_consistent(chunks, 2000)
    assert all(chunk.ocr for chunk in chunks)
    assert chunks[-1].last_page == 6
    assert "Strykalski" in ocr_run["text"]


async def test_pages_come_in_order_with_parallel_ocr(scan: bytes) -> None:
    numbers: list[int] = []
    async with contextlib.aclosing(extract_pages(scan, ocr="auto", ocr_workers=2)) as events:
        async for event in events:
            if isinstance(event, PdfPage):
                assert event.ocr and event.text.strip()
                numbers.append(event.number)
    assert numbers == list(range(1, 7))


async def test_scanned_pdf_summarized_over_the_wire(live_server: str, scan: bytes) -> None:
    """The job completes; OCR progress; first chunk token before the last page is OCR'd."""
    client = SummarizerClient(live_server)
    events: list[Any] = []
    async for event in client.summarize_bytes(
        scan, filename="jinx-scan.pdf", options=StartOptions(chunk_size=2000, chunk_overlap=100)
    ):
        events.append(event)
    kinds = [event.type for event in events]
    assert kinds[-1] == "summary", events[-1]
    assert len(events[-1].text.split()) > 50
    ocr = [event for event in events if event.type == "progress" and event.stage == "ocr"]
    assert ocr and [event.done for event in ocr] == sorted(event.done for event in ocr)
    assert ocr[-1].done == ocr[-1].total == 6
    last_page_ocrd = next(event.seq for event in ocr if event.done == 6)
    first_token = next(event.seq for event in events if event.type == "chunk.token")
    assert first_token < last_page_ocrd, "the map must start before the last page is OCR'd"
    (document,) = [event for event in events if event.type == "document"]
    assert document.ocr_pages == [(1, 6)]
    started = [event for event in events if event.type == "chunk.started"]
    assert started and all(event.ocr for event in started)


async def test_ocr_off_gives_no_text(scan: bytes) -> None:
    with pytest.raises(NoTextError) as info:
        await asyncio.to_thread(ingest_text, scan, ocr="off")
    assert info.value.code == ErrorCode.NO_TEXT
    assert "OCR is off" in info.value.message and "--ocr auto" in info.value.message


def test_force_ocrs_pages_that_have_a_text_layer() -> None:
    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(SOURCE)
    writer = PdfWriter()
    for index in range(2):
        writer.add_page(reader.pages[index])
    out = io.BytesIO()
    writer.write(out)
    plain = ingest_text(out.getvalue(), ocr="auto")
    assert plain["progress"].ocr_pages == [] and not any(chunk.ocr for chunk in plain["chunks"])
    forced = ingest_text(out.getvalue(), ocr="force")
    assert forced["progress"].ocr_pages == [1, 2]
    assert all(chunk.ocr for chunk in forced["chunks"])
    assert cer(forced["text"], plain["text"]) <= 0.03


@pytest.mark.parametrize("name", ["image-only-ccitt.pdf", "image-only-grayscale.pdf"])
def test_image_only_corpus_files_are_refused_with_a_reason(name: str) -> None:
    """A 4x4 pt CCITT speck and a drawing of a boy: OCR runs and finds no text."""
    path = BAD / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    with pytest.raises(NoTextError) as info:
        ingest_text(path.read_bytes(), ocr="auto")
    assert info.value.code == ErrorCode.NO_TEXT
    assert "OCR found no text" in info.value.message


def _tesseract_running() -> bool:
    """Whether a worker's Tesseract is reading a page (not just ``--version``)."""
    for group in workers():
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                head, rest = stat.read_text().rsplit(")", 1)
                fields = rest.split()
                mine = "tesseract" in head and fields[0] != "Z" and int(fields[2]) == group
                if mine and b".pgm" in (stat.parent / "cmdline").read_bytes():  # reading a page
                    return True
    return False


async def test_cancel_stops_the_ocr_within_a_second(scan: bytes) -> None:
    async def upload() -> AsyncIterator[bytes]:
        yield scan

    async def consume() -> None:
        async for _ in iter_chunks(
            upload(),
            filename="scan.pdf",
            media_type="application/pdf",
            options=IngestOptions(ocr="auto", ocr_workers=2),
        ):
            pass

    task = asyncio.create_task(consume())
    deadline = time.monotonic() + 30
    while not _tesseract_running():
        assert time.monotonic() < deadline, "Tesseract never started"
        assert not task.done()
        await asyncio.sleep(0.02)
    groups = live_workers()  # the worker's process group holds its Tesseract processes too
    assert groups
    cancelled = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    while any(group_alive(group) for group in groups):
        assert time.monotonic() - cancelled < 1.0, "worker or Tesseract still running 1 s after cancel"
        await asyncio.sleep(0.02)
    assert await no_workers_left(1.0)


async def test_the_page_time_limit_stops_tesseract(scan: bytes) -> None:
    with pytest.raises(NoTextError) as info:
        await asyncio.to_thread(ingest_text, scan[:], ocr="auto", ocr_page_timeout_s=0.05)
    assert info.value.code == ErrorCode.NO_TEXT
    assert "OCR failed" in info.value.message and "timeout" in info.value.message
    assert await no_workers_left()


def test_the_wall_clock_covers_ocr(scan: bytes) -> None:
    started = time.monotonic()
    with pytest.raises(DocumentError) as info:
        ingest_text(scan, ocr="auto", parse_timeout_s=1.0)
    assert info.value.code == ErrorCode.PARSE_TIMEOUT
    assert time.monotonic() - started < 5


# -- OCR unavailable: the error says what to install -----------------------------------


async def _no_text_message(data: bytes, **options: Any) -> str:
    with pytest.raises(NoTextError) as info:
        await asyncio.to_thread(ingest_text, data, **options)
    assert info.value.code == ErrorCode.NO_TEXT
    return info.value.message


async def test_without_the_tesseract_program(
    scan: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # the worker is started by absolute path
    message = await _no_text_message(scan, ocr="auto")
    assert "apt-get install tesseract-ocr" in message and "pip install 'summarizer[ocr]'" in message


async def test_without_the_ocr_extra(scan: bytes) -> None:
    """The worker with pytesseract unimportable, as without ``pip install '.[ocr]'``."""
    command = [
        sys.executable,
        "-c",
        "import sys; sys.modules['pytesseract'] = None; "
        "from summarizer.ingest.worker import main; sys.exit(main())",
    ]
    events = [event async for event in extract_pages(scan, ocr="auto", command=command)]
    reasons = [event.reason for event in events if type(event).__name__ == "PdfOcrUnavailable"]
    assert reasons and "pip install 'summarizer[ocr]'" in reasons[0] and "pytesseract" in reasons[0]


async def test_a_missing_language_pack_is_named(scan: bytes) -> None:
    message = await _no_text_message(scan[:], ocr="auto", ocr_languages="eng+zzz")
    assert "apt-get install tesseract-ocr-zzz" in message


# -- rendering bounds and OCR cleanup ---------------------------------------------------


def test_render_scale_caps_pixels() -> None:
    assert render_scale(612, 792, dpi=300, max_pixels=25_000_000) == pytest.approx(300 / 72)
    for width, height in [(14_400, 14_400), (200_000, 300), (612, 792)]:
        scale = render_scale(width, height, dpi=300, max_pixels=4_000_000)
        assert math.ceil(width * scale) * math.ceil(height * scale) <= 4_000_000
        assert max(width, height) * scale <= MAX_SIDE_PIXELS + 1


def test_a_huge_page_is_rendered_within_the_pixel_cap() -> None:
    from PIL import Image

    big = Image.new("L", (2000, 2000), 255)
    out = io.BytesIO()
    big.save(out, format="PDF", resolution=10.0)  # a 200 x 200 inch page (14,400 pt)
    renderer = PageRenderer(out.getvalue(), dpi=300, max_pixels=2_000_000)
    try:
        image = renderer.render(0)
    finally:
        renderer.close()
    assert image.width * image.height <= 2_000_000 and image.mode == "L"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a wonder-\nful day", "a wonderful day"),
        ("the ship's engi¬\nneer", "the ship's engineer"),
        ("well-\nKnown", "well-\nKnown"),
        ("the \ufb01rst \ufb02ight, e\ufb03cient", "the first flight, efficient"),
        ("| The margin bar\nand text |\n", "The margin bar\nand text"),
        ("Line one.\n~\n'.\nLine two.", "Line one.\nLine two."),
        ("Page  text\n\n\n\nnext\x0c", "Page text\n\nnext"),
        ("12\nA", "12\nA"),
    ],
)
def test_clean_ocr_text(raw: str, clean: str) -> None:
    assert clean_ocr_text(raw) == clean


def test_page_ranges() -> None:
    assert page_ranges([7, 1, 2, 3, 3]) == [(1, 3), (7, 7)]
    assert page_ranges([]) == []


def test_force_reads_a_pdf_whose_text_layer_is_garbage() -> None:
    """garbled-glyph-names.pdf: unreadable_text names the option; with it, OCR reads the pages."""
    from pypdf import PdfReader, PdfWriter

    path = BAD / "garbled-glyph-names.pdf"
    if not path.exists():
        pytest.skip(f"{path} not available")
    writer = PdfWriter()
    for page in PdfReader(path).pages[1:3]:
        writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(NoTextError) as info:
        ingest_text(out.getvalue(), ocr="auto")
    assert info.value.code == ErrorCode.UNREADABLE_TEXT
    assert '"force"' in info.value.message and "--ocr force" in info.value.message
    forced = ingest_text(out.getvalue(), ocr="force")
    assert forced["progress"].ocr_pages == [1, 2]
    assert "TAM" in forced["text"] and unreadable_reason_of(forced["text"]) is None


async def test_ocr_runs_under_the_worker_memory_limit(scan: bytes) -> None:
    """64 MiB above the worker's start-up size is too little for the OCR libraries: said, not crashed."""
    message = await _no_text_message(scan, ocr="auto", parse_memory_bytes=64 * 1024 * 1024)
    assert "memory limit" in message and "parse_memory_bytes" in message
    assert await no_workers_left()


def covered_book() -> bytes:
    """freeculture.pdf's image-only cover, then six text pages of a story, titled "Free Culture"."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(BAD.parent / "pdf" / "freeculture.pdf").pages[0])
    for page in PdfReader(SOURCE).pages[:6]:
        writer.add_page(page)
    writer.add_metadata({"/Title": "Free Culture"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def test_a_cover_is_ocrd_beside_the_first_chunk_and_completes_the_title() -> None:
    """The first chunk does not wait for the cover's OCR (a second of Tesseract); the title gets its subtitle.

    Order, not wall time: a chunk of the text pages is yielded before OCR reports
    the cover done. The cover's text is in no chunk; the last chunk (and so the
    reduce) carries "Free Culture: How Big Media Uses Technology...".
    """
    seen: list[str] = []  # "chunk" and "ocr" in the order they happened
    progress: list[IngestProgress] = []

    def on_progress(snapshot: IngestProgress) -> None:
        progress.append(snapshot)
        if snapshot.ocr_done and "ocr" not in seen:
            seen.append("ocr")

    async def upload() -> AsyncIterator[bytes]:
        yield covered_book()

    chunks = []
    async for chunk in iter_chunks(
        upload(),
        filename="covered.pdf",
        media_type="application/pdf",
        options=IngestOptions(ocr="auto", chunk_size=2000, chunk_overlap=100),
        on_progress=on_progress,
    ):
        seen.append("chunk")
        chunks.append(chunk)
    assert seen[0] == "chunk", seen
    assert "ocr" in seen  # the cover was OCR'd, before the iterator ended
    assert chunks[0].first_page == 2 and not any(chunk.ocr for chunk in chunks)
    assert not any("CULTURE" in chunk.text.upper() for chunk in chunks)
    assert chunks[-1].title is not None
    assert chunks[-1].title.startswith("Free Culture: How Big Media Uses Technology"), chunks[-1].title
    assert chunks[0].title == "Free Culture"  # an earlier chunk keeps the title it was cut with
    last = progress[-1]
    assert last.ocr_pages == [1] and last.ocr_done == 1
    assert last.title == chunks[-1].title
    assert [note for note in last.warnings if "OCR" in note] == [
        "Page 1 has no text layer (a cover): its text was read by OCR, which can misread words, "
        "and completes the document's title."
    ]


def test_a_cover_is_rendered_at_the_cover_resolution_and_other_pages_at_ocr_dpi() -> None:
    """A cover only gives the title (large type): it is rendered at COVER_DPI (200), a body page
    at ``ocr_dpi``; a lower ``ocr_dpi`` wins for both."""
    from summarizer.ingest import worker

    class Renderer:
        def __init__(self) -> None:
            self.dpis: list[int | None] = []

        def render(self, index: int, dpi: int | None = None) -> object:
            self.dpis.append(dpi)
            raise RuntimeError("rendered")

    page = (1, "", True, True, None, False)
    for ocr_dpi, expected in ((300, [200, 300]), (150, [150, 150])):
        ocr = worker._Ocr(b"", worker.WorkerConfig(ocr="auto", ocr_dpi=ocr_dpi), None)  # type: ignore[arg-type]
        ocr._renderer = renderer = Renderer()
        assert ocr._run(0, page, worker.COVER_DPI)[4] == "OCR failed: RuntimeError: rendered"
        ocr._run(1, page)
        assert renderer.dpis == expected


async def test_a_scan_defers_no_page() -> None:
    """Every page of a scan is content: page 1's OCR text is in the first chunk, in page order."""
    events: list[Any] = []
    async with contextlib.aclosing(extract_pages(make_scan(SOURCE, range(3)), ocr="auto")) as stream:
        async for event in stream:
            if isinstance(event, PdfPage):
                events.append(event)
    assert [event.number for event in events] == [1, 2, 3]
    assert all(event.ocr and not event.deferred and event.text.strip() for event in events)


async def test_a_cover_without_the_tesseract_program_is_named_in_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """OCR cannot run: the text pages are summarized, a warning names the cover and the fix."""
    monkeypatch.setenv("PATH", str(tmp_path))  # the worker is started by absolute path
    progress: list[IngestProgress] = []

    async def upload() -> AsyncIterator[bytes]:
        yield covered_book()

    chunks = [
        chunk
        async for chunk in iter_chunks(
            upload(),
            filename="covered.pdf",
            media_type="application/pdf",
            options=IngestOptions(ocr="auto", chunk_size=2000, chunk_overlap=100),
            on_progress=progress.append,
        )
    ]
    assert chunks and chunks[0].first_page == 2 and chunks[-1].title == "Free Culture"
    last = progress[-1]
    assert last.ocr_pages == []
    (warning,) = [note for note in last.warnings if "Page 1 has no text layer" in note]
    assert "OCR cannot run" in warning and "tesseract" in warning, warning
