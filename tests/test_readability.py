"""Readability of the embedded model's final summaries of the corpus PDFs.

Each corpus PDF goes through the product (PDF worker, cleaning, structure,
chunking, map-reduce with :class:`~summarizer.ExtractiveChatModel`). The final
summary must have no sentence that

* opens with a dangling connective or pronoun ("But", "However", "He", ...)
  unless the sentence before it in the summary is the one before it in the
  document;
* is a bibliography, index, licence or caption line;
* holds a word split by a line-break hyphen ("Trace- Monkey").

The checks use their own patterns (not the ranker's filters), and a failure
lists the offending sentences.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from functools import cache
from pathlib import Path

import pytest

from summarizer.ingest.pipeline import iter_chunks
from summarizer.ingest.types import IngestOptions
from summarizer.models.extractive import ExtractiveChatModel
from summarizer.models.ranking import SPEAKER, split_sentences
from summarizer.pipeline import PipelineConfig, summarize_chunks
from summarizer.protocol import Summary

from .conftest import corpus_file

PDFS = (
    "freeculture.pdf",
    "tracemonkey.pdf",
    "Seige_of_Vicksburg_Sample_OCR.pdf",
    "GeoBase_NHNC1_Data_Model_UML_EN.pdf",
    "squality-63833-jinx-ship.pdf",
    "squality-63392-doorway-to-kal-jmar.pdf",
    "google-doc-document.pdf",
)

DANGLING = re.compile(
    r"(?:But|However|Indeed|Moreover|Furthermore|Also|And|Yet|Thus|Hence|Therefore|So|Instead|Then"
    r"|Nevertheless|Nonetheless|Meanwhile|Similarly|Likewise|Consequently|In fact|In addition"
    r"|For example|For instance|On the other hand|Of course|He|She|It|They|This|These|Those|That|His|Her"
    r"|Its|Their|Such)\b(?! (?:paper|article|book|chapter|section|report|study|document)\b)"
)
NOISE = {
    "bibliography": re.compile(
        r"\bProceedings\b|\bConference on\b|\bpages \d+[\u2013-]\d+|\bpp\. \d|\bet al\.,? (?:19|20)\d\d"
        r"|\bvol\. \d|\bibid\b|available at link #\d",
        re.IGNORECASE,
    ),
    "index": re.compile(r"\w, \d{1,4}(?:[\u2013-]\d{1,4})?n?, \d{1,4}"),
    "licence": re.compile(
        r"creative commons|licen[cs]ed under|all rights reserved|copyright \u00a9|\u00a9 ?\d{4}|\bISBN\b",
        re.IGNORECASE,
    ),
    "caption": re.compile(r"^(?:Figure|Fig\.|Table|Listing) \d+[.:]"),
}
CAPTION_LABEL_BEFORE = re.compile(r"\b(?:Figure|Fig\.|Table|Listing) \d+[a-z]?[.:] ")
"""A caption's label; a summary sentence that follows one in the document is the caption."""
SPLIT_WORD = re.compile(r"\b[^\W\d_]+- (?!and\b|or\b|nor\b|to\b|und\b|oder\b)[^\W\d_]+")


def _norm(sentence: str) -> str:
    return " ".join(sentence.split())


@cache
def summarize(name: str, summary_format: str | None = None) -> tuple[str, tuple[str, ...]]:
    """The final summary of a corpus PDF and the document's sentences (in order)."""
    data = Path(corpus_file("pdf", name)).read_bytes()

    async def run() -> tuple[str, list[str]]:
        async def upload():  # type: ignore[no-untyped-def]
            yield data

        texts: list[str] = []

        async def chunks():  # type: ignore[no-untyped-def]
            async for chunk in iter_chunks(
                upload(), filename=name, media_type="application/pdf", options=IngestOptions()
            ):
                texts.append(chunk.text)
                yield chunk

        config = PipelineConfig(summary_format=summary_format)  # type: ignore[arg-type]
        summary = ""
        async for event in summarize_chunks(chunks(), ExtractiveChatModel(), config=config):
            if isinstance(event, Summary):
                summary = event.text
        return summary, texts

    summary, texts = asyncio.run(run())
    sentences = [_norm(s.text) for text in texts for s in split_sentences(text)]
    return summary, tuple(sentences)


def offences(summary: str, document: tuple[str, ...]) -> list[str]:
    """Every offending sentence of a summary, with what is wrong."""
    before: dict[str, set[str]] = {}
    for previous, sentence in itertools.pairwise(document):
        before.setdefault(sentence, set()).add(previous)
    found: list[str] = []
    joined = " ".join(document)
    lines = [line.removeprefix("- ") for line in summary.split("\n")]
    sentences = [_norm(s.text) for line in lines for s in split_sentences(line)]
    for k, sentence in enumerate(sentences):
        text = SPEAKER.sub("", sentence).lstrip("\"'\u201c\u2018([")
        if DANGLING.match(text) and (k == 0 or sentences[k - 1] not in before.get(sentence, set())):
            found.append(f"dangling: {sentence}")
        for kind, pattern in NOISE.items():
            if pattern.search(sentence):
                found.append(f"{kind}: {sentence}")
        if re.search(CAPTION_LABEL_BEFORE.pattern + re.escape(sentence[:60]), joined):
            found.append(f"caption (its label split off): {sentence}")
        for match in SPLIT_WORD.finditer(sentence):
            found.append(f"split word {match.group(0)!r}: {sentence}")
    return found


def test_the_checks_catch_what_they_look_for() -> None:
    document = ("The VM records traces.", "But it stops at loops.", "However, nothing else.")
    summary = "The VM records traces. But it stops at loops. However, nothing else? Trace- Monkey runs."
    document += ("Figure 11.", "Fraction of bytecodes run on traces.")
    summary += " Fraction of bytecodes run on traces."
    found = offences(summary + " Dynamo. In Proceedings of PLDI, pages 1\u201312, 2000.", document)
    assert any(f.startswith("caption (its label split off): Fraction") for f in found)
    assert any(f.startswith("dangling: However") for f in found)
    assert not any(f.startswith("dangling: But") for f in found)  # its previous sentence is there
    assert any(f.startswith("split word") for f in found)
    assert any(f.startswith("bibliography") for f in found)


@pytest.mark.slow
@pytest.mark.parametrize("name", PDFS)
def test_final_summaries_read_cleanly(name: str) -> None:
    summary, document = summarize(name)
    assert summary.strip()
    problems = offences(summary, document)
    assert problems == [], f"{name}: {len(problems)} offending sentences:\n" + "\n".join(problems)


@pytest.mark.slow
def test_vicksburg_summary_names_vicksburg() -> None:
    summary, _ = summarize("Seige_of_Vicksburg_Sample_OCR.pdf")
    assert "Vicksburg" in summary


@pytest.mark.slow
def test_bullets_are_one_sentence_per_line() -> None:
    summary, _ = summarize("tracemonkey.pdf", "bullets")
    lines = summary.split("\n")
    assert len(lines) >= 5
    assert all(line.startswith("- ") for line in lines)
    assert all(len(split_sentences(line[2:])) == 1 for line in lines)


@pytest.mark.slow
def test_tracemonkey_summary_says_what_the_abstract_says_first() -> None:
    summary, _ = summarize("tracemonkey.pdf")
    opening = "We present an alternative compilation technique for dynamically-typed languages"
    assert opening in summary, summary
