"""PDF ingestion: the worker process, streaming, limits, and every bad file of the corpus."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from summarizer.errors import (
    DamagedDocument,
    DocumentError,
    EncryptedDocument,
    ErrorCode,
    LimitExceeded,
    SummarizerError,
)
from summarizer.ingest import IngestOptions, IngestProgress, iter_chunks, read_document
from summarizer.ingest.pdf import PdfOpened, PdfPage, extract_pages, live_workers, unreadable_reason
from summarizer.ingest.types import Chunk

CORPUS = Path(__file__).parent.parent.parent / "shared" / "corpus"
BAD = CORPUS / "bad"

# What each file of corpus/bad must produce: an error code, or text (partial or
# complete) with, where the file is damaged, a warning saying so.
BAD_OUTCOMES: dict[str, ErrorCode | str] = {
    "empty.pdf": ErrorCode.EMPTY_DOCUMENT,
    "not_a_pdf.pdf": ErrorCode.NOT_A_PDF,
    "truncated_half.pdf": ErrorCode.DAMAGED_PDF,
    "encrypted-rc4-password.pdf": ErrorCode.ENCRYPTED_PDF,
    "image-only-ccitt.pdf": ErrorCode.NO_TEXT,
    "image-only-grayscale.pdf": ErrorCode.NO_TEXT,
    "garbled-glyph-names.pdf": ErrorCode.UNREADABLE_TEXT,
    "broken-trailer-no-root.pdf": ErrorCode.DAMAGED_PDF,
    "flate_bomb_1GB.pdf": ErrorCode.DAMAGED_PDF,
    "many_operators.pdf": ErrorCode.DAMAGED_PDF,
    "page_tree_cycle.pdf": ErrorCode.DAMAGED_PDF,
    "xref_prev_loop.pdf": "prevloop",
    "pdfjs-GHOSTSCRIPT-698804-1-fuzzed.pdf": ErrorCode.EMPTY_DOCUMENT,
    "pdfjs-PDFBOX-3148-2-fuzzed.pdf": ErrorCode.DAMAGED_PDF,
    "pdfjs-bad-PageLabels.pdf": "PDF document with bad Page Labels.",
    "pdfjs-helloworld-bad.pdf": "Hello, world!",
    "pdfjs-poppler-395-0-fuzzed.pdf": ErrorCode.DAMAGED_PDF,
    "pdfjs-poppler-90-0-fuzzed.pdf": ErrorCode.DAMAGED_PDF,
    "pdfjs-xref_command_missing.pdf": "Reduced test-case",
}
REPAIRED = {"xref_prev_loop.pdf", "pdfjs-helloworld-bad.pdf", "pdfjs-xref_command_missing.pdf"}


def corpus_path(*parts: str) -> Path:
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"corpus file {path} not available")
    return path


def bad_files() -> list[str]:
    names = set(BAD_OUTCOMES)
    if BAD.is_dir():
        names |= {path.name for path in BAD.glob("*.pdf")}
    return sorted(names)


def group_alive(group: int) -> bool:
    """Whether any live (non-zombie) process is in process group ``group``."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[2]) == group:
                return True
    return False


def workers() -> list[int]:
    """Worker process groups still running (the worker or a Tesseract it started)."""
    return [group for group in live_workers() if group_alive(group)]


