"""Value types shared by the ingestion modules: pages, chunks, options, progress."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from summarizer.ingest.structure import SkippedRange
    from summarizer.protocol import StartOptions
    from summarizer.settings import Settings

__all__ = [
    "CHARS_PER_TOKEN",
    "Chunk",
    "IngestOptions",
    "IngestProgress",
    "OcrMode",
    "Page",
    "default_ocr_workers",
    "default_parse_workers",
]

CHARS_PER_TOKEN = 4
"""The project's token estimate: characters per token (no tokenizer)."""

OcrMode = Literal["auto", "off", "force"]
"""Which PDF pages are OCR'd: textless pages with images, none, or every page."""


def default_ocr_workers() -> int:
    """Pages OCR'd at once by default: ``min(2, os.cpu_count())`` (at least 1)."""
    return max(1, min(2, os.cpu_count() or 1))


def default_parse_workers() -> int:
    """PDF worker processes per document by default: ``min(2, os.cpu_count())`` (at least 1)."""
    return max(1, min(2, os.cpu_count() or 1))


@dataclass(frozen=True, slots=True)
class Page:
    """One page of extracted text.

    Attributes:
        number: 1-based page number (for text documents, form-feed separated pages).
        text: The page's text, as extracted (before or after cleaning).
    """

    number: int
    text: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of the cleaned document text handed to one map call.

    Attributes:
        index: 0-based position in the document.
        text: The chunk's text (at most ``chunk_size`` characters, usually).
        start: Offset of the first character in the cleaned document text (characters).
        end: Offset one past the last character (characters); ``end - start == len(text)``.
        first_page: 1-based page where the chunk starts.
        last_page: 1-based page where it ends (inclusive).
        title: The document's title (PDF metadata, first-page heading or file
            name), or ``None``; the same on every chunk of a document.
        ocr: ``True`` when some of its text was read by OCR.
    """

    index: int
    text: str
    start: int
    end: int
    first_page: int
    last_page: int
    title: str | None = None
    ocr: bool = False

    @property
    def pages(self) -> tuple[int, int]:
        """``(first_page, last_page)``."""
        return (self.first_page, self.last_page)


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """How to read and split one document.

    Attributes:
        chunk_size: Target chunk length in characters (default 4,000, about 1,000 tokens).
        chunk_overlap: Characters shared by neighbouring chunks (default 200).
        password: Password for an encrypted PDF, or ``None``.
        max_pages: PDF pages at most; more is a ``document_too_large`` error.
        max_text_chars: Characters of text at most; more is ``document_too_large``.
        parse_timeout_s: Wall-clock seconds allowed for parsing a PDF.
        parse_memory_bytes: Memory the PDF worker may add to its start-up size (bytes, address
            space; default 1 GiB). Each Tesseract process gets the same limit.
        include_back_matter: Summarize notes, references, acknowledgements and
            the index too (default ``False``: they are skipped and reported; see
            :mod:`summarizer.ingest.structure`).
        ocr: ``auto`` (default: OCR textless PDF pages that draw images), ``off``
            or ``force`` (OCR every page).
        ocr_languages: Tesseract language codes joined by ``+`` (default ``"eng"``).
        ocr_workers: Pages OCR'd at once (default ``min(2, os.cpu_count())``).
        ocr_page_timeout_s: Time limit of one page's OCR (seconds, default 60).
        parse_workers: PDF worker processes that read one big document's pages at
            once (default ``min(2, os.cpu_count())``; see
            :func:`summarizer.ingest.pdf.extract_pages`).
    """

    chunk_size: int = 4000
    chunk_overlap: int = 200
    password: str | None = None
    max_pages: int = 5000
    max_text_chars: int = 20_000_000
    parse_timeout_s: float = 600.0
    parse_memory_bytes: int = 1024 * 1024 * 1024
    include_back_matter: bool = False
    ocr: OcrMode = "auto"
    ocr_languages: str = "eng"
    ocr_workers: int = field(default_factory=default_ocr_workers)
    ocr_page_timeout_s: float = 60.0
    parse_workers: int = field(default_factory=default_parse_workers)

    @classmethod
    def from_settings(cls, settings: Settings, options: StartOptions) -> IngestOptions:
        """One job's options: the job's ``start.options`` over the server's settings.

        An unset ``chunk_overlap`` is the setting, capped at half the chunk size
        (so that a small ``chunk_size`` alone stays valid). The result is not
        validated: callers check ``chunk_overlap < chunk_size`` and say so in
        their own terms.
        """
        chunk_size = options.chunk_size or settings.chunk_size
        overlap = options.chunk_overlap
        if overlap is None:
            overlap = min(settings.chunk_overlap, chunk_size // 2)
        return cls(
            chunk_size=chunk_size,
            chunk_overlap=overlap,
            password=options.password,
            max_pages=settings.pdf_max_pages,
            max_text_chars=settings.max_text_chars,
            parse_timeout_s=settings.parse_timeout_s,
            parse_memory_bytes=settings.parse_memory_bytes,
            include_back_matter=bool(options.include_back_matter),
            ocr=options.ocr or settings.ocr,
            ocr_languages=options.ocr_languages or settings.ocr_languages,
            ocr_workers=settings.ocr_workers,
            ocr_page_timeout_s=settings.ocr_page_timeout_s,
            parse_workers=settings.parse_workers,
        )


@dataclass(slots=True)
class IngestProgress:
    """Mutable progress of one ingestion, passed to the ``on_progress`` callback.

    Attributes:
        pages_done: Pages extracted and cleaned so far.
        pages_total: Pages in the document once known (PDF: from the page tree), else ``None``.
        characters: Characters of cleaned text so far.
        chunks: Chunks yielded so far (each is one map call).
        chunk_characters: Characters of the chunks yielded so far (overlaps counted
            in both chunks: what the map calls read).
        finished: ``True`` once the whole document is parsed and every chunk yielded.
        warnings: Human-readable notes (e.g. "3 pages had no text").
        title: The document's title once known, else ``None``.
        skipped: Page ranges left out as front or back matter, in page order.
        ocr_done: PDF pages OCR'd so far.
        ocr_total: Pages to OCR (an estimate until the PDF is read; exact once
            ``finished``), or ``None`` when OCR does not run.
        ocr_pages: Numbers of the pages whose text was read by OCR, in order.
    """

    pages_done: int = 0
    pages_total: int | None = None
    characters: int = 0
    chunks: int = 0
    chunk_characters: int = 0
    finished: bool = False
    warnings: list[str] = field(default_factory=list)
    title: str | None = None
    skipped: list[SkippedRange] = field(default_factory=list)
    ocr_done: int = 0
    ocr_total: int | None = None
    ocr_pages: list[int] = field(default_factory=list)

    @property
    def input_tokens(self) -> int:
        """Document tokens the map calls read: :attr:`chunk_characters` / 4, rounded up."""
        return -(-self.chunk_characters // CHARS_PER_TOKEN)
