"""ROUGE of the embedded extractive summarizer against lead-k and sumy's LSA, LexRank and TextRank.

Two reference sets (JSON lines):

* ``squality-dev.jsonl``: stories, each with four human summaries (``references``);
* ``qmsum-dev.jsonl``: meeting transcripts, each with one human summary of the
  whole meeting (``reference``).

**Ours** is the product, end to end: the document goes through the text
ingestion (title detection, chunking at 4,000/200 characters) and the
map-reduce pipeline (:func:`summarizer.summarize_chunks`) with the embedded
:class:`~summarizer.ExtractiveChatModel`, asked for as many words as the
longest reference. The **baselines** see the whole document split into
sentences by the same pysbd splitter (:func:`summarizer.models.ranking.split_sentences`):

* lead-k: the document's first sentences;
* sumy's ``LsaSummarizer``, ``LexRankSummarizer`` and ``TextRankSummarizer``
  (Snowball stemmer, sumy's English stop words, a plain word tokenizer: sumy's
  own tokenizer needs NLTK data that is not available offline); their best
  rated sentences are taken until the same word budget is full, in document order.

Every summary is **cut to the reference's length** in words before scoring
against that reference (so no system gains from being longer), one sentence per
line for ROUGE-Lsum. ROUGE-1, ROUGE-2 and ROUGE-Lsum F1 (``rouge_score``,
Porter stemming); per document the max and the mean over its references,
averaged over documents. The documents are also split in two halves by
position (even and odd lines: ``A`` was used for tuning, ``B`` only to check)
and each half is reported on its own.

Usage, from the repository root::

    python -m bench.quality [--quick] [--json]

:func:`run_benchmark` returns the numbers for :mod:`bench.report`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import statistics
import sys
import time
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as ``python bench/quality.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rouge_score import rouge_scorer

from summarizer.ingest.pipeline import iter_chunks
from summarizer.ingest.types import IngestOptions
from summarizer.models.extractive import ExtractiveChatModel
from summarizer.models.ranking import split_sentences
from summarizer.pipeline import PipelineConfig, summarize_chunks
from summarizer.protocol import ChunkSummary, Summary

__all__ = [
    "BASELINES",
    "DEFAULT_SETS",
    "METRICS",
    "format_table",
    "main",
    "run_benchmark",
    "run_set",
]

_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared/corpus/reference"
DEFAULT_SETS: dict[str, Path] = {
    "SQuALITY dev": _CORPUS / "squality-dev.jsonl",
    "QMSum dev": _CORPUS / "qmsum-dev.jsonl",
}
"""The reference sets, ``../shared/corpus/reference/`` next to the checkout."""

METRICS = ("rouge1", "rouge2", "rougeLsum")
"""The ROUGE variants reported (F1 of each)."""

OURS = "extractive (ours)"
BASELINES = ("lead-k", "sumy LSA", "sumy LexRank", "sumy TextRank")
"""Baseline systems, in table order."""

QUICK_DOCUMENTS = 8
"""Documents per set in ``--quick`` mode."""


@dataclass(frozen=True)
class _Doc:
    id: str
    document: str
    references: tuple[str, ...]


def _load(path: Path, limit: int | None = None) -> list[_Doc]:
    docs: list[_Doc] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            refs = row.get("references") or [row["reference"]]
            docs.append(_Doc(str(row.get("id", len(docs))), row["document"], tuple(refs)))
            if limit is not None and len(docs) >= limit:
                break
    return docs


# -- systems -----------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _sentences(document: str) -> tuple[str, ...]:
    return tuple(s.text for s in split_sentences(document))


def _fill(sentences: Sequence[str], order: Sequence[int], words: int) -> list[str]:
    """Sentences taken in ``order`` (best first) until ``words`` are reached, in document order."""
    chosen: list[int] = []
    total = 0
    for i in order:
        if total >= words:
            break
        chosen.append(i)
        total += len(sentences[i].split())
    return [sentences[i] for i in sorted(chosen)]


def lead(document: str, words: int) -> list[str]:
    """The lead-k baseline: the first sentences, ``words`` words or a little more."""
    sentences = _sentences(document)
    return _fill(sentences, range(len(sentences)), words)


class _Tokenizer:
    """sumy's tokenizer interface over pysbd sentences and a plain word pattern (no NLTK data)."""

    language = "english"
    _WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)?")

    def to_sentences(self, paragraph: str) -> tuple[str, ...]:
        return _sentences(paragraph)

    def to_words(self, sentence: str) -> list[str]:
        return self._WORD.findall(sentence)