async def no_workers_left(timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while workers():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def slices(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        await asyncio.sleep(0)


@dataclass
class Run:
    chunks: list[Chunk] = field(default_factory=list)
    progress: list[IngestProgress] = field(default_factory=list)
    chunk_pages_done: list[int] = field(default_factory=list)  # pages extracted when each chunk came
    seconds: float = 0.0


async def ingest(path: Path, run: Run | None = None, **options: object) -> Run:
    run = run or Run()
    started = time.perf_counter()
    async for chunk in iter_chunks(
        slices(path.read_bytes()),
        filename=path.name,
        media_type="application/pdf",
        options=IngestOptions(**options),  # type: ignore[arg-type]
        on_progress=run.progress.append,
    ):
        run.chunks.append(chunk)
        run.chunk_pages_done.append(run.progress[-1].pages_done if run.progress else 0)
    run.seconds = time.perf_counter() - started
    return run


def assert_consistent(chunks: list[Chunk], chunk_size: int = 4000) -> None:
    """Indices consecutive, offsets increasing, and overlapping neighbours agree on the shared text."""
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert chunk.end - chunk.start == len(chunk.text) <= chunk_size
        assert 1 <= chunk.first_page <= chunk.last_page
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start and before.end < after.end
        assert before.first_page <= after.first_page
        if after.start < before.end:
            shared = before.end - after.start
            assert before.text[-shared:] == after.text[:shared]


# -- every bad file ends cleanly ---------------------------------------------------


@pytest.mark.parametrize("name", bad_files())
async def test_bad_file(name: str) -> None:
    path = corpus_path("bad", name)
    expected = BAD_OUTCOMES.get(name)
    run = Run()
    try:
        await asyncio.wait_for(ingest(path, run), timeout=30)
    except DocumentError as exc:
        assert exc.message and exc.message[-1] == "."
        if expected is None:  # a new file in the corpus: any specific refusal will do
            return
        assert exc.code == expected, exc.message
    else:
        assert isinstance(expected, str), f"{name} should have been refused with {expected}"
        assert expected in " ".join(chunk.text for chunk in run.chunks)
        assert run.progress[-1].finished
        if name in REPAIRED:
            assert any("damaged" in note for note in run.progress[-1].warnings)
    assert await no_workers_left()


async def test_encrypted_pdf_with_password() -> None:
    path = corpus_path("bad", "encrypted-rc4-password.pdf")
    run = await ingest(path, password="openpassword")
    assert run.chunks and run.progress[-1].finished
    with pytest.raises(EncryptedDocument, match="does not open it") as info:
        await ingest(path, password="wrong")
    assert info.value.code == ErrorCode.ENCRYPTED_PDF


async def test_no_text_message_says_ocr() -> None:
    with pytest.raises(DocumentError, match="OCR"):
        await ingest(corpus_path("bad", "image-only-ccitt.pdf"))


# -- good documents ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("google-doc-document.pdf", "Beautiful is better than ugly"),
        ("Seige_of_Vicksburg_Sample_OCR.pdf", "dangerous for use"),
        ("squality-63833-jinx-ship.pdf", "Jinx"),
    ],
)
async def test_small_documents(name: str, needle: str) -> None:
    run = await ingest(corpus_path("pdf", name), chunk_size=1500, chunk_overlap=150)
    assert_consistent(run.chunks, 1500)
    assert needle in " ".join(chunk.text for chunk in run.chunks)
    last = run.progress[-1]
    assert last.finished and last.pages_done == last.pages_total
    assert last.chunks == len(run.chunks)
    assert last.characters > 0


@pytest.fixture(scope="module")
def freeculture() -> Run:
    """freeculture.pdf (352 pages) ingested once for the tests below."""
    return asyncio.run(ingest(corpus_path("pdf", "freeculture.pdf")))


def test_freeculture_chunks_and_progress(freeculture: Run) -> None:
    run = freeculture
    assert_consistent(run.chunks)
    assert len(run.chunks) > 120  # front and back matter skipped (see tests/test_structure.py)
    assert run.chunks[-1].last_page == 312  # the notes, acknowledgements and index (313-352) are skipped
    last = run.progress[-1]
    assert last.finished and last.pages_total == 352 and last.pages_done == 352
    assert last.chunks == len(run.chunks)
    assert last.ocr_pages == [1], "the cover is an image: OCR'd (ocr='auto' is the default)"
    # ... beside the first chunks, not before them: its text completes the title, it is in no chunk.
    assert not any(chunk.ocr for chunk in run.chunks) and run.chunks[0].first_page > 1
    assert last.title == run.chunks[-1].title and last.title.startswith("Free Culture: How Big Media")
    assert any(
        "Page 1 has no text layer (a cover)" in note and "completes the document's title" in note
        for note in last.warnings
    )
    done = [p.pages_done for p in run.progress]
    assert done == sorted(done)
    assert all(p.pages_total == 352 for p in run.progress)


