"""Benchmark: OCR of a scanned PDF (pages/s with 1 and 2 workers, CER, memory per worker).

The scan is made here, not stored: pages 1-4 of a corpus PDF that has a text
layer are rendered with PDFium at 200 dpi (8-bit grayscale) and put back into
a PDF with Pillow, as images only. :func:`summarizer.ingest.iter_chunks` then
reads it with ``ocr="auto"``; the text it recovers is compared with the
original text layer.

**CER** (character error rate) is the Levenshtein distance (insertions,
deletions, substitutions, each cost 1; :mod:`rapidfuzz`) between the two texts
after :func:`normalize` (NFKC, words hyphenated across lines joined, every
run of white space one space), divided by the reference's length. Layout
(line breaks, columns, spaces) is not what OCR is judged on, so white space is
normalized on both sides; case and punctuation count.

**Memory per worker**: peak resident set (``VmHWM``) of the worker process and
of the largest Tesseract process it started, sampled from ``/proc`` every 50 ms.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import threading
import time
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from .common import Context

__all__ = ["SOURCE", "cer", "ingest_text", "make_scan", "normalize", "ocr_document", "run", "text_layer"]

SOURCE = (
    Path(__file__).resolve().parent.parent.parent
    / "shared"
    / "corpus"
    / "pdf"
    / "squality-63833-jinx-ship.pdf"
)
"""The PDF whose first pages are scanned (a SQuALITY story, one column of prose)."""


def make_scan(source: Path, pages: range, *, dpi: int = 200) -> bytes:
    """A PDF of ``pages`` (0-based) of ``source`` as grayscale images, with no text layer.

    Args:
        source: A PDF with a text layer.
        pages: Page indices to scan.
        dpi: Rendering resolution (dots per inch).

    Returns:
        The scanned PDF (bytes).
    """
    import pypdfium2

    document = pypdfium2.PdfDocument(source)
    images = []
    try:
        for index in pages:
            page = document[index]
            images.append(page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L"))
            page.close()
    finally:
        document.close()
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=float(dpi))
    return out.getvalue()


def text_layer(source: Path, pages: range) -> str:
    """The reference text of ``pages`` (0-based): their text layer through the same pipeline.

    The pages are copied into a new PDF (pypdf) and ingested with ``ocr="off"``,
    so the reference went through the same cleaning (running heads, page numbers)
    as the OCR'd text.
    """
    from pypdf import PdfReader, PdfWriter

    reader = PdfReader(source)
    writer = PdfWriter()
    for index in pages:
        writer.add_page(reader.pages[index])
    out = io.BytesIO()
    writer.write(out)
    return ingest_text(out.getvalue(), ocr="off")["text"]


def ingest_text(data: bytes, **options: Any) -> dict[str, Any]:
    """Ingest a PDF (bytes) with :class:`~summarizer.ingest.IngestOptions` ``options``.

    Returns:
        ``text`` (the chunks joined, overlaps removed), ``chunks``, ``progress``
        (the last snapshot), ``first_chunk_s`` and ``seconds``.
    """
    from summarizer.ingest import IngestOptions, IngestProgress, iter_chunks

    async def upload() -> AsyncIterator[bytes]:
        yield data

    progress: list[IngestProgress] = []
    result: dict[str, Any] = {"first_chunk_s": None}

    async def consume() -> None:
        started = time.perf_counter()
        pieces: list[str] = []
        chunks = []
        end = 0
        async for chunk in iter_chunks(
            upload(),
            filename="document.pdf",
            media_type="application/pdf",
            options=IngestOptions(**options),
            on_progress=progress.append,
        ):
            if result["first_chunk_s"] is None:
                result["first_chunk_s"] = time.perf_counter() - started
            pieces.append(chunk.text[max(0, end - chunk.start) :])
            end = chunk.end
            chunks.append(chunk)
        result.update(text="".join(pieces), chunks=chunks, seconds=time.perf_counter() - started)

    asyncio.run(consume())
    result["progress"] = progress[-1]
    return result


_HYPHEN_BREAK = re.compile(r"(\w)-\s*\n\s*(\w)")
_WHITE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC, hyphenated line breaks joined, white space runs made one space, stripped."""
    text = unicodedata.normalize("NFKC", text)
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    return _WHITE.sub(" ", text).strip()


def cer(hypothesis: str, reference: str) -> float:
    """Character error rate of ``hypothesis`` against ``reference`` (both normalized).

    Returns:
        Levenshtein distance / reference length (0.0 is perfect; can exceed 1).
    """
    from rapidfuzz.distance import Levenshtein

    hyp, ref = normalize(hypothesis), normalize(reference)
    return Levenshtein.distance(hyp, ref) / max(1, len(ref))


