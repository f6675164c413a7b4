"""The ingestion entry point: an upload in, a stream of chunks out.

:func:`iter_chunks` detects the kind of document from its first KiB, then

* text and Markdown: decodes, paginates (form feeds) and chunks each piece as
  it arrives, so chunks flow while the upload is still coming in;
* PDF: takes in the whole file (a PDF cannot be read from its start: the
  pieces go to a temporary file, or are only counted when a file already holds
  them, see :mod:`summarizer.ingest.source`), parses it in worker processes
  (:mod:`summarizer.ingest.pdf`), cleans pages (:mod:`summarizer.ingest.clean`),
  drops unreadable pages and chunks the rest as pages arrive. The cleaner holds
  pages back only while the chunker could not cut its next chunk anyway: as soon
  as the pages in hand hold enough text, they are released, so a chunk leaves
  the moment its last page is extracted.

It enforces the limits in :class:`IngestOptions`, reports progress through an
optional callback, and ends with a specific :class:`DocumentError` when there
is nothing to summarize.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import logging
import mimetypes
import tempfile
import threading
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Iterable
from pathlib import Path

from summarizer.errors import (
    DamagedDocument,
    ErrorCode,
    LimitExceeded,
    NoTextError,
    StorageError,
    UnsupportedDocument,
)
from summarizer.ingest.chunking import PAGE_SEPARATOR, IncrementalChunker
from summarizer.ingest.clean import PageCleaner
from summarizer.ingest.detect import MAGIC_WINDOW, DocumentKind, detect_kind
from summarizer.ingest.pdf import (
    PdfCoverRead,
    PdfNotice,
    PdfOcrPlan,
    PdfOcrUnavailable,
    PdfOpened,
    PdfOutlineRead,
    PdfPage,
    extract_pages,
    unreadable_reason,
)
from summarizer.ingest.source import DocumentFile, FileUpload, StoredUpload
from summarizer.ingest.structure import StructureFilter, raw_leader_lines, text_title
from summarizer.ingest.text import TextStreamReader
from summarizer.ingest.types import Chunk, IngestOptions, IngestProgress, Page

__all__ = ["SPOOL_PREFIX", "ProgressCallback", "iter_chunks", "read_document"]

SPOOL_PREFIX = "summarizer-pdf-"
"""Name prefix of the temporary file a PDF upload is written to when no store file holds it."""

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[IngestProgress], None]
"""Receives a snapshot of the progress (a copy: keeping it is safe)."""

OCR_LOOKAHEAD = 1
"""Pages the cleaner holds back when most pages are OCR'd (the default holds 8).
An OCR'd page costs seconds, so holding 8 back would delay the first chunk by
8 pages of OCR; with one page ahead plus the pages behind (history), running
heads and footers are still found from the third page on."""

UNREADABLE_CHECK_PAGES = 8
"""After this many pages with text, a document whose pages are mostly
unreadable is refused at once rather than at its end."""


async def iter_chunks(
    upload: AsyncIterable[bytes | str],
    *,
    filename: str,
    media_type: str,
    options: IngestOptions,
    on_progress: ProgressCallback | None = None,
) -> AsyncIterator[Chunk]:
    """Read an upload as it arrives and yield its chunks.

    Args:
        upload: The document as it arrives: binary slices of any size, or
            :class:`str` pieces (text messages) for text documents.
        filename: The client's file name (its extension helps detection).
        media_type: The declared media type (may be empty).
        options: Chunk sizes, password and limits.
        on_progress: Called with a snapshot after each PDF page or upload
            piece, and once at the end with ``finished=True``.

    Yields:
        Chunks in order: ``index`` 0, 1, ...; offsets into the cleaned
        document text (pages joined with ``"\\n\\n"``).

    Raises:
        ValueError: ``options.chunk_overlap`` is not smaller than ``options.chunk_size``
            (or either is out of range).
        NoTextError: ``empty_document`` (zero bytes or only white space),
            ``no_text`` (a PDF without text layer: needs OCR) or
            ``unreadable_text`` (glyph-name garbage).
        UnsupportedDocument: ``not_a_pdf``, ``unsupported_media_type`` or
            ``bad_encoding`` (the message has the byte offset).
        EncryptedDocument: The PDF needs ``options.password``.
        DamagedDocument: pypdf cannot read the PDF.
        DocumentError: ``parse_timeout`` after ``options.parse_timeout_s``.
        LimitExceeded: More than ``options.max_pages`` pages or
            ``options.max_text_chars`` characters.
        SummarizerError: ``internal_error`` if the PDF worker process cannot be started.
    """
    # Validate the chunk sizes before reading anything.
    chunker = IncrementalChunker(options.chunk_size, options.chunk_overlap)
    progress = IngestProgress()
    pieces = aiter(upload)
    head: list[bytes | str] = []
    head_bytes = bytearray()
    async for piece in pieces:
        if not piece:
            continue
        head.append(piece)
        head_bytes += piece.encode("utf-8") if isinstance(piece, str) else piece
        if len(head_bytes) >= MAGIC_WINDOW:
            break
    kind = detect_kind(filename, media_type, bytes(head_bytes[:MAGIC_WINDOW]))
    if kind == "pdf":
        stored = upload.document_path() if isinstance(upload, StoredUpload) else None
        stream = _pdf_chunks(head, pieces, chunker, options, progress, on_progress, filename, stored)
    else:
        if kind == "markdown":
            chunker = IncrementalChunker(options.chunk_size, options.chunk_overlap, markdown=True)
        stream = _text_chunks(head, pieces, kind, chunker, options, progress, on_progress, filename)
    async with contextlib.aclosing(stream):
        async for chunk in stream:
            yield chunk


def read_document(
    path: str | Path,
    *,
    media_type: str | None = None,
    options: IngestOptions | None = None,
    on_progress: ProgressCallback | None = None,
) -> list[Chunk]:
    """Read a file from disk into chunks (a blocking convenience for scripts and benchmarks).

    Args:
        path: The file.
        media_type: Declared media type; guessed from the name if ``None``.
        options: Ingestion options (defaults if ``None``).
        on_progress: As for :func:`iter_chunks`.

    Returns:
        All chunks.

    Raises:
        OSError: If the file cannot be read.
        DocumentError: As :func:`iter_chunks`.
        RuntimeError: If called from a running event loop (use :func:`iter_chunks`).
    """
    path = Path(path)
    if media_type is None:
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"

    async def collect() -> list[Chunk]:
        return [
            chunk
            async for chunk in iter_chunks(
                FileUpload(path),  # a PDF's workers read the file itself
                filename=path.name,
                media_type=media_type,
                options=options or IngestOptions(),
                on_progress=on_progress,
            )
        ]

    return asyncio.run(collect())


# --------------------------------------------------------------------------
# text and Markdown


async def _text_chunks(
    head: Iterable[bytes | str],
    rest: AsyncIterator[bytes | str],
    kind: DocumentKind,
    chunker: IncrementalChunker,
    options: IngestOptions,
    progress: IngestProgress,
    on_progress: ProgressCallback | None,
    filename: str = "",
) -> AsyncGenerator[Chunk, None]:
    """Decode and chunk a text upload piece by piece."""
    reader = TextStreamReader()
    opening: list[str] = []  # the first characters, for the title
    async for piece in _all_pieces(head, rest):
        if not piece:
            continue
        chunks: list[Chunk] = []
        for run in reader.feed(piece):
            if sum(map(len, opening)) < 2000:
                opening.append(run.text)
            chunks += chunker.append(run.text, run.page)
        _check_text_limit(reader.characters, options)
        progress.pages_done = reader.page
        progress.characters = reader.characters
        for chunk in chunks:
            progress.chunks += 1
            progress.chunk_characters += len(chunk.text)
            progress.title = progress.title or text_title("".join(opening), filename)
            yield dataclasses.replace(chunk, title=progress.title)
        _report(on_progress, progress)
    chunks = []
    for run in reader.finish():
        opening.append(run.text)
        chunks += chunker.append(run.text, run.page)
    progress.characters = reader.characters
    for chunk in [*chunks, *chunker.finish()]:
        progress.chunks += 1
        progress.chunk_characters += len(chunk.text)
        progress.title = progress.title or text_title("".join(opening), filename)
        yield dataclasses.replace(chunk, title=progress.title)
    if progress.chunks == 0:
        what = "Markdown document" if kind == "markdown" else "text document"
        raise NoTextError(
            f"The {what} contains only white space: there is nothing to summarize.",
            code=ErrorCode.EMPTY_DOCUMENT,
        )
    progress.finished = True
    _report(on_progress, progress)


def _check_text_limit(characters: int, options: IngestOptions) -> None:
    if characters > options.max_text_chars:
        raise LimitExceeded(
            f"The document has more than {options.max_text_chars:,} characters of text "
            "(the max_text_chars limit); split it into smaller documents.",
            code=ErrorCode.DOCUMENT_TOO_LARGE,
        )


# --------------------------------------------------------------------------
# PDF


@dataclasses.dataclass(slots=True)
class _PdfReport:
    """What went wrong on which pages, turned into user-facing warnings."""

    pages_with_text: int = 0
    textless: list[int] = dataclasses.field(default_factory=list)
    images_only: list[int] = dataclasses.field(default_factory=list)
    blank: int = 0
    failed: dict[int, str] = dataclasses.field(default_factory=dict)
    unreadable: dict[int, str] = dataclasses.field(default_factory=dict)
    repaired: str | None = None
    ocr: str = "off"
    ocr_ran: bool = False
    ocr_unavailable: str | None = None
    ocr_failed: dict[int, str] = dataclasses.field(default_factory=dict)
    first_ocr_page: int | None = None
    cover_ocr: bool = False  # the first OCR'd page is a cover, whose text went to the title
    _rendered: tuple[tuple[int, ...], list[str]] | None = dataclasses.field(default=None, repr=False)

    def warnings(self) -> list[str]:
        """The current warnings (re-rendered only when something was added)."""
        key = (
            len(self.failed),
            len(self.unreadable),
            len(self.images_only),
            self.repaired is None,
            len(self.ocr_failed),
            self.first_ocr_page is None,
            self.cover_ocr,
        )
        if self._rendered is None or self._rendered[0] != key:
            self._rendered = (key, self._render())
        return list(self._rendered[1])

    def _render(self) -> list[str]:
        notes: list[str] = []
        if self.repaired is not None:
            notes.append(
                "The PDF is damaged; its structure was repaired while reading "
                f"(first problem: {self.repaired}). Some text may be missing."
            )
        if self.failed:
            first = min(self.failed)
            notes.append(
                f"{_pages(self.failed)} could not be read and {_were(self.failed)} skipped "
                f"(page {first}: {self.failed[first]})."
            )
        if self.unreadable:
            first = min(self.unreadable)
            notes.append(
                f"{_pages(self.unreadable)} {_were(self.unreadable, 'has', 'have')} unreadable "
                f"text ({self.unreadable[first]}) and {_were(self.unreadable)} skipped."
            )
        if self.ocr_failed:
            first = min(self.ocr_failed)
            notes.append(
                f"{_pages(self.ocr_failed)} could not be OCR'd and {_were(self.ocr_failed)} skipped "
                f"(page {first}: {self.ocr_failed[first]})."
            )
        scanned = [number for number in self.images_only if number not in self.ocr_failed]
        if scanned:
            notes.append(
                f"{_pages(scanned)} {_were(scanned, 'has', 'have')} no text layer "
                f"(scanned images?) and {_were(scanned)} skipped; {self.ocr_hint(len(scanned))}"
            )
        if self.first_ocr_page is not None and self.cover_ocr:
            notes.append(
                f"Page {self.first_ocr_page} has no text layer (a cover): its text was read by OCR, "
                "which can misread words, and completes the document's title."
            )
        elif self.first_ocr_page is not None:
            notes.append(
                f"Page {self.first_ocr_page} has no text layer (a scan?): its text was read by OCR, "
                "which can misread words. The document event lists every page read by OCR."
                if self.ocr != "force"
                else "Pages are read by OCR (ocr: force), which can misread words."
            )
        return notes

    def ocr_hint(self, pages: int) -> str:
        """What to do about pages without a text layer, given how OCR went (a sentence)."""
        them = "it" if pages == 1 else "them"
        if self.ocr == "off":
            return f'OCR is off: set options.ocr to "auto" (--ocr auto) to read {them}.'
        if self.ocr_unavailable is not None:
            return f"OCR cannot run: {self.ocr_unavailable}."
        if self.ocr_ran:
            return f"OCR found no text on {them}."
        return f"run OCR to include {them}."


async def _pdf_chunks(
    head: Iterable[bytes | str],
    rest: AsyncIterator[bytes | str],
    chunker: IncrementalChunker,
    options: IngestOptions,
    progress: IngestProgress,
    on_progress: ProgressCallback | None,
    filename: str = "",
    stored: Path | None = None,
) -> AsyncGenerator[Chunk, None]:
    """Take in a PDF upload, then extract, clean, filter (structure) and chunk it page by page.

    A PDF is parsed from its end, so it is taken in whole first, never held in
    memory: with ``stored`` (the file that already holds the upload's bytes, see
    :mod:`summarizer.ingest.source`) the pieces are only counted; otherwise they
    are written to a temporary file (:data:`SPOOL_PREFIX`, in the temporary
    directory, ``TMPDIR``), deleted when ingestion ends.

    Raises:
        StorageError: The temporary file cannot be written (say, the disk is full).
    """
    with contextlib.ExitStack() as stack:
        size = 0
        if stored is None:
            try:
                spool = stack.enter_context(tempfile.NamedTemporaryFile(prefix=SPOOL_PREFIX, suffix=".pdf"))
                async for piece in _all_pieces(head, rest):
                    size += spool.write(_pdf_bytes(piece))
                spool.flush()
            except OSError as exc:
                raise StorageError(
                    f"The server could not keep the PDF until it is parsed ({exc}); try again later."
                ) from exc
            stored = Path(spool.name)
        else:
            async for piece in _all_pieces(head, rest):
                size += len(_pdf_bytes(piece))
        pages = _pdf_file_chunks(
            DocumentFile(stored, size), chunker, options, progress, on_progress, filename
        )
        async with contextlib.aclosing(pages):
            async for chunk in pages:
                yield chunk


async def _pdf_file_chunks(
    data: DocumentFile,
    chunker: IncrementalChunker,
    options: IngestOptions,
    progress: IngestProgress,
    on_progress: ProgressCallback | None,
    filename: str,
) -> AsyncGenerator[Chunk, None]:
    """Extract, clean, filter (structure) and chunk a whole PDF page by page."""
    cleaner = PageCleaner()
    report = _PdfReport(ocr=options.ocr)
    ocr_pages: set[int] = set()
    structure = StructureFilter(
        total_pages=0, filename=filename, include_back_matter=options.include_back_matter
    )

    def feed(pages: Iterable[Page]) -> list[Chunk]:
        """Chunk the pages the structure filter keeps; every chunk carries the title."""
        chunks: list[Chunk] = []
        for page in pages:
            chunks += [_mark_ocr(chunk, ocr_pages) for chunk in chunker.feed(page)]
            kept[page.number] = len(page.text)
            progress.characters += len(page.text)
            _check_text_limit(progress.characters, options)
        progress.title = structure.title
        progress.skipped = list(structure.skipped)
        return [dataclasses.replace(chunk, title=structure.title) for chunk in chunks]

    def take(cleaned: Iterable[Page]) -> list[Chunk]:
        chunks: list[Chunk] = []
        for page in cleaned:
            if not page.text:
                continue
            report.pages_with_text += 1
            reason = unreadable_reason(page.text)
            if reason is not None:
                report.unreadable[page.number] = reason
                _check_unreadable(report, final=False)
                continue
            chunks += feed(structure.push(page))
        return chunks

    kept: dict[int, int] = {}  # page number -> characters of its cleaned text, for revisions

    def revise(revisions: Iterable[Page]) -> list[Chunk]:
        """Apply the cleaner's second opinions to pages the chunker has not used up."""
        chunks: list[Chunk] = []
        for page in revisions:
            if page.number not in kept or unreadable_reason(page.text) is not None:
                continue
            if not structure.unchanged(page.number):
                continue  # cut or joined by the structure filter: keep what was chunked
            applied, cut = chunker.revise(page)
            if applied:
                progress.characters += len(page.text) - kept[page.number]
                kept[page.number] = len(page.text)
            chunks += [
                dataclasses.replace(_mark_ocr(chunk, ocr_pages), title=structure.title) for chunk in cut
            ]
        return chunks

    # The second PDF worker starts once the first chunk is out: until then the first
    # worker has a core of its own (first chunk token of freeculture.pdf 0.82-0.96 of
    # its reference with the gate, 0.84-1.11 without, interleaved fresh-server runs).
    first_chunk_out = threading.Event()
    events = extract_pages(
        data,
        password=options.password,
        timeout_s=options.parse_timeout_s,
        memory_bytes=options.parse_memory_bytes,
        max_text_chars=options.max_text_chars,
        ocr=options.ocr,
        ocr_languages=options.ocr_languages,
        ocr_workers=options.ocr_workers,
        ocr_page_timeout_s=options.ocr_page_timeout_s,
        workers=options.parse_workers,
        split_gate=first_chunk_out,
    )
    async with contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, PdfOpened):
                _check_page_limit(event.pages, options)
                progress.pages_total = structure.total_pages = event.pages
                _report(on_progress, progress)
            elif isinstance(event, PdfOutlineRead):
                structure.use_outline(event.outline)  # its metadata title, when plausible, is the title
            elif isinstance(event, PdfNotice):
                logger.debug("pypdf (%s): %s", event.source, event.message)
                if event.source == "pypdf._reader" and report.repaired is None:
                    report.repaired = event.message
                    progress.warnings = report.warnings()
            elif isinstance(event, PdfOcrPlan):
                report.ocr_ran = True
                if (
                    event.pages
                    and 2 * event.pages >= (progress.pages_total or 0)
                    and progress.pages_done == 0
                ):
                    cleaner = PageCleaner(lookahead=OCR_LOOKAHEAD)  # a scan: stream sooner
                progress.ocr_total = event.pages
                _report(on_progress, progress)
            elif isinstance(event, PdfOcrUnavailable):
                report.ocr_unavailable = event.reason
                logger.warning("OCR is unavailable: %s", event.reason)
            elif isinstance(event, PdfCoverRead):
                _take_cover(event.page, structure, report, progress, ocr_pages)
                _report(on_progress, progress)
            elif isinstance(event, PdfPage):
                if not event.deferred:  # a cover's OCR is noted when it comes
                    _note_page(event, report)
                structure.raw_leaders[event.number] = raw_leader_lines(event.text)
                if event.ocr:
                    report.cover_ocr = False  # pages of the body were OCR'd too: say so
                    if report.first_ocr_page is None:
                        report.first_ocr_page = event.number
                    ocr_pages.add(event.number)
                    progress.ocr_pages.append(event.number)
                if event.ocr or event.number in report.ocr_failed:
                    progress.ocr_done += 1
                    progress.ocr_total = max(progress.ocr_total or 0, progress.ocr_done)
                cleaned = cleaner.push(Page(event.number, event.text))
                chunks = revise(cleaner.revisions())
                if cleaner.pending_characters + len(PAGE_SEPARATOR) * cleaner.pending >= chunker.needed:
                    # The chunker can cut its next chunk from the pages in hand: do
                    # not make it wait for the cleaner's lookahead.
                    cleaned += cleaner.release()
                chunks += take(cleaned)
                if chunker.first_open_page is not None:
                    cleaner.settle(chunker.first_open_page)
                for chunk in chunks:
                    progress.chunks += 1
                    progress.chunk_characters += len(chunk.text)
                    first_chunk_out.set()
                    yield chunk
                progress.pages_done += 1
                progress.warnings = report.warnings()
                _report(on_progress, progress)
                # The workers are often pages ahead: the queue then never makes this
                # loop wait, and without a turn of the event loop per page the map
                # calls of the chunks just yielded would not start before the book ends.
                await asyncio.sleep(0)
    tail = [*take(cleaner.finish()), *feed(structure.finish())]
    tail += [
        dataclasses.replace(_mark_ocr(chunk, ocr_pages), title=structure.title) for chunk in chunker.finish()
    ]
    for chunk in tail:
        progress.chunks += 1
        progress.chunk_characters += len(chunk.text)
        yield chunk
    if progress.ocr_total is not None:
        progress.ocr_total = progress.ocr_done  # the estimate becomes the count
    _check_unreadable(report, final=True)
    progress.warnings = report.warnings()
    if structure.warning is not None:
        progress.warnings.append(structure.warning)
    if progress.chunks == 0:
        raise _no_chunks_error(report, progress.pages_total or 0)
    progress.finished = True
    _report(on_progress, progress)


