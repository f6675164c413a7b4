"""Benchmark: chunk packing on the corpus PDFs (map calls are paid calls).

For every PDF of the corpus: our chunks (``read_document``, default options:
4,000 / 200 characters) against the ideal ``ceil(characters / (chunk_size -
chunk_overlap))`` of the cleaned text, and against the stock
``RecursiveCharacterTextSplitter`` (same sizes) on the raw page texts joined
with blank lines. Goals: ours / ideal <= 1.15, ours <= stock, every chunk <=
``chunk_size``. Also the map input: characters of all chunks (overlaps counted)
and tokens at 4 characters per token, as the ``document`` event reports them.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from summarizer.ingest import read_document
from summarizer.ingest.types import IngestOptions

from .common import CORPUS, Context

__all__ = ["GOAL", "run"]

GOAL = 1.15
"""Chunks / ideal, at most."""


def run(ctx: Context) -> dict[str, Any]:
    """Chunks, ideal and stock splitter counts for each corpus PDF."""
    import pypdf
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    options = IngestOptions()
    stock = RecursiveCharacterTextSplitter(chunk_size=options.chunk_size, chunk_overlap=options.chunk_overlap)
    rows: list[dict[str, Any]] = []
    for path in sorted((CORPUS / "pdf").glob("*.pdf")):
        ctx.log(f"packing: {path.name}")
        try:
            chunks = read_document(path, options=options)
        except Exception as exc:  # a document we refuse (e.g. no text) has no packing figure
            rows.append({"document": path.name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        raw = "\n\n".join(page.extract_text() for page in pypdf.PdfReader(path).pages)
        characters = chunks[-1].end if chunks else 0
        ideal = max(1, math.ceil(characters / (options.chunk_size - options.chunk_overlap)))
        chunk_chars = sum(len(c.text) for c in chunks)
        rows.append(
            {
                "document": path.name,
                "characters": characters,
                "chunks": len(chunks),
                "ideal": ideal,
                "stock_raw": len(stock.split_text(raw)),
                "ratio": len(chunks) / ideal,
                "longest": max(len(c.text) for c in chunks),
                "map_input_chars": chunk_chars,
                "map_input_tokens": -(-chunk_chars // 4),
            }
        )
    measured = [r for r in rows if "error" not in r]
    worst = max(r["ratio"] for r in measured)
    return {
        "chunk_size": options.chunk_size,
        "chunk_overlap": options.chunk_overlap,
        "rows": rows,
        "goal": GOAL,
        "worst_ratio": worst,
        "passed": worst <= GOAL
        and all(r["chunks"] <= r["stock_raw"] and r["longest"] <= options.chunk_size for r in measured),
    }