class _PeakMemory:
    """Samples the peak RSS of the PDF workers and of their Tesseract processes."""

    def __init__(self) -> None:
        self.worker_bytes = 0
        self.tesseract_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        from summarizer.ingest.pdf import live_workers

        while not self._stop.wait(0.05):
            groups = set(live_workers())
            if not groups:
                continue
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                    if int(fields[2]) not in groups:
                        continue
                    status = (stat.parent / "status").read_text()
                    comm = (stat.parent / "comm").read_text().strip()
                except (OSError, ValueError, IndexError):
                    continue
                match = re.search(r"VmHWM:\s+(\d+) kB", status)
                if not match:
                    continue
                peak = int(match.group(1)) * 1024
                if comm.startswith("tesseract"):
                    self.tesseract_bytes = max(self.tesseract_bytes, peak)
                else:
                    self.worker_bytes = max(self.worker_bytes, peak)


def ocr_document(data: bytes, *, workers: int, languages: str = "eng") -> dict[str, Any]:
    """Ingest a scanned PDF with OCR; return its text, timings and memory.

    Returns:
        As :func:`ingest_text`, plus ``worker_rss_bytes`` and ``tesseract_rss_bytes``.
    """
    with _PeakMemory() as memory:
        result = ingest_text(data, ocr="auto", ocr_workers=workers, ocr_languages=languages)
    result.update(worker_rss_bytes=memory.worker_bytes, tesseract_rss_bytes=memory.tesseract_bytes)
    return result


def run(ctx: Context) -> dict[str, Any]:
    """OCR pages/s with 1 and 2 workers, CER and memory on a 200 dpi scan of :data:`SOURCE`."""
    pages = range(4) if ctx.quick else range(8)
    data = make_scan(SOURCE, pages, dpi=200)
    reference = text_layer(SOURCE, pages)
    runs: dict[str, Any] = {}
    for workers in (1, 2):
        result = ocr_document(data, workers=workers)
        runs[str(workers)] = {
            "seconds": result["seconds"],
            "pages_per_s": len(pages) / result["seconds"],
            "first_chunk_s": result["first_chunk_s"],
            "cer": cer(result["text"], reference),
            "worker_rss_bytes": result["worker_rss_bytes"],
            "tesseract_rss_bytes": result["tesseract_rss_bytes"],
        }
    return {
        "source": SOURCE.name,
        "pages": len(pages),
        "scan_dpi": 200,
        "scan_bytes": len(data),
        "cpus": os.cpu_count(),
        "runs": runs,
    }


def report(r: dict[str, Any]) -> tuple[str, list[list[str]]]:
    """The ``docs/benchmarks.md`` section and its goal row (see :mod:`bench.report`)."""
    rows = []
    for workers, run_ in sorted(r["runs"].items()):
        rows.append(
            f"| {workers} | {run_['seconds']:.1f} | {run_['pages_per_s']:.2f} | "
            f"{run_['first_chunk_s']:.1f} | "
            f"{100 * run_['cer']:.2f}% | {run_['worker_rss_bytes'] / 2**20:.0f} | "
            f"{run_['tesseract_rss_bytes'] / 2**20:.0f} |"
        )
    table = "\n".join(
        [
            "| OCR workers | wall (s) | pages/s | first chunk (s) | CER | worker RSS (MiB) "
            "| Tesseract RSS (MiB) |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    best = max(run_["pages_per_s"] for run_ in r["runs"].values())
    worst_cer = max(run_["cer"] for run_ in r["runs"].values())
    text = f"""## OCR of a scanned PDF

Pages 1–{r["pages"]} of `{r["source"]}` rendered at {r["scan_dpi"]} dpi (grayscale) into a PDF with
no text layer ({r["scan_bytes"]:,} bytes), read by `iter_chunks` with `ocr="auto"` (PDFium at 300 dpi,
Tesseract 5, one process per page) with 1 and 2 pages OCR'd at once, on {r["cpus"]} CPUs. CER:
Levenshtein distance / reference length against the same pages' text layer through the same
pipeline, white space normalized. RSS: peak resident set (`VmHWM`) of the worker and of the
largest Tesseract process.

{table}
"""
    goal = [
        "–",
        "OCR pages/s (best) · CER at 200 dpi",
        "CER ≤ 3%",
        f"{best:.2f} · {100 * worst_cer:.2f}%",
        "✅" if worst_cer <= 0.03 else "❌",
    ]
    return text, [goal]