async def _all_pieces(
    head: Iterable[bytes | str], rest: AsyncIterator[bytes | str]
) -> AsyncIterator[bytes | str]:
    """The pieces :func:`iter_chunks` read to detect the kind (``head``), then the rest of the upload."""
    for piece in head:
        yield piece
    async for piece in rest:
        yield piece


def _pdf_bytes(piece: bytes | str) -> bytes:
    if isinstance(piece, str):
        raise UnsupportedDocument(
            "A PDF must be uploaded as binary data, not as text messages.",
            code=ErrorCode.NOT_A_PDF,
        )
    return piece


def _check_page_limit(pages: int, options: IngestOptions) -> None:
    if pages > options.max_pages:
        raise LimitExceeded(
            f"The PDF has {pages:,} pages; at most {options.max_pages:,} are accepted "
            "(the max_pages limit). Split it into smaller documents.",
            code=ErrorCode.DOCUMENT_TOO_LARGE,
        )


def _mark_ocr(chunk: Chunk, ocr_pages: set[int]) -> Chunk:
    """The chunk, flagged ``ocr`` when one of its pages was read by OCR."""
    if ocr_pages and any(number in ocr_pages for number in range(chunk.first_page, chunk.last_page + 1)):
        return dataclasses.replace(chunk, ocr=True)
    return chunk


