"""Sentence splitting and LexRank sentence ranking for the extractive model.

Pure functions over strings and numpy arrays; no model files, no downloads.

The ranking is LexRank (G. Erkan and D. R. Radev, "LexRank: Graph-based
Lexical Centrality as Salience in Text Summarization", *Journal of Artificial
Intelligence Research* 22, 2004, pp. 457-479): sentences are TF-IDF vectors, an
edge joins two sentences whose cosine similarity reaches a threshold, and a
sentence's salience is its stationary probability under a random walk on that
graph (power iteration with damping 0.85). Plain LexRank likes filler (short
replies, headings, running heads, transcriber's notes), so the candidates are
filtered first and the centrality is mixed with a position prior, a length
prior and a dialogue penalty; sentences are then picked greedily with a
redundancy penalty in the style of MMR (J. Carbonell and J. Goldstein, "The Use
of MMR, Diversity-Based Reranking for Reordering Documents and Producing
Summaries", SIGIR 1998) until the word budget is full. The score also mixes in a
centroid term (the document weight of the sentence's terms), the title as a
query and a bonus for the first sentence of a section; the selection favours
sentences that add the text's named entities and numbers, never takes a
sentence that opens with a connective or a pronoun without the sentence before
it, and skips captions, bibliography, index and licence lines. Prose and
transcripts are scored differently. In prose, sentences dense in the text's
recurring names (a story's characters) score higher, and so do sentences made of
the text's frequent words (SumBasic's average word probability) and full clauses
(a high share of function words); first and second person pronouns inside
quotation marks (characters talking) score lower, since a summary retells
dialogue in the third person; the opening of the document gets a strong,
short position prior (a paper's abstract, a book's thesis). Transcripts keep
the plain scores. The weights were tuned on half of the SQuALITY and QMSum dev
sets and checked on the other half (see ``bench/quality.py``): frequency,
function words and quoted pronouns were chosen by a per-sentence regression of
each sentence's unigram precision against the human summaries on both halves.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import pysbd

__all__ = [
    "DEFAULT_CONFIG",
    "MAX_PIECE_CHARS",
    "SPEAKER",
    "TRANSCRIPT_CONFIG",
    "TRANSCRIPT_SHARE",
    "RankingConfig",
    "Sentence",
    "is_dangling",
    "is_noise",
    "is_run_in_heading",
    "is_transcript",
    "lexrank",
    "rank_sentences",
    "split_paragraphs",
    "split_sentences",
    "stem",
    "summarize_sentences",
    "summarize_text",
    "tokenize",
]

FloatArray = npt.NDArray[np.float64]

MAX_PIECE_CHARS = 2000
"""Longest string handed to the sentence segmenter at once (characters)."""

_BATCH_CHARS = 1500
"""Pieces are batched, newline-separated, into segmenter calls of about this size."""


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence of the input, in document order.

    Attributes:
        text: The sentence with its inner white space collapsed to single spaces.
        index: 0-based position among all sentences of the text.
        paragraph: 0-based index of the paragraph (or line block) it came from.
    """

    text: str
    index: int
    paragraph: int

    @property
    def words(self) -> int:
        """Length in words (white-space separated tokens)."""
        return len(self.text.split())


@dataclass(frozen=True, slots=True)
class RankingConfig:
    """Weights and limits of the sentence scorer.

    Attributes:
        threshold: Cosine similarity at or above which two sentences are linked.
        damping: LexRank damping factor (probability of following an edge).
        continuous: Weight edges by their similarity (continuous LexRank)
            instead of 1.
        w_centrality: Weight of the LexRank score (scaled to a maximum of 1).
        w_position: Weight of the position prior ``exp(-position / position_decay)``,
            position being the fraction of the text before the sentence.
        position_decay: Decay of the position prior (fraction of the text).
        w_length: Weight of the length prior (1 from ``ideal_words`` up to
            ``long_words``, falling off on both sides).
        ideal_words: Length from which a sentence gets the full length prior (words).
        long_words: Length above which the length prior falls off (words).
        min_sentence_words: Shorter sentences are not candidates (words).
        max_sentence_words: Longer sentences are not candidates (words).
        dialogue_penalty: Subtracted, times the fraction of characters inside
            quotation marks.
        redundancy: MMR penalty weight on the similarity to the closest sentence
            already picked.
        max_overlap: A sentence at least this similar to one already picked is
            skipped.
        pool: Candidates considered by the greedy selection, per sentence of
            the expected summary.
        block_size: Sentences per LexRank graph; longer texts are ranked in
            consecutive blocks so that time and memory stay linear.
        w_centroid: Weight of the centroid score (the summed document weight
            of the sentence's distinct terms, over the square root of its
            length; scaled to a maximum of 1).
        w_title: Weight of the title query: the fraction of the title's
            content words the sentence contains.
        w_section: Bonus of the first sentence after a heading.
        w_entity: Weight, in the greedy selection, of the named entities and
            numbers of the text that a sentence adds to those already picked.
        min_content_words: Sentences with fewer content words (not stopwords,
            fillers or the speaker's label) are not candidates.
        w_names: Weight of the name density: the fraction of the sentence's
            words that are the text's recurring names (capitalised words seen
            inside sentences at least ``names_min`` times), scaled to a maximum
            of 1. Summaries of stories are told through their characters.
        names_min: Occurrences (inside sentences) that make a capitalised word a
            recurring name.
        person_penalty: Subtracted, times the fraction of the sentence's words
            that are first or second person pronouns ("I", "we", "you", "our"):
            a summary reports in the third person what speakers said.
        w_frequency: Weight of the term frequency: the mean, over the
            sentence's content words, of the log of their count in the text,
            scaled to a maximum of 1 (SumBasic's average word probability: A.
            Nenkova and L. Vanderwende, "The Impact of Frequency on
            Summarization", Microsoft Research MSR-TR-2005-101). A sentence
            made of the text's frequent words is about its main subject.
        quoted_person_penalty: Subtracted, times the share of the sentence's
            words that are first or second person pronouns inside quotation
            marks: characters talking to each other, which a summary retells in
            the third person. The author's "we" of a paper is not quoted.
        w_function: Weight of the share of the sentence's words that are
            function words (stopwords): full clauses that tell what happens
            score above lists of nouns, headings and exclamations.
    """

    threshold: float = 0.1
    damping: float = 0.85
    continuous: bool = True
    w_centrality: float = 1.0
    w_position: float = 0.5
    position_decay: float = 0.1
    w_length: float = 0.5
    ideal_words: int = 12
    long_words: int = 50
    min_sentence_words: int = 5
    max_sentence_words: int = 70
    dialogue_penalty: float = 0.0
    redundancy: float = 1.0
    max_overlap: float = 0.6
    pool: int = 8
    block_size: int = 600
    w_centroid: float = 0.5
    w_title: float = 0.6
    w_section: float = 0.1
    w_entity: float = 1.0
    min_content_words: int = 4
    w_names: float = 0.3
    names_min: int = 3
    person_penalty: float = 0.0
    quoted_person_penalty: float = 4.0
    w_frequency: float = 1.0
    w_function: float = 2.0