def test_freeculture_chunks_stream_while_pages_are_extracted(freeculture: Run) -> None:
    assert freeculture.chunk_pages_done[0] < 60, "the first chunk must not wait for the whole book"
    assert len(set(freeculture.chunk_pages_done)) > 30, "chunks come in small batches as pages arrive"


def test_freeculture_is_cleaned(freeculture: Run) -> None:
    text = "\n".join(chunk.text for chunk in freeculture.chunks)
    assert "4TH PASS PAGES" not in text
    assert ".qxd" not in text
    assert "free-culture.org/get-it" not in text
    assert "signiﬁcant" not in text and "significant" in text


# -- the worker: streaming, busy loop, timeout, cancellation, memory --------------------


async def test_pages_arrive_one_by_one() -> None:
    data = corpus_path("pdf", "tracemonkey.pdf").read_bytes()
    arrivals: list[float] = []
    numbers: list[int] = []
    async with contextlib.aclosing(extract_pages(data)) as events:
        async for event in events:
            if isinstance(event, PdfOpened):
                assert event.pages == 14
            elif isinstance(event, PdfPage):
                arrivals.append(time.perf_counter())
                numbers.append(event.number)
    assert numbers == list(range(1, 15))
    assert arrivals[-1] - arrivals[0] > 0.05, "pages came in one batch at the end"


async def test_extraction_continues_while_the_event_loop_is_busy() -> None:
    data = corpus_path("pdf", "tracemonkey.pdf").read_bytes()
    async with contextlib.aclosing(extract_pages(data)) as events:
        async for event in events:
            if isinstance(event, PdfPage):
                break
        time.sleep(4)  # block the loop; the worker and the pump thread keep going
        started = time.perf_counter()
        rest = [event async for event in events if isinstance(event, PdfPage)]
        drained = time.perf_counter() - started
    assert [page.number for page in rest] == list(range(2, 15))
    assert drained < 0.5, f"pages were extracted only after the loop was free ({drained:.2f} s)"


async def test_parse_timeout_kills_the_worker() -> None:
    path = corpus_path("pdf", "freeculture.pdf")
    started = time.perf_counter()
    with pytest.raises(DocumentError) as info:
        await ingest(path, parse_timeout_s=1.5)
    assert info.value.code == ErrorCode.PARSE_TIMEOUT
    assert "1.5 s" in info.value.message and "parse_timeout_s" in info.value.message
    assert time.perf_counter() - started < 5
    assert await no_workers_left()


async def test_cancellation_kills_the_worker() -> None:
    path = corpus_path("pdf", "freeculture.pdf")
    first_page = asyncio.Event()
    run = Run()

    async def consume() -> None:
        async for chunk in iter_chunks(
            slices(path.read_bytes()),
            filename=path.name,
            media_type="application/pdf",
            options=IngestOptions(),
            on_progress=on_progress,
        ):
            run.chunks.append(chunk)

    def on_progress(progress: IngestProgress) -> None:
        run.progress.append(progress)
        first_page.set()  # 351 pages are still to read: the workers are surely running

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_page.wait(), timeout=20)
    assert workers(), "the workers are still extracting"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await no_workers_left(2.0)
    assert run.progress[-1].pages_done < 352


async def test_closing_the_page_stream_kills_the_worker() -> None:
    data = corpus_path("pdf", "freeculture.pdf").read_bytes()
    async with contextlib.aclosing(extract_pages(data)) as events:
        async for event in events:
            if isinstance(event, PdfPage):
                break
    assert await no_workers_left(2.0)


async def test_memory_limit() -> None:
    with pytest.raises(DamagedDocument, match="memory limit") as info:
        await ingest(corpus_path("pdf", "tracemonkey.pdf"), parse_memory_bytes=2 * 1024 * 1024)
    assert info.value.code == ErrorCode.DAMAGED_PDF
    assert await no_workers_left()


async def test_page_limit() -> None:
    with pytest.raises(LimitExceeded, match="14 pages; at most 5") as info:
        await ingest(corpus_path("pdf", "tracemonkey.pdf"), max_pages=5)
    assert info.value.code == ErrorCode.DOCUMENT_TOO_LARGE
    assert await no_workers_left()