def _take_cover(
    page: PdfPage,
    structure: StructureFilter,
    report: _PdfReport,
    progress: IngestProgress,
    ocr_pages: set[int],
) -> None:
    """A deferred cover's OCR: its text goes to the title, its failure into the warnings."""
    if page.ocr and page.text.strip():
        structure.use_cover(page.text)
        ocr_pages.add(page.number)
        bisect.insort(progress.ocr_pages, page.number)
        report.cover_ocr = report.first_ocr_page is None  # no other page was OCR'd
        if report.first_ocr_page is None or page.number < report.first_ocr_page:
            report.first_ocr_page = page.number
    else:
        _note_page(page, report)
    if page.ocr or page.number in report.ocr_failed:
        progress.ocr_done += 1
        progress.ocr_total = max(progress.ocr_total or 0, progress.ocr_done)
    progress.warnings = report.warnings()


def _note_page(page: PdfPage, report: _PdfReport) -> None:
    if page.error is not None and page.has_images and not page.text.strip():
        report.ocr_failed[page.number] = page.error  # an image page whose OCR failed
        report.textless.append(page.number)
        report.images_only.append(page.number)
    elif page.error is not None:
        report.failed[page.number] = page.error
    elif not page.text.strip():
        report.textless.append(page.number)
        if page.has_images:
            report.images_only.append(page.number)
        report.blank += page.blank