DEFAULT_CONFIG = RankingConfig()
"""The tuned configuration for prose (stories, articles, papers, books)."""

TRANSCRIPT_CONFIG = RankingConfig(
    w_position=0.2,
    position_decay=0.4,
    w_names=0.0,
    w_entity=0.2,
    quoted_person_penalty=0.0,
    w_frequency=0.0,
    w_function=0.0,
)
"""The configuration for transcripts (see :func:`is_transcript`): the names in a
meeting are its speakers, not its content, so the name density is off; the opening
(the agenda) keeps a milder, longer position prior than prose; the entity weight stays at
0.2; the frequency and function-word terms are off (at 1.0 each, alone or together, they
put QMSum dev 0.5 to 0.7 ROUGE below the best baseline on some figure: a meeting's
frequent words and full clauses are its chatter), and a transcript has no quotation
marks for the quoted-pronoun term. ``person_penalty`` is off:
at 1.25 it raised QMSum dev ROUGE-1 and ROUGE-Lsum on both halves (+1.5 and +1.3 over
the best baseline) but cost ROUGE-2 against lead-k on the first 8 meetings (see
``tests/test_ranking.py``), and 0.5 and 0.75 lost on one half: too unstable to ship."""

TRANSCRIPT_SHARE = 0.1
"""Share of sentences opening with a speaker's label that makes a text a transcript."""

# -- splitting ------------------------------------------------------------------------

_SEGMENTER = pysbd.Segmenter(language="en", clean=False)
_ABBREVIATIONS = frozenset(
    a.lower() for a in _SEGMENTER.language_module.Abbreviation.ABBREVIATIONS
) | frozenset(a.lower() for a in _SEGMENTER.language_module.Abbreviation.PREPOSITIVE_ABBREVIATIONS)

_BLANK_LINE = re.compile(r"\n[^\S\n]*\n|\f")
_BLOCK_START = re.compile(
    r"(?:#{1,6}\s|[-*+\u2022]\s|\d{1,3}[.)]\s|>|[A-Z][\w.'\u2019-]*(?: [A-Z0-9][\w.'\u2019-]*){0,3}: )"
)
_MARKUP = re.compile(r" ?\{[a-z_]{2,20}\}")
"""Transcript markup such as ``{vocalsound}`` or ``{disfmarker}``."""
SPEAKER = re.compile(r"^[A-Z][\w.'\u2019-]*(?: [A-Z0-9][\w.'\u2019-]*){0,3}: ")
"""A transcript's speaker label at the start of a turn (``"Project Manager: "``)."""
_HEADING = re.compile(r"#{1,6}\s")
_HYPHEN_END = re.compile(r"[a-z]-$")
_SOFT_END = re.compile(
    r"[,;\-\u2013\u2014\u201c(]$|(?<![\w.])(?:a|an|the|of|for|to|in|on|at|by|with|from|into|and|or|nor|but"
    r"|that|which|whose|than|as|if|is|are|was|were|be|been|has|have|had|will|would|can|could|not|its|their"
    r"|his|her|our|your|my|this|these|those|very|such)$"
)
"""How a wrapped line ends: a comma, dash or opening quote, or a lowercase function word
(no heading or paragraph ends with "for" or "the")."""
_WS = re.compile(r"\s+")
# A lowercase word (not an abbreviation), sentence punctuation, maybe a closing
# quote, space, maybe an opening quote and a capital: outside quotes and brackets
# pysbd always splits there, so the text can be cut before calling it.
_SAFE_BREAK = re.compile(
    r"(?<![\w.'\u2019-])([A-Za-z][a-z]+(?:['\u2019][a-z]+)?)[.!?][\"\u201d]?(\s+)(?=[\"\u201c]?[A-Z])"
)
_QUOTE_BREAK = re.compile(r"(?<=[.!?\u2026][\"\u201d])\s+(?=[\"\u201c][A-Z])")
"""Between a quotation closed after sentence punctuation and one that opens with a capital."""
_FOOTNOTE_MARK = re.compile(r"^\d{1,3} (?=[\"\u201c]?[A-Z][a-z])")
"""A footnote number left at the start of the next sentence (``"... a CD.\u201d 16 These stores"``)."""
_TRAILING = " \t.!?\u2026\"'\u201d\u2019)]"
_NEEDS_SEGMENTER = re.compile(r"[.!?\u2026()]")
_QUOTE_SPAN = re.compile(r"\"[^\"]*?([.!?\u2026])?\"|\u201c[^\u201d]*?([.!?\u2026])?\u201d")


def _ends_line_block(previous: str, line: str, width: int) -> bool:
    """Whether ``previous`` is a line of its own, not wrapped into ``line``.

    Markdown headings and list items stand alone, and so does a short line
    followed by a capital, unless it ends in a comma, semicolon or dash: PDF
    headings and running heads are short, while wrapped lines fill most of the
    block's ``width`` (characters), and a short line ending a sentence ends a
    paragraph anyway.
    """
    if _BLOCK_START.match(line) or _HEADING.match(previous):
        return True
    return (
        width >= 40 and len(previous) < 0.6 * width and not _SOFT_END.search(previous) and line[:1].isupper()
    )


