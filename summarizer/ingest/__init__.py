"""Ingestion: turn an uploaded PDF, text or Markdown document into chunks.

The entry point is :func:`iter_chunks`, an async iterator that reads the
upload as it arrives and yields :class:`Chunk` values with exact character
offsets and page ranges. The modules, one idea each:

* :mod:`~summarizer.ingest.detect`: PDF, text or Markdown?
* :mod:`~summarizer.ingest.text`: incremental UTF-8 decoding and form-feed pages.
* :mod:`~summarizer.ingest.source`: where a PDF's bytes are read from (a store's file or a temporary one).
* :mod:`~summarizer.ingest.pdf`: page-by-page extraction in a worker process.
* :mod:`~summarizer.ingest.worker`: that worker, ``python -m summarizer.ingest.worker``.
* :mod:`~summarizer.ingest.ocr`: rendering, Tesseract and OCR cleanup for scanned pages.
* :mod:`~summarizer.ingest.clean`: running heads, page numbers, hyphenation.
* :mod:`~summarizer.ingest.chunking`: incremental chunking with offsets.
* :mod:`~summarizer.ingest.pipeline`: all of the above, as :func:`iter_chunks`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from summarizer._lazy import lazy_exports

if TYPE_CHECKING:
    from summarizer.ingest.chunking import IncrementalChunker
    from summarizer.ingest.detect import DocumentKind, detect_kind
    from summarizer.ingest.pipeline import ProgressCallback, iter_chunks, read_document
    from summarizer.ingest.types import Chunk, IngestOptions, IngestProgress, Page

__all__ = [
    "Chunk",
    "DocumentKind",
    "IncrementalChunker",
    "IngestOptions",
    "IngestProgress",
    "Page",
    "ProgressCallback",
    "detect_kind",
    "iter_chunks",
    "read_document",
]

# Names are imported on first use (PEP 562), so that the PDF worker process, which
# imports only ``summarizer.ingest.pdf``, does not load LangChain and stays small
# under its memory limit.
_HOME = {
    "IncrementalChunker": "chunking",
    "DocumentKind": "detect",
    "detect_kind": "detect",
    "ProgressCallback": "pipeline",
    "iter_chunks": "pipeline",
    "read_document": "pipeline",
    "Chunk": "types",
    "IngestOptions": "types",
    "IngestProgress": "types",
    "Page": "types",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOME, globals())