def _sumy(kind: str) -> Callable[[str, int], list[str]]:
    """A sumy summarizer as ``(document, words) -> sentences``; ratings fill the budget."""
    from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence
    from sumy.nlp.stemmers import Stemmer
    from sumy.summarizers.lex_rank import LexRankSummarizer
    from sumy.summarizers.lsa import LsaSummarizer
    from sumy.summarizers.text_rank import TextRankSummarizer
    from sumy.utils import get_stop_words

    classes = {"lsa": LsaSummarizer, "lexrank": LexRankSummarizer, "textrank": TextRankSummarizer}
    tokenizer = _Tokenizer()

    def summarize(document: str, words: int) -> list[str]:
        sentences = _sentences(document)
        model = ObjectDocumentModel([Paragraph([Sentence(s, tokenizer) for s in sentences])])
        ratings: dict[Any, float] = {}
        base = classes[kind]

        class Capture(base):  # type: ignore[misc, valid-type]
            """Records every sentence's rating instead of picking a fixed count."""

            def _get_best_sentences(self, items: Any, count: Any, rating: Any, *args: Any, **kw: Any) -> Any:
                for item in items:
                    ratings[item] = float(
                        rating[item] if isinstance(rating, dict) else rating(item, *args, **kw)
                    )
                return ()

        summarizer = Capture(Stemmer("english"))
        summarizer.stop_words = get_stop_words("english")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # LSA warns about short documents
            summarizer(model, max(1, len(sentences)))
        order = sorted(range(len(sentences)), key=lambda i: -ratings.get(model.sentences[i], 0.0))
        return _fill(sentences, order, words)

    return summarize


async def _ours_async(document: str, words: int, per_chunk: list[float]) -> list[str]:
    async def upload() -> AsyncIterator[str]:
        yield document

    chunks = iter_chunks(upload(), filename="document.txt", media_type="text/plain", options=IngestOptions())
    config = PipelineConfig(summary_words=words, concurrency=1)
    text = ""
    async for event in summarize_chunks(chunks, ExtractiveChatModel(), config=config):
        if isinstance(event, ChunkSummary):
            per_chunk.append(event.elapsed_s)
        elif isinstance(event, Summary):
            text = event.text
    return [s.text for s in split_sentences(text)]


def ours(document: str, words: int, per_chunk: list[float] | None = None) -> list[str]:
    """The product: text ingestion and the map-reduce pipeline with the extractive model."""
    return asyncio.run(_ours_async(document, words, per_chunk if per_chunk is not None else []))


# -- scoring -------------------------------------------------------------------------------


def _cut(sentences: Sequence[str], words: int) -> str:
    """The summary cut to ``words`` words, one sentence per line."""
    lines: list[str] = []
    left = words
    for sentence in sentences:
        if left <= 0:
            break
        tokens = sentence.split()[:left]
        left -= len(tokens)
        lines.append(" ".join(tokens))
    return "\n".join(lines)


@lru_cache(maxsize=4096)
def _reference_lines(reference: str) -> str:
    return "\n".join(_sentences(reference))


def _score(
    scorer: rouge_scorer.RougeScorer, summary: Sequence[str], references: Sequence[str]
) -> dict[str, tuple[float, float]]:
    """Per metric, (max, mean) F1 over the references, the summary cut to each one's length."""
    per_ref = [scorer.score(_reference_lines(ref), _cut(summary, len(ref.split()))) for ref in references]
    return {
        m: (max(s[m].fmeasure for s in per_ref), statistics.fmean(s[m].fmeasure for s in per_ref))
        for m in METRICS
    }