def split_paragraphs(text: str) -> list[str]:
    """Split text into paragraphs, joining lines wrapped inside a paragraph.

    A paragraph is the text between blank lines (or form feeds, which PDF text
    uses between pages). Its lines are joined with single spaces, so sentences
    that a PDF wrapped mid-way are whole again; a word hyphenated at a line end
    is rejoined. Transcript markup (``{vocalsound}``) is dropped. Lines that
    stand alone start a new paragraph: Markdown headings (a paragraph of their
    own), list items and quotes, a transcript's turns (``"Speaker: ..."``), and short lines
    followed by a capital, such as a PDF's headings and running heads (short:
    under 60 % of the block's longest line).

    Args:
        text: Any text; ``\\r\\n`` and ``\\r`` line ends are accepted.

    Returns:
        The non-empty paragraphs, white space collapsed, in document order.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "{" in text:
        text = _MARKUP.sub("", text)
    paragraphs: list[str] = []
    for block in _BLANK_LINE.split(text):
        lines = [line.strip() for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        width = max(map(len, lines))
        current = lines[0]
        for previous, line in itertools.pairwise(lines):
            if _ends_line_block(previous, line, width):
                paragraphs.append(current)
                current = line
            elif _HYPHEN_END.search(current) and line[0].islower():
                current = current[:-1] + line
            else:
                current = f"{current} {line}"
        paragraphs.append(current)
    return [_WS.sub(" ", p) for p in paragraphs]


def _cap_length(paragraph: str, limit: int = MAX_PIECE_CHARS) -> list[str]:
    """Cut a paragraph into pieces of at most ``limit`` characters.

    Cuts after the last sentence-like ending (``". "``) before the limit, else
    at the last space, else hard at the limit.
    """
    pieces: list[str] = []
    while len(paragraph) > limit:
        window = paragraph[:limit]
        cut = max(window.rfind(". "), window.rfind("? "), window.rfind("! "))
        cut = cut + 1 if cut > limit // 2 else window.rfind(" ")
        if cut <= 0:
            cut = limit
        pieces.append(paragraph[:cut].strip())
        paragraph = paragraph[cut:].strip()
    if paragraph:
        pieces.append(paragraph)
    return pieces


def _quotes_balanced(prefix: str) -> bool:
    return (
        prefix.count('"') % 2 == 0
        and prefix.count("\u201c") == prefix.count("\u201d")
        and prefix.count("(") == prefix.count(")")
        and prefix.count("[") == prefix.count("]")
    )


def _presplit(piece: str) -> list[str]:
    """Cut a piece at boundaries pysbd certainly splits at, and between two quoted lines.

    The first is a speed-up only. The second is a fix: pysbd keeps a quotation
    that ends in an ellipsis (``"I thought...."``) and the next one
    (``"Never thought of that," mused Cob.``) together, so two lines of
    dialogue, which a summary may take apart, would come out as one sentence.
    """
    parts: list[str] = []
    start = 0
    breaks: list[tuple[int, int, str]] = [
        (m.start(2), m.end(), m.group(1)) for m in _SAFE_BREAK.finditer(piece)
    ]
    breaks += [(m.start(), m.end(), "") for m in _QUOTE_BREAK.finditer(piece)]
    breaks.sort()
    for end, resume, word in breaks:
        if end < start or word.lower() in _ABBREVIATIONS:
            continue
        if not _quotes_balanced(piece[start:end]):
            continue
        parts.append(piece[start:end])
        start = resume
    parts.append(piece[start:])
    return [p.strip() for p in parts if p.strip()]


_NUMBER_END = re.compile(r"(?<=[a-z] )\d{1,3}[.!?] (?=[A-Z])")
"""A number ending a sentence inside a segmented sentence ("lines 4 and 5. After ...")."""


def _segment_batch(pieces: Sequence[str]) -> list[list[str]]:
    """Segment several pieces with one pysbd call; one sentence list per piece.

    The pieces are joined with newlines, at which pysbd always splits. The
    segmenter's processor is called directly: ``Segmenter.segment`` with
    ``clean=False`` recovers character spans by compiling one regular expression
    per sentence, which costs more than the segmentation itself. The processor
    returns the sentences stripped and otherwise unchanged. In a batch, pysbd
    reads numbers that end sentences in different pieces ("... line 2.",
    "... lines 4 and 5.") as the items of a numbered list and stops splitting
    after them; a sentence that still holds such a number is segmented again on
    its own.
    """
    joined = "\n".join(pieces)
    bounds: list[int] = []
    offset = 0
    for piece in pieces:
        offset += len(piece) + 1
        bounds.append(offset)
    result: list[list[str]] = [[] for _ in pieces]
    cursor = 0
    which = 0
    for raw in _SEGMENTER.processor(joined).process() or []:
        sentence = raw.strip()
        if not sentence:
            continue
        found = joined.find(sentence, cursor)
        if found >= 0:
            cursor = found + len(sentence)
            while which < len(bounds) - 1 and found >= bounds[which]:
                which += 1
        if len(pieces) > 1 and _NUMBER_END.search(sentence):
            alone = _SEGMENTER.processor(sentence).process() or []
            result[which].extend(part.strip() for part in alone if part.strip())
        else:
            result[which].append(sentence)
    return result


def _single_sentence(part: str) -> bool:
    """Whether pysbd would keep ``part`` whole (then it need not be called).

    True if no sentence punctuation is left once the end and the insides of
    double quotes are ignored (pysbd does not split inside quotes), unless a
    quote ending in ``.``, ``!`` or ``?`` is followed by a capital (it splits
    after such a quote).
    """
    if '"' in part or "\u201c" in part:
        for match in _QUOTE_SPAN.finditer(part):
            if match.group(1) and part[match.end() : match.end() + 2][-1:].isupper():
                return False
        part = _QUOTE_SPAN.sub("Q", part)
    return _NEEDS_SEGMENTER.search(part.rstrip(_TRAILING)) is None


def split_sentences(text: str) -> list[Sentence]:
    """Split text into sentences with pysbd, paragraph by paragraph.

    pysbd (``Segmenter(language="en", clean=False)``) is accurate but slow on
    long strings (its time grows faster than the length), so the text is first
    cut into paragraphs (see :func:`split_paragraphs`), paragraphs longer than
    :data:`MAX_PIECE_CHARS` characters are cut at a sentence end or a space, and
    pieces are cut further where pysbd would certainly split (``.``, ``!`` or
    ``?`` after a word that is not an abbreviation, before a capital, outside
    quotes and brackets). Parts without inner sentence punctuation are
    sentences as they are; the rest go to pysbd in batches. A footnote number
    left at the start of a sentence inside a paragraph (``"16 These stores"``)
    is dropped. Thread-safe.

    Args:
        text: Any text.

    Returns:
        The sentences in document order, white space collapsed; empty if the
        text is blank.
    """
    parts: list[tuple[int, str]] = []
    for number, paragraph in enumerate(split_paragraphs(text)):
        for piece in _cap_length(paragraph):
            parts.extend((number, part) for part in _presplit(piece))

    by_part: list[list[str]] = [[] for _ in parts]
    pending: list[int] = []
    pending_chars = 0

    def flush() -> None:
        nonlocal pending_chars
        if pending:
            for slot, sentences in zip(pending, _segment_batch([parts[i][1] for i in pending]), strict=True):
                by_part[slot] = sentences
            pending.clear()
            pending_chars = 0

    for i, (_, part) in enumerate(parts):
        if _single_sentence(part):
            by_part[i] = [part]
            continue
        pending.append(i)
        pending_chars += len(part) + 1
        if pending_chars >= _BATCH_CHARS:
            flush()
    flush()

    sentences: list[Sentence] = []
    for (number, _), texts in zip(parts, by_part, strict=True):
        for sentence in texts:
            if sentences and sentences[-1].paragraph == number:
                if _CAPTION_LABEL.fullmatch(sentences[-1].text):
                    # "Figure 11." and its caption are one sentence (a caption, see is_noise).
                    sentences[-1] = Sentence(f"{sentences[-1].text} {sentence}", len(sentences) - 1, number)
                    continue
                sentence = _FOOTNOTE_MARK.sub("", sentence, count=1) or sentence
            sentences.append(Sentence(sentence, len(sentences), number))
    return sentences


_CAPTION_LABEL = re.compile(
    r"(?:figure|fig\.|table|listing|algorithm|chart|plate|exhibit)\s*\d+[a-z]?\s*[.:\u2014-]?", re.IGNORECASE
)
"""A sentence that is only a caption's label ("Figure 11.", split off by pysbd)."""


