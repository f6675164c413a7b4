"""ROUGE of the embedded extractive summarizer against the lead-k baseline.

Scores whole-document summaries of the SQuALITY dev stories (JSON lines with
``document`` and ``references``, four human summaries each) with ROUGE-1,
ROUGE-2 and ROUGE-Lsum F1 (``rouge_score``, Porter stemming). The baseline is
lead-k: the document's first k words, k being the length of our summary for the
same story, so both are compared at the same length. Each summary is scored
against each reference; per story the best (max) and the average (mean) over
the references are kept, then both are averaged over the stories. The max is
the headline number.

Usage, from the repository root::

    python -m bench.quality [PATH] [--words 250] [--json]
    python bench/quality.py

:func:`run_quality` returns the numbers for other benchmark harnesses.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as ``python bench/quality.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rouge_score import rouge_scorer

from summarizer.models.ranking import (
    DEFAULT_CONFIG,
    RankingConfig,
    Sentence,
    split_sentences,
    summarize_sentences,
)

__all__ = ["DEFAULT_PATH", "METRICS", "format_table", "lead_words", "main", "run_quality"]

DEFAULT_PATH = Path(__file__).resolve().parent.parent.parent / "shared/corpus/reference/squality-dev.jsonl"
"""``../shared/corpus/reference/squality-dev.jsonl`` next to the checkout."""

METRICS = ("rouge1", "rouge2", "rougeLsum")
"""The ROUGE variants reported (F1 of each)."""


@dataclass(frozen=True)
class _Story:
    id: str
    sentences: tuple[Sentence, ...]
    document: str
    references: tuple[str, ...]
    """Each reference with one sentence per line, as ROUGE-Lsum expects."""


def _lines(text: str) -> str:
    """Sentences of ``text`` one per line (ROUGE-Lsum splits summaries on newlines)."""
    return "\n".join(s.text for s in split_sentences(text))


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[_Story, ...]:
    stories: list[_Story] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            document = row["document"]
            stories.append(
                _Story(
                    id=str(row.get("id", len(stories))),
                    sentences=tuple(split_sentences(document)),
                    document=document,
                    references=tuple(_lines(r) for r in row["references"]),
                )
            )
    return tuple(stories)


def lead_words(document: str, words: int) -> str:
    """The lead-k baseline: the first ``words`` words of a document.

    Args:
        document: The full text.
        words: k, the number of words to keep.

    Returns:
        The first ``words`` white-space separated words, joined by single spaces.
    """
    return " ".join(document.split()[:words])


def _scores(
    scorer: rouge_scorer.RougeScorer, summary: str, references: Sequence[str]
) -> dict[str, tuple[float, float]]:
    """Per metric, (max, mean) F1 of ``summary`` over the references."""
    per_ref = [scorer.score(reference, summary) for reference in references]
    return {
        m: (max(s[m].fmeasure for s in per_ref), statistics.fmean(s[m].fmeasure for s in per_ref))
        for m in METRICS
    }


def run_quality(
    path: str | Path = DEFAULT_PATH,
    *,
    max_words: int = 250,
    config: RankingConfig = DEFAULT_CONFIG,
) -> dict[str, Any]:
    """Score extractive summaries and lead-k on a SQuALITY-style JSON-lines file.

    Args:
        path: JSON lines with ``document`` (str) and ``references`` (list of str).
        max_words: Word budget of each whole-document summary (words).
        config: Ranking configuration of the extractive summarizer.

    Returns:
        A dict with ``path``, ``stories`` (count), ``max_words``,
        ``summary_words`` (mean length of our summaries, words), ``seconds``
        (mean time to summarize one already split story, seconds), and
        ``extractive`` / ``lead`` (F1 per metric, max over references, mean
        over stories) and ``extractive_mean_ref`` / ``lead_mean_ref`` (the same
        with the mean over references).

    Raises:
        OSError: If the file cannot be read.
        ValueError: If a line is not JSON, or the file has no stories.
        KeyError: If a story lacks ``document`` or ``references``.
    """
    stories = _load(str(path))
    if not stories:
        raise ValueError(f"no stories in {path}")
    scorer = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
    ours: list[dict[str, tuple[float, float]]] = []
    lead: list[dict[str, tuple[float, float]]] = []
    lengths: list[int] = []
    elapsed = 0.0
    for story in stories:
        start = time.perf_counter()
        summary = summarize_sentences(story.sentences, max_words, config)
        elapsed += time.perf_counter() - start
        words = sum(len(s.split()) for s in summary)
        lengths.append(words)
        ours.append(_scores(scorer, "\n".join(summary), story.references))
        lead.append(_scores(scorer, _lines(lead_words(story.document, words)), story.references))

    def average(rows: list[dict[str, tuple[float, float]]], which: int) -> dict[str, float]:
        return {m: statistics.fmean(row[m][which] for row in rows) for m in METRICS}

    return {
        "path": str(path),
        "stories": len(stories),
        "max_words": max_words,
        "summary_words": statistics.fmean(lengths),
        "seconds": elapsed / len(stories),
        "extractive": average(ours, 0),
        "lead": average(lead, 0),
        "extractive_mean_ref": average(ours, 1),
        "lead_mean_ref": average(lead, 1),
    }


def format_table(result: dict[str, Any]) -> str:
    """Render :func:`run_quality`'s result as a markdown table.

    Args:
        result: The dict returned by :func:`run_quality`.

    Returns:
        The table, with a caption line, without a trailing newline.
    """
    header = "| system | refs | " + " | ".join(f"{m} F1" for m in METRICS) + " |"
    rule = "|---|---|" + "---:|" * len(METRICS)
    rows = [header, rule]
    for key, name, refs in (
        ("extractive", "extractive (ours)", "max"),
        ("lead", "lead-k", "max"),
        ("extractive_mean_ref", "extractive (ours)", "mean"),
        ("lead_mean_ref", "lead-k", "mean"),
    ):
        cells = " | ".join(f"{100 * result[key][m]:.2f}" for m in METRICS)
        rows.append(f"| {name} | {refs} | {cells} |")
    caption = (
        f"SQuALITY dev, {result['stories']} stories, budget {result['max_words']} words "
        f"(ours {result['summary_words']:.0f} words on average, lead-k cut to the same "
        f"length); F1 x 100, per story max or mean over the 4 references, mean over "
        f"stories; {1000 * result['seconds']:.0f} ms per story."
    )
    return caption + "\n\n" + "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: print the table (or JSON) and return 0.

    Args:
        argv: Arguments without the program name; ``sys.argv[1:]`` if ``None``.

    Returns:
        The process exit status.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", nargs="?", default=str(DEFAULT_PATH), help="JSON-lines file")
    parser.add_argument("--words", type=int, default=250, help="summary budget (words)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    result = run_quality(args.path, max_words=args.words)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