def _check_unreadable(report: _PdfReport, *, final: bool) -> None:
    """Refuse a document whose pages with text are mostly garbage."""
    seen, bad = report.pages_with_text, len(report.unreadable)
    if not final and seen < UNREADABLE_CHECK_PAGES:
        return
    if bad and 2 * bad > seen:
        first = min(report.unreadable)
        raise NoTextError(
            f"The PDF's text cannot be read: {bad} of {seen} pages with text extract as "
            f"{report.unreadable[first]}. Read it with OCR instead of its text layer "
            '(options.ocr "force", --ocr force) or export the PDF again with embedded Unicode fonts.',
            code=ErrorCode.UNREADABLE_TEXT,
        )


def _no_chunks_error(report: _PdfReport, pages_total: int) -> Exception:
    """The most specific error for a PDF that produced no text at all."""
    if pages_total == 0:
        return NoTextError(
            "The PDF has no pages: there is nothing to summarize.",
            code=ErrorCode.EMPTY_DOCUMENT,
        )
    if report.failed and len(report.failed) >= len(report.images_only):
        first = min(report.failed)
        return DamagedDocument(
            f"No page of the PDF could be read ({_pages(report.failed)} failed; page {first}: "
            f"{report.failed[first]}). Try saving (or printing) it as a new PDF.",
            code=ErrorCode.DAMAGED_PDF,
        )
    if report.images_only:
        if report.ocr_failed:
            first = min(report.ocr_failed)
            hint = f"OCR failed ({_pages(report.ocr_failed)}; page {first}: {report.ocr_failed[first]})."
        elif report.ocr_unavailable is not None:
            hint = f"OCR cannot run: {report.ocr_unavailable}."
        else:
            hint = report.ocr_hint(pages_total)
        return NoTextError(
            f"The PDF has no extractable text: its {_count(pages_total, 'page')} "
            f"{'is an image' if pages_total == 1 else 'are images'} (a scan?). {hint}",
            code=ErrorCode.NO_TEXT,
        )
    if report.blank == len(report.textless) == pages_total:
        return NoTextError(
            f"The PDF's {_count(pages_total, 'page')} {'is' if pages_total == 1 else 'are'} "
            "blank: there is nothing to summarize.",
            code=ErrorCode.EMPTY_DOCUMENT,
        )
    return NoTextError(
        f"The PDF has no extractable text on its {_count(pages_total, 'page')} (only drawings "
        "or outlined glyphs?). If it is a scan, run OCR on it first.",
        code=ErrorCode.NO_TEXT,
    )


# --------------------------------------------------------------------------
# helpers


def _report(on_progress: ProgressCallback | None, progress: IngestProgress) -> None:
    if on_progress is not None:
        on_progress(
            dataclasses.replace(progress, warnings=list(progress.warnings), skipped=list(progress.skipped))
        )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _were(pages: Iterable[int], one: str = "was", many: str = "were") -> str:
    return one if len(list(pages)) == 1 else many


def _pages(pages: Iterable[int]) -> str:
    """``"Page 3"``, ``"Pages 3-5, 9"`` (ranges collapsed; long lists shortened)."""
    numbers = sorted(set(pages))
    ranges: list[str] = []
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        ranges.append(str(start) if start == previous else f"{start}-{previous}")
        if number is not None:
            start = previous = number
    if len(ranges) > 8:
        ranges = [*ranges[:8], f"and {len(ranges) - 8} more ranges"]
    label = "Page" if len(numbers) == 1 else "Pages"
    return f"{label} {', '.join(ranges)}"