# -- tokens and vectors -------------------------------------------------------------

_STOPWORDS = frozenset(
    (
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "aren",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "cannot",
        "could",
        "couldn",
        "did",
        "didn",
        "do",
        "does",
        "doesn",
        "doing",
        "don",
        "down",
        "during",
        "each",
        "even",
        "ever",
        "few",
        "for",
        "from",
        "further",
        "get",
        "got",
        "had",
        "hadn",
        "has",
        "hasn",
        "have",
        "haven",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "however",
        "i",
        "if",
        "in",
        "into",
        "is",
        "isn",
        "it",
        "its",
        "itself",
        "just",
        "let",
        "ll",
        "me",
        "might",
        "more",
        "most",
        "much",
        "must",
        "mustn",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "one",
        "only",
        "or",
        "other",
        "ought",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "re",
        "said",
        "same",
        "say",
        "says",
        "shall",
        "shan",
        "she",
        "should",
        "shouldn",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "upon",
        "us",
        "ve",
        "very",
        "was",
        "wasn",
        "we",
        "were",
        "weren",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "won",
        "would",
        "wouldn",
        "yes",
        "yet",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    )
)
_FILLERS = frozenset(
    [
        "uh",
        "um",
        "umm",
        "mm",
        "mmm",
        "hmm",
        "mhm",
        "huh",
        "yeah",
        "yep",
        "yup",
        "nope",
        "okay",
        "ok",
        "oh",
        "ah",
        "eh",
        "like",
        "well",
        "right",
        "know",
        "think",
        "mean",
        "actually",
        "really",
        "kind",
        "sort",
        "gonna",
        "wanna",
        "guess",
        "maybe",
        "anyway",
        "basically",
    ]
)
"""Spoken fillers: no content in a transcript (and little in prose)."""
_STOPWORDS = _STOPWORDS | _FILLERS
_TOKEN = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Strip common English suffixes (a light stemmer, not Porter's).

    Handles plurals (``-s``, ``-es``, ``-ies``), ``-ing``, ``-ed`` and ``-ly``,
    keeping stems of at least three letters and undoubling a final consonant
    (``running`` -> ``run``).

    Args:
        word: A lowercase word.

    Returns:
        The stem.
    """
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]
            break
    return word


@lru_cache(maxsize=16384)
def tokenize(text: str) -> tuple[str, ...]:
    """Content-word stems of a sentence: lowercase, no stopwords, stemmed.

    Cached: the reduce step sees again the sentences the map step picked.

    Args:
        text: A sentence.

    Returns:
        Stems of the alphanumeric tokens of two or more characters that are
        not stopwords, in order, repeats kept.
    """
    return tuple(
        stem(token) for token in _TOKEN.findall(text.lower()) if len(token) > 1 and token not in _STOPWORDS
    )


def _tfidf(token_lists: Sequence[Sequence[str]], idf: dict[str, float]) -> FloatArray:
    """Row-normalised TF-IDF matrix of some sentences (one row each).

    Only terms shared by two or more of these sentences get a column (the others
    cannot make two sentences similar), but every term counts in the row norms,
    so the products of rows are exact cosine similarities.
    """
    counts = [Counter(tokens) for tokens in token_lists]
    df = Counter(term for c in counts for term in c)
    vocabulary = {term: col for col, term in enumerate(t for t, n in df.items() if n > 1)}
    matrix = np.zeros((len(counts), max(len(vocabulary), 1)), dtype=np.float64)
    for row, c in enumerate(counts):
        norm = 0.0
        for term, tf in c.items():
            weight = tf * idf.get(term, 1.0)
            norm += weight * weight
            col = vocabulary.get(term)
            if col is not None:
                matrix[row, col] = weight
        if norm > 0.0:
            matrix[row] /= math.sqrt(norm)
    return matrix


def _idf(token_lists: Sequence[Sequence[str]]) -> dict[str, float]:
    """Inverse sentence frequency ``log(N / df)`` of each term."""
    df = Counter(term for tokens in token_lists for term in set(tokens))
    n = max(len(token_lists), 1)
    return {term: math.log(n / count) + 1e-3 for term, count in df.items()}


def lexrank(
    similarity: FloatArray,
    *,
    threshold: float = 0.1,
    damping: float = 0.85,
    continuous: bool = True,
    tolerance: float = 1e-6,
    max_iterations: int = 100,
) -> FloatArray:
    """LexRank scores of sentences from their similarity matrix.

    Erkan & Radev (2004): link sentences whose cosine similarity reaches
    ``threshold`` (self-links excluded), make the links a row-stochastic
    transition matrix, and find the stationary distribution of the random walk
    that follows a link with probability ``damping`` and jumps to a random
    sentence otherwise, by power iteration. Sentences without links jump
    uniformly.

    Args:
        similarity: Square symmetric matrix of cosine similarities.
        threshold: Lowest similarity that makes a link.
        damping: Probability of following a link (0.85 in the paper).
        continuous: Weight links by similarity ("continuous LexRank") instead of 1.
        tolerance: Stop when the L1 change of the scores falls below this.
        max_iterations: Stop after this many iterations in any case.

    Returns:
        One score per sentence; the scores sum to 1.

    Raises:
        ValueError: If ``similarity`` is not a square matrix.
    """
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f"similarity must be a square matrix, got shape {similarity.shape}")
    n = similarity.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    links = np.where(similarity >= threshold, similarity if continuous else 1.0, 0.0)
    np.fill_diagonal(links, 0.0)
    degree = links.sum(axis=1)
    isolated = degree == 0.0
    links[isolated] = 1.0 / n
    degree[isolated] = 1.0
    transition = links / degree[:, None]
    scores = np.full(n, 1.0 / n)
    for _ in range(max_iterations):
        updated = (1.0 - damping) / n + damping * (transition.T @ scores)
        done = float(np.abs(updated - scores).sum()) < tolerance
        scores = updated
        if done:
            break
    return np.asarray(scores / scores.sum(), dtype=np.float64)


# -- filters and features --------------------------------------------------------------

_BOILERPLATE = re.compile(
    r"transcriber['\u2019]?s note|\betext\b|project gutenberg|all rights reserved|\bisbn\b"
    r"|copyright\s*(?:\u00a9|\(c\)|\d{4}|on this publication)|\u00a9|https?://|www\.|\bdoi:"
    r"|\w@\w+\.\w",
    re.IGNORECASE,
)
_BYLINE = re.compile(
    r"(?:By|BY|Written by|Illustrated by) (?:(?:[A-Z][\w.'\u2019-]*|and|de|van|von)[,.]? ?){1,6}"
)
_CITATION = re.compile(
    r"available at (?:link )?#?\d+|\bibid\b|\bop\. cit\.|\bPress,? \(?\d{4}|\bvol\. \d+"
    r"|^See\b.*\b(?:1[89]|20)\d\d\b|^[\w'\u2019-]+[,.]?[\u201d\"] "
    r"|\b\d{1,2} (?:January|February|March|April|May|June|July|August|September|October|November"
    r"|December) (?:1[89]|20)\d\d\.$",
    re.IGNORECASE,
)
"""Bibliography and footnote lines: "See X, 2003.", "... available at link #14.", a
fragment that starts inside a quoted title ("Slide," New York Times, ...)."""
_INDEX_TERMS = re.compile(
    r"(?:Keywords|Key words|Index Terms|General Terms|Categories and Subject Descriptors)\b"
)
"""A paper's metadata lines, which read as a sentence once the line breaks are gone."""
_ENDS_SENTENCE = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]*$")
_QUOTED = re.compile(r"\"[^\"]*\"?|\u201c[^\u201d]*\u201d?")
_DIGITS = re.compile(r"\d+")