def run_set(path: Path, *, limit: int | None = None) -> dict[str, Any]:
    """Score ours and the baselines on one reference set.

    Args:
        path: JSON lines with ``document`` and ``references`` (list) or ``reference``.
        limit: Only the first ``limit`` documents (``None``: all).

    Returns:
        ``{"path", "documents", "references", "words", "ms_per_chunk", "ms_per_document",
        "scores": {half: {system: {"max": {metric: F1}, "mean": {...}}}}}`` with
        halves ``"all"``, ``"A"`` (even lines) and ``"B"`` (odd lines).

    Raises:
        OSError: If the file cannot be read.
        ValueError: If it holds no documents.
    """
    docs = _load(path, limit)
    if not docs:
        raise ValueError(f"no documents in {path}")
    scorer = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
    systems: dict[str, Callable[[str, int], list[str]]] = {
        "lead-k": lead,
        "sumy LSA": _sumy("lsa"),
        "sumy LexRank": _sumy("lexrank"),
        "sumy TextRank": _sumy("textrank"),
    }
    rows: dict[str, list[dict[str, tuple[float, float]]]] = {OURS: [], **{name: [] for name in systems}}
    per_chunk: list[float] = []
    ours_seconds = 0.0
    words_out: list[int] = []
    for doc in docs:
        budget = max(len(ref.split()) for ref in doc.references)
        start = time.perf_counter()
        summary = ours(doc.document, budget, per_chunk)
        ours_seconds += time.perf_counter() - start
        words_out.append(sum(len(s.split()) for s in summary))
        rows[OURS].append(_score(scorer, summary, doc.references))
        for name, system in systems.items():
            rows[name].append(_score(scorer, system(doc.document, budget), doc.references))

    def average(items: list[dict[str, tuple[float, float]]]) -> dict[str, dict[str, float]]:
        return {
            "max": {m: statistics.fmean(r[m][0] for r in items) for m in METRICS},
            "mean": {m: statistics.fmean(r[m][1] for r in items) for m in METRICS},
        }

    halves = {"all": slice(None), "A": slice(0, None, 2), "B": slice(1, None, 2)}
    scores = {half: {name: average(items[sl]) for name, items in rows.items()} for half, sl in halves.items()}
    return {
        "path": str(path),
        "documents": len(docs),
        "references": len(docs[0].references),
        "words": statistics.fmean(words_out),
        "ms_per_chunk": 1000 * statistics.fmean(per_chunk) if per_chunk else math.nan,
        "ms_per_document": 1000 * ours_seconds / len(docs),
        "scores": scores,
    }


def run_benchmark(*, quick: bool = False, sets: dict[str, Path] | None = None) -> dict[str, Any]:
    """Run :func:`run_set` on every reference set.

    Args:
        quick: Only :data:`QUICK_DOCUMENTS` documents per set.
        sets: Name -> path; :data:`DEFAULT_SETS` if ``None``.

    Returns:
        ``{"sets": {name: run_set result}, "margins": {name: {metric: ours - best baseline}},
        "ahead": bool}`` (margins on the max over references, all documents, F1 x 100).
    """
    results = {
        name: run_set(path, limit=QUICK_DOCUMENTS if quick else None)
        for name, path in (sets or DEFAULT_SETS).items()
    }
    margins: dict[str, dict[str, float]] = {}
    ahead = True
    for name, result in results.items():
        margins[name] = {}
        for half in ("all", "A", "B"):
            table = result["scores"][half]
            for refs in ("max", "mean"):
                for m in METRICS:
                    best = max(table[b][refs][m] for b in BASELINES)
                    margin = 100 * (table[OURS][refs][m] - best)
                    if half == "all" and refs == "max":
                        margins[name][m] = margin
                    ahead = ahead and margin > 0
    return {"sets": results, "margins": margins, "ahead": ahead}


def format_table(result: dict[str, Any]) -> str:
    """Render :func:`run_benchmark`'s result as markdown tables, one per set.

    Args:
        result: The dict returned by :func:`run_benchmark`.

    Returns:
        The tables with captions, without a trailing newline.
    """
    parts: list[str] = []
    for name, data in result["sets"].items():
        refs = data["references"]
        which = ("max", "mean") if refs > 1 else ("max",)
        header = (
            "| system | half | "
            + " | ".join(f"{m} F1{' (' + w + ')' if refs > 1 else ''}" for w in which for m in METRICS)
            + " |"
        )
        rows = [header, "|---|---|" + "---:|" * (len(METRICS) * len(which))]
        for half in ("all", "A", "B"):
            table = data["scores"][half]
            for system in (OURS, *BASELINES):
                cells = " | ".join(f"{100 * table[system][w][m]:.2f}" for w in which for m in METRICS)
                label = f"**{system}**" if system == OURS else system
                rows.append(f"| {label} | {half} | {cells} |")
            margin_cells = []
            for w in which:
                for m in METRICS:
                    best = max(table[b][w][m] for b in BASELINES)
                    margin_cells.append(f"{100 * (table[OURS][w][m] - best):+.2f}")
            rows.append(f"| margin over the best baseline | {half} | {' | '.join(margin_cells)} |")
        caption = (
            f"**{name}**: {data['documents']} documents, {refs} reference(s) each; every summary cut to "
            f"each reference's length (ours asked for the longest: {data['words']:.0f} words on average); "
            f"F1 x 100{', max and mean over the references' if refs > 1 else ''}, mean over documents; "
            f"halves A (even lines, tuned on) and B (odd lines, held out). Ours end to end: "
            f"{data['ms_per_chunk']:.1f} ms per chunk (map call), "
            f"{data['ms_per_document']:.0f} ms per document."
        )
        parts.append(caption + "\n\n" + "\n".join(rows))
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: print the tables (or JSON) and return 0.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` if ``None``.

    Returns:
        The process exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK_DOCUMENTS} documents per set")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    result = run_benchmark(quick=args.quick)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