async def test_text_limit() -> None:
    with pytest.raises(LimitExceeded, match="2,000 characters"):
        await ingest(corpus_path("pdf", "Seige_of_Vicksburg_Sample_OCR.pdf"), max_text_chars=2000)


async def test_worker_is_its_own_program_not_a_multiprocessing_child() -> None:
    """The worker runs ``python -m summarizer.ingest.worker``; it never re-imports ``__main__``."""
    data = corpus_path("pdf", "google-doc-document.pdf").read_bytes()
    async with contextlib.aclosing(extract_pages(data)) as events:
        pages = [event async for event in events if isinstance(event, PdfPage)]
    assert len(pages) == 1 and "Beautiful is better than ugly" in pages[0].text
    assert await no_workers_left()


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-c", "import sys; sys.exit('no module named summarizer.ingest.worker')"],
        [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
        ["/nonexistent/python3", "-m", "summarizer.ingest.worker"],
    ],
    ids=["exits", "killed", "missing"],
)
async def test_a_worker_that_cannot_start_is_an_internal_error(command: list[str]) -> None:
    data = corpus_path("pdf", "google-doc-document.pdf").read_bytes()
    with pytest.raises(SummarizerError) as info:
        async with contextlib.aclosing(extract_pages(data, command=command)) as events:
            async for _ in events:
                pass
    assert info.value.code == ErrorCode.INTERNAL_ERROR
    assert "worker process could not" in info.value.message
    assert "not with the PDF" in info.value.message
    assert "malformed" not in info.value.message and "damaged" not in info.value.message
    if command[0] == sys.executable and "exit(" in command[2]:
        assert "no module named summarizer.ingest.worker" in info.value.message  # its stderr is quoted
    assert await no_workers_left()


SCRIPT_WITHOUT_MAIN_GUARD = """
from summarizer.ingest import read_document
import sys
chunks = read_document(sys.argv[1])
print("CHUNKS", len(chunks), chunks[0].text[:40].replace("\\n", " "))
"""


def test_a_script_without_a_main_guard_reads_a_pdf(tmp_path: Path) -> None:
    """multiprocessing's spawn/forkserver would run this script again in the worker and fail."""
    script = tmp_path / "summarize_it.py"
    script.write_text(SCRIPT_WITHOUT_MAIN_GUARD)
    path = corpus_path("pdf", "google-doc-document.pdf")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    done = subprocess.run(
        [sys.executable, str(script), str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("CHUNKS 1") == 1, done.stdout  # the script ran once


# -- text quality ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "/g18/g152/g135/g148/g152/g139/g135/g153/g3/g145/g136 " * 20,
        "\ue000\ue001\ue002 \ue003\ue004" * 50,
        "\x01\x02\x03 \ufffd\ufffd" * 50,
        "12.5 % 13.7 % 99.1 $ 42 (7) [8] -- 3 + 4 = 7; " * 20,
    ],
)
def test_unreadable_text_is_detected(text: str) -> None:
    assert unreadable_reason(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Ordinary English prose, with punctuation and numbers like 1984. " * 20,
        "Die Fundamentalgruppe π1(X, x0) ist eine Gruppe; für x ∈ X gilt f(x) = y. " * 20,
        "Short: 1, 2, 3.",
        "Path a/b/c and dates 2004/08/01 in text that is mostly words anyway. " * 10,
    ],
)
def test_readable_text_passes(text: str) -> None:
    assert unreadable_reason(text) is None


def test_read_document_on_a_pdf() -> None:
    chunks = read_document(corpus_path("pdf", "google-doc-document.pdf"))
    assert len(chunks) == 1 and "Beautiful is better than ugly" in chunks[0].text


def test_the_bad_characters_class_is_the_character_test() -> None:
    """The character class that counts bad characters matches the per-character test everywhere."""
    from summarizer.ingest.pdf import _BAD_CHARS, _is_bad_char

    characters = map(chr, range(0x110000))
    mismatched = [hex(ord(c)) for c in characters if (_BAD_CHARS.match(c) is not None) != _is_bad_char(c)]
    assert mismatched == []