def _letter_ratio(text: str) -> float:
    """Letters over non-space characters (the text's white space is single spaces)."""
    visible = len(text) - text.count(" ")
    return sum(map(str.isalpha, text)) / visible if visible else 0.0


def _is_filler(sentence: str, words: int, config: RankingConfig) -> bool:
    """Whether a sentence is unfit for a summary whatever its centrality."""
    if not config.min_sentence_words <= words <= config.max_sentence_words:
        return True
    if _letter_ratio(sentence) < 0.7:
        return True
    if sentence[0] in "[(" and sentence[-1] in ")]":
        return True
    if not _ENDS_SENTENCE.search(sentence):
        return True  # headings, running heads, captions, cut-off lines
    if _BOILERPLATE.search(sentence) or _BYLINE.fullmatch(sentence) or _CITATION.search(sentence):
        return True
    if _INDEX_TERMS.match(sentence):
        return True  # a paper's keyword line ("Keywords JavaScript, just-in-time compilation, ...")
    if sum(map(str.isupper, sentence)) > 0.5 * sum(map(str.isalpha, sentence)):
        return True  # ALL-CAPS headings
    return sentence.lstrip("\"'\u201c\u2018([")[:1].islower()  # a fragment from a bad split


def _quoted_fraction(sentence: str) -> float:
    quoted = sum(len(m) for m in _QUOTED.findall(sentence))
    return min(1.0, quoted / max(len(sentence), 1))


def _length_prior(words: int, config: RankingConfig) -> float:
    if words < config.ideal_words:
        return words / config.ideal_words
    if words > config.long_words:
        return max(0.0, 1.0 - (words - config.long_words) / config.long_words)
    return 1.0


def _centrality(
    token_lists: Sequence[Sequence[str]], idf: dict[str, float], config: RankingConfig
) -> FloatArray:
    """LexRank scores in consecutive blocks of ``config.block_size`` sentences.

    Each block's scores are scaled to a mean of 1 so that blocks compare.
    """
    n = len(token_lists)
    scores = np.zeros(n, dtype=np.float64)
    blocks = max(1, round(n / config.block_size))
    edges = np.linspace(0, n, blocks + 1).astype(int)
    for start, end in itertools.pairwise(edges):
        if end <= start:
            continue
        vectors = _tfidf(token_lists[start:end], idf)
        block = lexrank(
            vectors @ vectors.T,
            threshold=config.threshold,
            damping=config.damping,
            continuous=config.continuous,
        )
        scores[start:end] = block * (end - start)
    return scores


def _content(sentence: str) -> str:
    """The sentence without a transcript's speaker label."""
    return SPEAKER.sub("", sentence, count=1)


_CONNECTIVE = re.compile(
    r"(?:but|however|indeed|moreover|furthermore|also|and|yet|still|nevertheless|nonetheless|thus|hence"
    r"|therefore|so|instead|otherwise|besides|meanwhile|then|similarly|likewise|consequently|accordingly"
    r"|or|nor|rather|conversely|further|again|in (?:addition|fact|contrast|turn|short|other words|this case"
    r"|that case|particular|any case)|as a result|for (?:example|instance)|on the other hand|of course"
    r"|after all|even so|that is|by contrast|at the same time|in the same way)\b",
    re.IGNORECASE,
)
_PRONOUN = re.compile(
    r"(?!this (?:paper|article|book|chapter|section|report|study|work|document|thesis|meeting|essay)\b)"
    r"(?:he|she|it|they|this|these|those|that|his|her|its|their|them|him|such|both|neither)\b",
    re.IGNORECASE,
)


def is_dangling(sentence: str) -> bool:
    """Whether a sentence's meaning hangs on the sentence before it.

    True when it opens (after a speaker's label, quotes or brackets) with a
    connective ("But", "However", "Indeed", "In fact", ...) or a pronoun or
    demonstrative whose referent is in an earlier sentence ("He", "They",
    "This", "These", "Such"; "This paper ..." and the like refer to the
    document and are not dangling).

    Args:
        sentence: One sentence.

    Returns:
        ``True`` if it cannot stand alone in a summary.
    """
    text = _content(sentence).lstrip("\"'\u201c\u2018([ ")
    return bool(_CONNECTIVE.match(text) or _PRONOUN.match(text))


_CAPTION = re.compile(
    r"(?:figure|fig\.|table|listing|algorithm|chart|plate|exhibit)\s*\d+[a-z]?\s*[.:\u2014-]", re.IGNORECASE
)
_BIBLIOGRAPHY = re.compile(
    r"\bproceedings\b|\bconference on\b|\bsymposium on\b|\bjournal of\b|\bpages \d+[\u2013-]\d+"
    r"|\bpp\. \d|\b(?:19|20)\d\d\.$|\bet al\.,? (?:19|20)\d\d|\btechnical report\b|\bvol\. ?\d"
    r"|\bin [A-Z][\w ]+, (?:19|20)\d\d|\bretrieved from\b|\bAccessed\b",
)
_INDEX_ENTRY = re.compile(r"\w, \d{1,4}(?:[\u2013-]\d{1,4})?n?(?:, \d{1,4}(?:[\u2013-]\d{1,4})?n?)+")
_LICENCE = re.compile(
    r"creative commons|licen[cs]ed under|\blicen[cs]e (?:permits|grants|agreement)|all rights reserved"
    r"|permission of the (?:publisher|copyright)|reproduced (?:by|with) permission|non-?commercial use",
    re.IGNORECASE,
)


_CLAUSE_WORDS = frozenset(
    (
        *("i", "we", "you", "he", "she", "it", "they", "this", "these", "those", "there"),
        *("is", "are", "was", "were", "be", "been", "being", "am", "has", "have", "had"),
        *("do", "does", "did", "can", "could", "will", "would", "may", "might", "must"),
        *("shall", "should", "not"),
    )
)
"""Pronouns and auxiliaries: a short sentence with none of them is likely a run-in heading."""
_RUN_IN_MAX_WORDS = 7
_HEADING_END = re.compile(r"[^\W_]$")
"""A heading ends with a letter or digit ("8. Related Work"), not a dash or a quote."""


def is_run_in_heading(sentences: Sequence[Sentence], index: int) -> bool:
    """Whether sentence ``index`` is a run-in heading: a paragraph's title set on its first line.

    Papers open paragraphs with a bold phrase and a full stop ("8. Related
    Work / Trace optimization for dynamic languages. The closest area of
    related work is..."). Such a "sentence" follows a heading (a short line
    ending in a letter or digit), opens its paragraph, is followed by more
    text in the same paragraph, has at most 7 words and no comma, starts with
    a capital and has no pronoun nor auxiliary verb (:data:`_CLAUSE_WORDS`).
    It is no summary sentence, and the sentence after it opens the section.
    Only after such a heading: in a story, a paragraph's short first sentence
    ("Captain Tiller nodded.") is prose (ROUGE on SQuALITY dev fell by up to
    1.1 without those conditions).

    Args:
        sentences: The text's sentences in document order.
        index: The sentence to check.

    Returns:
        ``True`` for a run-in heading.
    """
    sentence = sentences[index]
    words = sentence.text.split()
    return (
        index > 0
        and sentences[index - 1].paragraph != sentence.paragraph
        and _HEADING_END.search(sentences[index - 1].text) is not None  # right after a heading
        and sentences[index - 1].words <= _RUN_IN_MAX_WORDS + 3
        and "," not in sentence.text
        and index + 1 < len(sentences)
        and sentences[index + 1].paragraph == sentence.paragraph
        and len(words) <= _RUN_IN_MAX_WORDS
        and sentence.text.endswith(".")
        and sentence.text[:1].isupper()
        and not SPEAKER.match(sentence.text)  # a transcript's turn ("PhD F: Yeah. So ...")
        and not any(word.strip(".,;:").lower() in _CLAUSE_WORDS for word in words)
    )


def is_noise(sentence: str) -> bool:
    """Whether a sentence is a caption, a bibliography or index entry, or a licence notice.

    Args:
        sentence: One sentence.

    Returns:
        ``True`` if it is none of the document's content.
    """
    text = _content(sentence)
    return _is_listing_noise(text) or bool(_BOILERPLATE.search(text) or _CITATION.search(text))


def _is_listing_noise(text: str) -> bool:
    """Captions, bibliography and index entries, licence notices (what :func:`_is_filler` does not check)."""
    return bool(
        _CAPTION.match(text)
        or _BIBLIOGRAPHY.search(text)
        or _INDEX_ENTRY.search(text)
        or _LICENCE.search(text)
    )


_NAME_WORD = re.compile(r"[\w\u2019'-]+")
_PERSONAL = frozenset(
    f"{base}{tail}"
    for base in ("i", "we", "you")
    for tail in (
        "",
        "'m",
        "'ll",
        "'d",
        "'ve",
        "'re",
        "\u2019m",
        "\u2019ll",
        "\u2019d",
        "\u2019ve",
        "\u2019re",
    )
) | frozenset(("me", "my", "mine", "myself", "us", "our", "ours", "ourselves"))
_PERSONAL |= frozenset(("your", "yours", "yourself", "yourselves"))
"""First and second person pronouns, contracted forms too ("I'm", "we\u2019ll")."""
_ENTITY = re.compile(r"(?<=[\w,;:] )[A-Z][\w\u2019'-]*[a-z][\w\u2019'-]*|\b\d[\d,.]*\d\b|\b\d\b")


def _entities(sentence: str) -> set[str]:
    """Named entities (capitalised words not opening the sentence) and numbers of a sentence."""
    return {match.strip(".,").lower() for match in _ENTITY.findall(_content(sentence))} - _STOPWORDS


def is_transcript(sentences: Sequence[Sentence]) -> bool:
    """Whether a text is a transcript: enough of its sentences open with a speaker's label.

    Args:
        sentences: The text's sentences.

    Returns:
        ``True`` if at least :data:`TRANSCRIPT_SHARE` of them open with
        ``"Name: "`` (:data:`SPEAKER`).
    """
    labelled = sum(1 for s in sentences if SPEAKER.match(s.text))
    return bool(sentences) and labelled >= TRANSCRIPT_SHARE * len(sentences)


def _word_shares(
    sentences: Sequence[Sentence], candidates: Sequence[int], entities: Sequence[set[str]], names_min: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per candidate, the share of its words that are recurring names, personal pronouns, and quoted ones.

    Recurring names are the capitalised words found inside sentences (see
    :func:`_entities`) at least ``names_min`` times; every occurrence of them
    counts, the opening word too. The third share counts only the first and
    second person pronouns inside quotation marks (dialogue).
    """
    counts = Counter(e for es in entities for e in es if not e[:1].isdigit())
    recurring = {e for e, c in counts.items() if c >= names_min}
    names = np.zeros(len(candidates), dtype=np.float64)
    person = np.zeros(len(candidates), dtype=np.float64)
    quoted = np.zeros(len(candidates), dtype=np.float64)
    for k, i in enumerate(candidates):
        content = _content(sentences[i].text).lower()
        words = _NAME_WORD.findall(content)
        if words:
            names[k] = sum(w in recurring for w in words) / len(words)
            person[k] = sum(w in _PERSONAL for w in words) / len(words)
            if '"' in content or "\u201c" in content:
                spoken = (w for span in _QUOTED.findall(content) for w in _NAME_WORD.findall(span))
                quoted[k] = sum(w in _PERSONAL for w in spoken) / len(words)
    return names, person, quoted


@dataclass(frozen=True, slots=True)
class _Ranked:
    """What the selection needs about the candidates."""

    candidates: list[int]
    scores: FloatArray
    tokens: list[tuple[str, ...]]  # per sentence
    entity_weight: dict[str, float]
    entities: list[set[str]]  # per sentence


def rank_sentences(
    sentences: Sequence[Sentence], config: RankingConfig = DEFAULT_CONFIG, *, title: str | None = None
) -> tuple[list[int], FloatArray]:
    """Score the candidate sentences of a text.

    Candidates are the sentences that pass the filters (length within
    ``config.min_sentence_words``..``config.max_sentence_words`` words and at
    least ``config.min_content_words`` content words, mostly letters, ending
    like a sentence, not bracketed, not boilerplate such as transcriber's
    notes, bylines, licence notices, captions, bibliography or index entries,
    not all capitals, not starting in lowercase, and not repeated three or
    more times, which catches running heads). If none pass, every sentence is
    a candidate. A candidate's score is
    ``w_centrality * lexrank / max(lexrank) + w_centroid * centroid
    + w_position * exp(-p / position_decay) + w_length * length_prior
    + w_title * title_overlap + w_section * opens_section
    - dialogue_penalty * quoted_fraction + w_names * name_density
    - person_penalty * personal_fraction + w_frequency * frequency
    + w_function * function_share - quoted_person_penalty * quoted_personal_fraction``,
    where ``p`` is the fraction of the
    text's words before the sentence (see :class:`RankingConfig`).

    Args:
        sentences: The text's sentences in document order.
        config: Weights and limits.
        title: The document's title, used as a query (``None``: none).

    Returns:
        The indices (into ``sentences``) of the candidates and their scores.
    """
    ranked = _rank(sentences, config, title)
    return ranked.candidates, ranked.scores


def _rank(sentences: Sequence[Sentence], config: RankingConfig, title: str | None) -> _Ranked:
    if not sentences:
        return _Ranked([], np.zeros(0, dtype=np.float64), [], {}, [])
    word_counts = [s.words for s in sentences]
    all_tokens = [tokenize(_content(s.text)) for s in sentences]
    seen = Counter(_DIGITS.sub("#", s.text.lower()) for s in sentences)
    run_in = {i for i in range(len(sentences)) if is_run_in_heading(sentences, i)}
    candidates = [
        i
        for i, s in enumerate(sentences)
        if i not in run_in
        and not _is_filler(_content(s.text), word_counts[i], config)
        and len(set(all_tokens[i])) >= config.min_content_words
        and seen[_DIGITS.sub("#", s.text.lower())] < 3
        and not _is_listing_noise(_content(s.text))
    ]
    if not candidates:
        candidates = [i for i, n in enumerate(word_counts) if n > 0]
    idf = _idf(all_tokens)
    centrality = _centrality([all_tokens[i] for i in candidates], idf, config)
    top = float(centrality.max()) if len(centrality) else 0.0
    if top > 0.0:
        centrality = centrality / top
    counts = Counter(t for tokens in all_tokens for t in tokens)
    value = {t: math.log1p(c) * idf.get(t, 1.0) for t, c in counts.items() if c > 1}
    centroid = np.array(
        [
            sum(value.get(t, 0.0) for t in set(all_tokens[i])) / math.sqrt(len(all_tokens[i]) + 1)
            for i in candidates
        ]
    )
    if len(centroid) and centroid.max() > 0:
        centroid = centroid / centroid.max()
    query = set(tokenize(title or ""))
    title_overlap = np.array(
        [len(query.intersection(all_tokens[i])) / len(query) if query else 0.0 for i in candidates]
    )
    total_words = max(sum(word_counts), 1)
    words_before = np.concatenate(([0], np.cumsum(word_counts)[:-1]))
    position = words_before[candidates] / total_words
    length = np.array([_length_prior(word_counts[i], config) for i in candidates])
    quoted = np.array([_quoted_fraction(sentences[i].text) for i in candidates])
    section = np.array(
        [
            1.0
            if i > 0
            and (
                i - 1 in run_in
                or (
                    sentences[i - 1].paragraph != sentences[i].paragraph
                    and not _ENDS_SENTENCE.search(sentences[i - 1].text)
                )
            )
            else 0.0
            for i in candidates
        ]
    )
    entities = [_entities(s.text) for s in sentences]
    names, person, quoted_person = _word_shares(sentences, candidates, entities, config.names_min)
    if len(names) and names.max() > 0:
        names = names / names.max()
    frequency = np.array(
        [
            sum(math.log(counts[t]) for t in all_tokens[i]) / len(all_tokens[i]) if all_tokens[i] else 0.0
            for i in candidates
        ]
    )
    if len(frequency) and frequency.max() > 0:
        frequency = frequency / frequency.max()
    function = np.array([1.0 - len(all_tokens[i]) / max(word_counts[i], 1) for i in candidates])
    scores = (
        config.w_centrality * centrality
        + config.w_frequency * frequency
        + config.w_function * function
        + config.w_centroid * centroid
        + config.w_position * np.exp(-position / config.position_decay)
        + config.w_length * length
        + config.w_title * title_overlap
        + config.w_section * section
        - config.dialogue_penalty * quoted
        + config.w_names * names
        - config.person_penalty * person
        - config.quoted_person_penalty * quoted_person
    )
    entity_counts = Counter(e for es in entities for e in es)
    entity_weight = {e: math.log1p(c) for e, c in entity_counts.items() if c > 1 or e[:1].isdigit()}
    return _Ranked(candidates, np.asarray(scores, dtype=np.float64), all_tokens, entity_weight, entities)


def _select(
    sentences: Sequence[Sentence], ranked: _Ranked, max_words: int, config: RankingConfig
) -> list[int]:
    """Greedy MMR selection within the word budget; indices in document order.

    A dangling sentence (:func:`is_dangling`) is taken only together with the
    sentence before it (when that one is a candidate, not dangling itself, and
    both fit), else never.
    """
    candidates, scores = ranked.candidates, ranked.scores
    average = max(1.0, float(np.mean([sentences[i].words for i in candidates])))
    pool_size = max(10, int(config.pool * max_words / average))
    order = np.argsort(-scores, kind="stable")[:pool_size]
    score_of = {candidates[int(k)]: float(scores[int(k)]) for k in range(len(candidates))}
    pool = [candidates[int(k)] for k in order]
    dangling = {i: is_dangling(sentences[i].text) for i in pool}
    partners = [i - 1 for i in pool if dangling[i] and i - 1 in score_of and i - 1 not in dangling]
    for j in partners:
        dangling[j] = is_dangling(sentences[j].text)
    members = pool + [j for j in dict.fromkeys(partners) if j not in set(pool)]
    slot = {index: k for k, index in enumerate(members)}
    tokens = [ranked.tokens[i] for i in members]
    vectors = _tfidf(tokens, _idf(tokens))
    base = np.array([score_of[i] for i in members])
    lengths = np.array([sentences[i].words for i in members])
    weight = ranked.entity_weight
    names = sorted({e for i in members for e in ranked.entities[i] if e in weight})
    column = {e: k for k, e in enumerate(names)}
    incidence = np.zeros((len(members), max(len(names), 1)), dtype=np.float64)
    for row, i in enumerate(members):
        for e in ranked.entities[i]:
            if e in column:
                incidence[row, column[e]] = 1.0
    uncovered = np.array([weight[e] for e in names] or [0.0], dtype=np.float64)
    top_gain = float((incidence @ uncovered).max(initial=0.0)) or 1.0
    closest = np.zeros(len(members), dtype=np.float64)
    available = np.zeros(len(members), dtype=bool)
    available[: len(pool)] = True
    chosen: set[int] = set()
    remaining = max_words

    def take(k: int) -> None:
        nonlocal remaining, closest
        chosen.add(members[k])
        remaining -= int(lengths[k])
        available[k] = False
        uncovered[incidence[k] > 0] = 0.0
        closest = np.maximum(closest, vectors @ vectors[k])

    while True:
        available &= lengths <= remaining
        available &= closest < config.max_overlap
        if not available.any():
            break
        gain = (incidence @ uncovered) / top_gain
        value = np.where(available, base - config.redundancy * closest + config.w_entity * gain, -np.inf)
        best = int(np.argmax(value))
        index = members[best]
        if dangling[index] and index - 1 not in chosen:
            partner = slot.get(index - 1)
            if (
                partner is None
                or dangling.get(index - 1, True)
                or lengths[best] + lengths[partner] > remaining
                or closest[partner] >= config.max_overlap
            ):
                available[best] = False
                continue
            take(partner)
        take(best)
    return sorted(chosen)


def _truncate(sentence: str, max_words: int) -> str:
    words = sentence.split()
    if len(words) <= max_words:
        return sentence
    return " ".join(words[:max_words]).rstrip(",;:") + "\u2026"


def summarize_text(
    text: str, max_words: int, config: RankingConfig | None = None, *, title: str | None = None
) -> list[str]:
    """Pick the sentences that best summarize a text, within a word budget.

    Args:
        text: The text to summarize.
        max_words: The most words the summary may have (white-space separated).
        config: Scoring weights and limits; ``None``: :data:`TRANSCRIPT_CONFIG`
            for a transcript (:func:`is_transcript`), else :data:`DEFAULT_CONFIG`.
        title: The document's title, used as a query (``None``: none).

    Returns:
        The chosen sentences in document order, together at most ``max_words``
        words. Empty only if the text has no words; if no sentence fits the
        budget, the best-scoring one truncated to ``max_words`` words (with an
        ellipsis attached to the last word).

    Raises:
        ValueError: If ``max_words`` is less than 1.
    """
    return summarize_sentences(split_sentences(text), max_words, config, title=title)


def summarize_sentences(
    sentences: Sequence[Sentence],
    max_words: int,
    config: RankingConfig | None = None,
    *,
    title: str | None = None,
) -> list[str]:
    """Like :func:`summarize_text`, for a text already split by :func:`split_sentences`.

    Args:
        sentences: The text's sentences in document order.
        max_words: The most words the summary may have.
        config: Scoring weights and limits; ``None``: chosen by :func:`is_transcript`.
        title: The document's title, used as a query (``None``: none).

    Returns:
        The chosen sentences in document order (see :func:`summarize_text`).

    Raises:
        ValueError: If ``max_words`` is less than 1.
    """
    if max_words < 1:
        raise ValueError(f"max_words must be at least 1, got {max_words}")
    if not sentences:
        return []
    if config is None:
        config = TRANSCRIPT_CONFIG if is_transcript(sentences) else DEFAULT_CONFIG
    ranked = _rank(sentences, config, title)
    chosen = _select(sentences, ranked, max_words, config)
    if not chosen:
        best = ranked.candidates[int(np.argmax(ranked.scores))]
        return [_truncate(sentences[best].text, max_words)]
    return [sentences[i].text for i in chosen]
