"""Clean the text PDF extraction leaves behind, page by page, as a stream.

What is removed or repaired:

* running headers and footers: lines at the top or bottom of a page that
  recur on other pages nearby (digits and roman numerals normalized, so
  ``"Chapter 3 - 45"`` matches ``"Chapter 3 - 46"``; OCR variants of the two
  outermost lines match fuzzily);
* bare page numbers at the top or bottom (``12``, ``- 12 -``, ``Page 12``,
  ``Page 3 of 10``, ``xiv``);
* words hyphenated across line breaks (``impor-\\ntant`` becomes
  ``important``, ``Anglo-\\nSaxon`` ``Anglo-Saxon``, the text's own spelling
  deciding where it has one; see :func:`dehyphenate`), and across page breaks
  (:func:`join_across_pages`);
* dot leaders of tables of contents (``Introduction ....... 3`` becomes
  ``Introduction``);
* ligatures (``ﬁ`` to ``fi``), control characters, runs of spaces, spaces at
  line ends and more than one blank line in a row. Paragraph breaks (one
  blank line) are kept.

The pure functions work on one page or a window of pages; :class:`PageCleaner`
and :func:`clean_pages` apply them to a stream with a bounded lookahead, so
cleaned pages (and chunks) flow long before the document ends.

Furniture detection costs no latency in ingestion: :meth:`PageCleaner.release`
cleans the pages held back at once, each compared with the pages seen so far
(history) and the ones already in hand after it. Ingestion calls it as soon
as the pages held back hold enough text for the chunker's next chunk, so a
page is only ever held while the chunker would have waited for more text
anyway; a page released early is judged on fewer neighbours, and the pages
after it are judged with it in their history.
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field

from summarizer.ingest.types import Page

__all__ = [
    "DEFAULT_HISTORY",
    "DEFAULT_LOOKAHEAD",
    "REVISE_PAGES",
    "SUSPENDED_HYPHEN_WORDS",
    "PageCleaner",
    "clean_pages",
    "clean_pages_batch",
    "dehyphenate",
    "is_page_number",
    "join_across_pages",
    "line_key",
    "normalize_text",
    "remove_dot_leaders",
]

DEFAULT_LOOKAHEAD = 8
"""Pages :class:`PageCleaner` holds back to compare a page with the ones after it."""

DEFAULT_HISTORY = 8
"""Already emitted pages it still compares new pages with."""

REVISE_PAGES = DEFAULT_LOOKAHEAD
"""A page released before its lookahead is judged again on the next this many pages."""

MAX_FURNITURE_LINE = 120
"""Longer lines (characters) are never treated as running headers or footers."""

_EDGE_LINES = 2  # outermost lines compared fuzzily and checked for page numbers
_FUZZY_RATIO = 0.8  # difflib similarity for OCR variants of a running head
_FUZZY_MIN_LETTERS = 6
_FUZZY_MAX_LETTERS = 40  # running heads are short; long lines must match exactly
_GUTTER_RUN = 3  # consecutive number/furniture lines dropped even inside a page
_GUTTER_LINE = 8  # longest repeated line (characters) that can be part of a gutter run
_MAX_EDGE_DEPTH = 6  # furniture lines removed at most from each edge of a page
_OUTSIDE_LINES = 3  # short lines between an edge and a running line dropped with it
_OUTSIDE_LINE = 60  # longest such line (characters)

LIGATURE_MAP: dict[str, str] = {
    "\ufb00": "ff",
    "\ufb01": "fi",
    "\ufb02": "fl",
    "\ufb03": "ffi",
    "\ufb04": "ffl",
    "\ufb05": "st",
    "\ufb06": "st",
    "\u00a0": " ",
    "\u2007": " ",
    "\u202f": " ",
}
"""Typographic ligatures and non-breaking spaces -> plain letters and spaces; shared with
:mod:`summarizer.ingest.ocr`, which adds its own OCR-specific replacements."""
_LIGATURES = str.maketrans(LIGATURE_MAP)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b\ufeff]")
_SPACES = re.compile(r"[ \t\u2000-\u2006\u2008-\u200a\u3000]+")
_BLANK_RUNS = re.compile(r"\n{3,}")
_ROMAN = r"(?=[ivxlcdm])m{0,4}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})"
# A roman numeral between non-alphanumerics; "_" counts as a separator, so printer's
# file names ("14773_00_i-xviii_r9jm.qxd") get the same key in every section.
_ROMAN_TOKEN = re.compile(rf"(?<![^\W_]){_ROMAN}(?![^\W_])", re.IGNORECASE)
_DIGITS = re.compile(r"\d+")
_PAGE_NUMBER = re.compile(
    rf"""^[\s\-\u2010-\u2015\u2212·•|\[(<]*
        (?:(?:page|p\.|pg\.?|seite|s\.|pagina|página)\s*)?
        (?:\d{{1,5}}|{_ROMAN})
        (?:\s*(?:of|/|von|de|sur)\s*\d{{1,5}})?
        [\s\-\u2010-\u2015\u2212·•|\])>]*$""",
    re.IGNORECASE | re.VERBOSE,
)
_LEADER = re.compile(
    rf"[ \t]*(?:[.·•…‥_][ \t]*){{5,}}(?:\d{{1,5}}|{_ROMAN})?[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_HYPHEN_BREAK = re.compile(r"(?<!\w)(\w*[^\W_])[-\u2010][ \t]*\n[ \t]*([^\W_]\w*)")
_PAGE_END_HYPHEN = re.compile(r"(?<!\w)(\w*[^\W\d_])[-\u2010]$")
_PAGE_START_WORD = re.compile(r"([^\W_]\w*)")
_WORD = re.compile(r"[^\W_]+")
_INLINE_BREAK = re.compile(r"(?<![\w-])([^\W\d_]*[^\W\d_A-Z])- ([^\W\d_A-Z][^\W\d_]*)")
SUSPENDED_HYPHEN_WORDS = frozenset(
    ("and", "or", "nor", "to", "as", "und", "oder", "bis", "sowie", "et", "ou", "y", "e", "o")
)
"""Words after which ``"word- "`` is a suspended hyphen (``"pre- and post-war"``),
not a word split by a lost line break."""
_COMPOUND = re.compile(r"[^\W_]+(?:-[^\W_]+)+")
_SOFT_HYPHEN_BREAK = re.compile(r"\u00ad[ \t]*\n[ \t]*")
_NON_LETTERS = re.compile(r"[^\w]|[\d_]")


def normalize_text(text: str) -> str:
    """Tidy characters and spacing of one page without changing its lines.

    Args:
        text: Raw extracted text.

    Returns:
        The text with ligatures expanded, control characters dropped, runs of
        spaces collapsed and lines stripped (line breaks kept).
    """
    text = text.translate(_LIGATURES)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    return "\n".join(line.strip() for line in text.split("\n"))


def is_page_number(line: str) -> bool:
    """Whether ``line`` is just a page number (``12``, ``- 12 -``, ``Page 3 of 10``, ``xiv``).

    Args:
        line: One line of text.

    Returns:
        ``True`` for a bare page number.
    """
    return bool(line.strip()) and _PAGE_NUMBER.match(line.strip()) is not None


def line_key(line: str) -> str:
    """Normalize a line for comparison across pages.

    Lowercases, collapses white space and replaces every number (digits or a
    roman numeral) with ``#``, so ``"Chapter 3 - 45"`` and ``"Chapter 3 - 46"``
    get the same key.

    Args:
        line: One line of text.

    Returns:
        The key.
    """
    key = _DIGITS.sub("#", line.strip().lower())
    key = _ROMAN_TOKEN.sub("#", key)
    return " ".join(key.split())


def remove_dot_leaders(text: str) -> str:
    """Drop table-of-contents dot leaders and the page number after them.

    ``"2.1 Scope ........ 7"`` becomes ``"2.1 Scope"``. At least five leader
    characters (``.``, ``·``, ``…``, ``_``) must end the line.

    Args:
        text: Text with newlines.

    Returns:
        The text without leaders.
    """
    return _LEADER.sub("", text)


def _word_forms(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """Lowercased words of ``text`` and its hyphenated compounds (``"well-known"``)."""
    words = frozenset(match.lower() for match in _WORD.findall(text))
    compounds = frozenset(match.lower() for match in _COMPOUND.findall(text))
    return words, compounds


def _join_hyphenated(
    before: str,
    after: str,
    words: frozenset[str],
    compounds: frozenset[str],
    keeps: Callable[[str, str], bool] | None = None,
) -> str:
    """How a word cut as ``before-`` | ``after`` at a line break is written again.

    ``before`` and ``after`` are the whole word parts (letters or digits) on
    both sides of the hyphen. The text's own spelling decides when it has one:
    a compound seen with its hyphen elsewhere (``"mixed-mode"``) keeps it, a
    word seen joined (``"TraceMonkey"``) is joined, and two words seen apart
    (``"trace compilation"``) but never joined keep the hyphen
    (``"trace-compilation"``: a compound modifier, not a syllable break).
    Otherwise a lowercase continuation is a syllable break (``"impor-tant"``
    becomes ``"important"``) and a capital or a digit is a real hyphen
    (``"Anglo-Saxon"``, ``"IEEE-754"``).

    Args:
        before: The part before the hyphen.
        after: The part after the line break.
        words: Lowercased words of the text.
        compounds: Lowercased hyphenated compounds of the text.
        keeps: Says whether the text and its neighbourhood (nearby pages) spell
            ``before``/``after`` as a compound (:func:`_keeps_hyphen`), asked
            only when the text alone leaves a lowercase continuation undecided
            (``None``: a syllable break).
    """
    joined, hyphenated = (before + after).lower(), f"{before}-{after}".lower()
    if hyphenated in compounds and joined not in words:
        return f"{before}-{after}"
    if joined in words:
        return before + after
    if after[0].islower() and before[-1].isalpha():
        if keeps is not None and keeps(before, after):
            return f"{before}-{after}"
        return before + after
    return f"{before}-{after}"


_MIN_APART_LETTERS = 3
"""Shortest part (letters) for which two words seen apart keep a line-end hyphen."""


def _keeps_hyphen(before: str, after: str, text: str) -> bool:
    """Whether ``text`` (a wider neighbourhood) spells ``before``/``after`` as a compound.

    Yes when it never has the joined word but has the hyphenated compound, or
    the two parts as consecutive words (each at least :data:`_MIN_APART_LETTERS`
    letters), or ``before`` heading other hyphenated compounds (``"trace-based"``)
    while ``after`` stands alone as a word elsewhere (both at least
    :data:`_MIN_MODIFIER_LETTERS` letters). Case-insensitive. Plain substring
    finds on the lowercased text (lowercased once per text), not a regular
    expression per question: a page of a book asks this for every hyphen.
    """
    b, a = before.lower(), after.lower()
    return _combined(b, a, [_evidence(_lowered(text), b, a)])


_Evidence = tuple[bool, bool, bool, bool, bool, bool, bool, bool]
"""What one lowercased text says about the parts ``b``/``a`` of a word cut at a line end
(:func:`_evidence`): it has the joined word; the hyphenated compound; the two words apart;
``b`` heading other compounds; ``a`` as a word of its own; it ends with the word ``b``; it
starts with the word ``a``; it is blank."""


def _evidence(low: str, b: str, a: str) -> _Evidence:
    """The compound evidence of one lowercased text (see :data:`_Evidence`), for :func:`_combined`.

    Only what :func:`_combined` can use for parts of these lengths is looked for.
    """
    shortest = min(len(b), len(a))
    apart = ends = starts = heads = alone = False
    if shortest >= _MIN_APART_LETTERS:
        apart = _apart(low, b, a)
        tail = low.rstrip(" \t\n")
        ends = tail.endswith(b) and not _is_alnum(tail, len(tail) - len(b) - 1)
        head = low.lstrip(" \t\n")
        starts = head.startswith(a) and not _is_alnum(head, len(a))
        if shortest >= _MIN_MODIFIER_LETTERS:
            heads = _heads_other(low, b, a)
            alone = _alone(low, a)
    blank = not low.strip(" \t\n")
    return _has_word(low, b + a), _has_word(low, f"{b}-{a}"), apart, heads, alone, ends, starts, blank


def _combined(b: str, a: str, evidences: Sequence[_Evidence]) -> bool:
    """:func:`_keeps_hyphen` on texts joined with line breaks, from each text's :func:`_evidence`.

    The same answer as on the joined text (two words apart may straddle the
    break between two texts, across blank ones), without joining or
    lowercasing it: a page's evidence is computed once and asked by every
    page whose window holds it.
    """
    if any(evidence[0] for evidence in evidences):
        return False
    if any(evidence[1] for evidence in evidences):
        return True
    shortest = min(len(b), len(a))
    if shortest < _MIN_APART_LETTERS:
        return False
    if any(evidence[2] for evidence in evidences):
        return True
    ended = False
    for evidence in evidences:
        if evidence[7]:
            continue  # blank: the white space between the two words runs through it
        if ended and evidence[6]:
            return True
        ended = evidence[5]
    # ``before`` heads other hyphenated compounds ("trace-based") and ``after`` is a word
    # of its own: a compound modifier, as far as the pages in hand tell.
    if shortest < _MIN_MODIFIER_LETTERS:
        return False
    return any(evidence[3] for evidence in evidences) and any(evidence[4] for evidence in evidences)


def _apart(low: str, b: str, a: str) -> bool:
    """Whether ``low`` has the word ``b``, white space, then the word ``a``."""
    for at in _word_starts(low, b):
        rest = at + len(b)
        gap = rest
        while gap < len(low) and low[gap] in " \t\n":
            gap += 1
        if gap > rest and low.startswith(a, gap) and not _is_alnum(low, gap + len(a)):
            return True
    return False


def _heads_other(low: str, b: str, a: str) -> bool:
    """Whether the word ``b`` heads a hyphenated compound in ``low`` other than ``b-a``."""
    return any(
        low.startswith("-", at + len(b))
        and low[at + len(b) + 1 : at + len(b) + 4].isalpha()
        and len(low[at + len(b) + 1 : at + len(b) + 4]) == 3
        and not (low.startswith(a, at + len(b) + 1) and not _is_alnum(low, at + len(b) + 1 + len(a)))
        for at in _word_starts(low, b)
    )


def _alone(low: str, a: str) -> bool:
    """Whether ``low`` has ``a`` as a word of its own (no hyphen on either side)."""
    return any(
        not (at and low[at - 1] == "-") and not low.startswith("-", at + len(a))
        for at in _word_starts(low, a, right=True)
    )


@functools.lru_cache(maxsize=8)
def _lowered(text: str) -> str:
    """``text.lower()``, kept for the few texts (page neighbourhoods) asked about in a row."""
    return text.lower()


def _is_alnum(text: str, index: int) -> bool:
    """Whether ``text[index]`` exists and is a letter or digit (``[^\\W_]``)."""
    return 0 <= index < len(text) and text[index].isalnum()


def _word_starts(text: str, word: str, *, right: bool = False) -> Iterator[int]:
    """Offsets where ``word`` starts with no letter or digit before it (and after it, if ``right``)."""
    at = text.find(word)
    while at >= 0:
        if not _is_alnum(text, at - 1) and not (right and _is_alnum(text, at + len(word))):
            yield at
        at = text.find(word, at + 1)


def _has_word(text: str, word: str) -> bool:
    """Whether ``word`` occurs in ``text`` with no letter or digit on either side."""
    return next(_word_starts(text, word, right=True), None) is not None


_MIN_MODIFIER_LETTERS = 5
"""Shortest part (letters) for the "heads other compounds" evidence of :func:`_keeps_hyphen`."""


def dehyphenate(text: str, *, context: Callable[[], str] | None = None) -> str:
    """Join words hyphenated across a line break.

    The two parts are written as one word, never with a space or a line break
    between them. ``"impor-\\ntant"`` becomes ``"important"`` (a lowercase
    continuation is a syllable break); ``"Anglo-\\nSaxon"`` becomes
    ``"Anglo-Saxon"`` and ``"IEEE-\\n754"`` ``"IEEE-754"`` (a capital or a digit
    follows a real hyphen). The text's own spelling wins: ``"Trace-\\nMonkey"``
    becomes ``"TraceMonkey"`` when the text also has ``TraceMonkey``, and
    ``"mixed-\\nmode"`` stays ``"mixed-mode"`` when the text also has
    ``mixed-mode`` (and never ``mixedmode``). Soft hyphens at line ends are always
    joined. A hyphen after a space (a dash) or between digits (``"10-\\n12"``,
    a range) is left alone. Inside a line, ``"mova- ble"`` (OCR that lost the
    line break) is joined too, unless the next word is a conjunction
    (``"pre- and post-war"``: a suspended hyphen, see
    :data:`SUSPENDED_HYPHEN_WORDS`). A lowercase continuation whose two parts
    the text (or ``context``) writes apart and never joined keeps its hyphen:
    ``"trace-\\ncompilation"`` becomes ``"trace-compilation"`` next to
    ``"trace compilation"``.

    Args:
        text: Text with newlines (one page, or more).
        context: Returns more text of the same document (nearby pages) whose
            spelling counts too; called at most once, only when a break needs
            it (default ``None``: the text alone).

    Returns:
        The text with hyphenated words joined: the continuation line follows
        the joined word on the same line.
    """
    whole: list[str] = []

    def keeps(before: str, after: str, text: str) -> bool:
        if not whole:
            whole.append(text if context is None else text + "\n" + context())
        return _keeps_hyphen(before, after, whole[0])

    return _dehyphenate(text, keeps)


_Keeps = Callable[[str, str, str], bool]
"""``keeps(before, after, text)``: whether the neighbourhood of ``text`` (the page's
text before any repair) spells ``before``/``after`` as a compound."""


def _dehyphenate(text: str, keeps: _Keeps) -> str:
    """:func:`dehyphenate`, the compound evidence of nearby pages asked of ``keeps``."""
    text = _SOFT_HYPHEN_BREAK.sub("", text)
    if "-" not in text and "\u2010" not in text:
        return text
    forms: list[tuple[frozenset[str], frozenset[str]]] = []  # computed on the first match only
    original = text

    def ask(before: str, after: str) -> bool:
        return keeps(before, after, original)

    def spelling() -> tuple[frozenset[str], frozenset[str]]:
        if not forms:
            forms.append(_word_forms(text))
        return forms[0]

    def join(match: re.Match[str]) -> str:
        before, after = match.group(1), match.group(2)
        if before[-1].isdigit() and after[0].isdigit():
            return match.group(0)  # a range of numbers, "10-\n12"
        if match.start() and match.string[match.start() - 1] in "-\u2010":
            return f"{before}-{after}"  # the last part of a compound: "well-known-\nfoo"
        return _join_hyphenated(before, after, *spelling(), ask)

    text = _HYPHEN_BREAK.sub(join, text)
    if "- " not in text:
        return text
    return _INLINE_BREAK.sub(lambda m: _join_inline(m, *spelling()), text)


def _join_inline(match: re.Match[str], words: frozenset[str], compounds: frozenset[str]) -> str:
    """``"mova- ble"`` inside a line (OCR that lost the line break) becomes ``"movable"``."""
    before, after = match.group(1), match.group(2)
    if after.lower() in SUSPENDED_HYPHEN_WORDS:
        return match.group(0)
    return _join_hyphenated(before, after, words, compounds)


def join_across_pages(previous: str, following: str) -> tuple[str, str]:
    """Repair a word hyphenated across a page break (``"shor-"`` | ``"ter ..."``).

    When ``previous`` (a cleaned page) ends with a word cut by a hyphen and
    ``following`` (the next cleaned page) starts with its continuation, the
    whole word moves to the start of ``following``, written as
    :func:`dehyphenate` would (``"shorter"``, ``"Anglo-Saxon"``), so that
    neither page holds a fragment and a chunk boundary never splits the word.

    Args:
        previous: Text of a page (cleaned; trailing white space ignored).
        following: Text of the next page.

    Returns:
        ``(previous, following)``, unchanged if there is nothing to repair.
    """
    tail = _PAGE_END_HYPHEN.search(previous.rstrip())
    head = _PAGE_START_WORD.match(following.lstrip())
    if tail is None or head is None:
        return previous, following
    before, after = tail.group(1), head.group(1)
    if before[-1].isdigit() and after[0].isdigit():
        return previous, following
    words, compounds = _word_forms(previous + "\n" + following)
    word = _join_hyphenated(
        before, after, words, compounds, lambda b, a: _keeps_hyphen(b, a, previous + "\n" + following)
    )
    rest = following.lstrip()[head.end() :]
    return previous.rstrip()[: tail.start()].rstrip(), word + rest


def _finish(lines: Sequence[str], keeps: _Keeps) -> str:
    """Join kept lines and apply the in-text repairs (``keeps``: the compound evidence of nearby pages)."""
    text = "\n".join(lines)
    text = remove_dot_leaders(text)
    text = _dehyphenate(text, keeps)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip()


@dataclass(slots=True)
class _Judgement:
    """The last cleaning of a page: reused while its window tells nothing new.

    The cleaned text is a function of the lines kept (``mask``) and of the
    answers the neighbourhood gave about the compounds the page asked for
    (``asked``: lowercased parts -> the page's own evidence and the answer).
    """

    mask: tuple[bool, ...]
    asked: dict[tuple[str, str], tuple[_Evidence, bool]]
    text: str


@dataclass(slots=True)
class _PreparedPage:
    """A page split into lines, with what the window comparison needs (computed once)."""

    number: int
    lines: list[str]
    line_keys: list[str]  # line_key of every line ("" for an empty one)
    numbers: list[bool]  # whether each line is a bare page number
    keys: frozenset[str]  # line_key of every short non-empty line
    edge_letters: tuple[str, ...]  # letters-only forms of the outermost lines
    characters: int  # of the normalized text, line breaks included
    evidence: dict[tuple[str, str], _Evidence] = field(default_factory=dict)  # asked by neighbours
    judged: _Judgement | None = None
    lowered: str | None = None  # the lines joined and lowercased, once a neighbour asks

    def evidence_for(self, b: str, a: str) -> _Evidence:
        """What this page's (raw, normalized) text says about the lowercased parts ``b``, ``a``."""
        found = self.evidence.get((b, a))
        if found is None:
            if self.lowered is None:
                self.lowered = "\n".join(self.lines).lower()
            found = self.evidence[(b, a)] = _evidence(self.lowered, b, a)
        return found


def _prepare(page: Page) -> _PreparedPage:
    lines = normalize_text(page.text).split("\n")
    line_keys = _line_keys(lines)
    numbers = [bool(line) and _PAGE_NUMBER.match(line) is not None for line in lines]
    keys = frozenset(
        key for line, key in zip(lines, line_keys, strict=True) if line and len(line) <= MAX_FURNITURE_LINE
    )
    content = [line for line in lines if line]
    edges = content[:_EDGE_LINES] + content[-_EDGE_LINES:]
    edge_letters = tuple(
        letters
        for letters in (_letters(line) for line in edges)
        if _FUZZY_MIN_LETTERS <= len(letters) <= _FUZZY_MAX_LETTERS
    )
    characters = sum(len(line) for line in lines) + max(len(lines) - 1, 0)
    return _PreparedPage(page.number, lines, line_keys, numbers, keys, edge_letters, characters)


def _line_keys(lines: Sequence[str]) -> list[str]:
    """:func:`line_key` of every line (stripped ones, as :func:`normalize_text` leaves them).

    The numbers of the whole page are replaced at once (no number spans a line
    break), not line by line: a book has tens of thousands of lines.
    """
    key = _ROMAN_TOKEN.sub("#", _DIGITS.sub("#", "\n".join(lines).lower()))
    return [" ".join(part.split()) for part in key.split("\n")]


def _letters(line: str) -> str:
    return _NON_LETTERS.sub("", line.lower())


def _threshold(window_size: int) -> int:
    """Pages (this one included) a line must appear on to be furniture."""
    return max(2, min(3, math.ceil(window_size / 2)))


def _clean_in_window(page: _PreparedPage, window: Sequence[_PreparedPage]) -> str:
    """Clean ``page`` (a member of ``window``) using the other pages to spot furniture.

    The furniture decision reads the line keys and page-number flags computed
    once per page; the costly repairs (:func:`_finish`) run again only when the
    lines kept or the compound evidence of the window changed since the page's
    last cleaning (a provisional page is judged again at every new page).
    """
    threshold = _threshold(len(window))
    others = [other for other in window if other is not page]
    lines, keys = page.lines, page.line_keys

    def repeated(i: int) -> bool:
        if len(lines[i]) > MAX_FURNITURE_LINE:
            return False
        key = keys[i]
        return 1 + sum(1 for other in others if key in other.keys) >= threshold

    def elsewhere(i: int) -> bool:
        key = keys[i]
        return any(key in other.keys for other in others)

    def fuzzy_repeated(i: int) -> bool:
        letters = _letters(lines[i])
        if not _FUZZY_MIN_LETTERS <= len(letters) <= _FUZZY_MAX_LETTERS:
            return False
        matcher = difflib.SequenceMatcher(None, autojunk=False)
        matcher.set_seq2(letters)  # the matcher caches what it learns about seq2
        count = 1
        for other in others:
            for candidate in other.edge_letters:
                matcher.set_seq1(candidate)
                if (
                    matcher.real_quick_ratio() >= _FUZZY_RATIO
                    and matcher.quick_ratio() >= _FUZZY_RATIO
                    and matcher.ratio() >= _FUZZY_RATIO
                ):
                    count += 1
                    break
            if count >= threshold:
                return True
        return False

    drop = [False] * len(lines)
    _drop_gutter_runs(lines, drop, numbers=page.numbers, is_furniture=repeated)
    content = [i for i, line in enumerate(lines) if line and not drop[i]]
    edges = {*content[:_EDGE_LINES], *content[-_EDGE_LINES:]}
    for order in (content, content[::-1]):
        removed = numbers = 0
        for i in order:
            if drop[i]:
                continue  # already removed from the other edge
            if removed >= _MAX_EDGE_DEPTH:
                break
            if repeated(i) or _is_decoration(lines[i]):
                pass
            elif numbers < _EDGE_LINES and page.numbers[i]:
                numbers += 1
            elif not (i in edges and fuzzy_repeated(i)):
                break
            drop[i] = True
            removed += 1
    _drop_outside_furniture(lines, drop, page.numbers, repeated, elsewhere)

    def answer(b: str, a: str, own: _Evidence) -> bool:
        return _combined(b, a, [own, *(other.evidence_for(b, a) for other in others)])

    mask = tuple(drop)
    judged = page.judged
    if (
        judged is not None
        and judged.mask == mask
        and all(answer(b, a, own) == said for (b, a), (own, said) in judged.asked.items())
    ):
        return judged.text
    asked: dict[tuple[str, str], tuple[_Evidence, bool]] = {}

    def keeps(before: str, after: str, text: str) -> bool:
        b, a = before.lower(), after.lower()
        own = _evidence(_lowered(text), b, a)
        said = answer(b, a, own)
        asked[(b, a)] = (own, said)
        return said

    text = _finish([line for line, dropped in zip(lines, drop, strict=True) if not dropped], keeps)
    page.judged = _Judgement(mask, asked, text)
    return text


def _drop_outside_furniture(
    lines: Sequence[str],
    drop: list[bool],
    numbers: Sequence[bool],
    repeated: Callable[[int], bool],
    elsewhere: Callable[[int], bool],
) -> None:
    """Drop lines between a page edge and a running line that recur on another page.

    A printer's stamp or link under the footer ("<http://...>" below
    "4TH PASS PAGES") lies outside the text block: when it recurs on just one
    other page of the window (fewer than a running line needs, as on the first
    pages of a stream, judged on the pages in hand), it is furniture too. The
    running line must be a long one (more than :data:`_GUTTER_LINE` characters,
    not a bare number) within :data:`_MAX_EDGE_DEPTH` lines of the edge, and only
    the :data:`_OUTSIDE_LINES` outermost kept lines (at most :data:`_OUTSIDE_LINE`
    characters each) are looked at. ``numbers``, ``repeated`` and ``elsewhere``
    answer for a line index.
    """
    content = [i for i, line in enumerate(lines) if line]
    for order in (content, content[::-1]):
        outside: list[int] = []
        for depth, i in enumerate(order):
            if depth > _MAX_EDGE_DEPTH + _OUTSIDE_LINES:
                break
            line = lines[i]
            if drop[i]:
                if outside and len(line) > _GUTTER_LINE and not numbers[i] and repeated(i):
                    for j in outside:
                        if elsewhere(j):
                            drop[j] = True
                    break
                continue
            if len(outside) >= _OUTSIDE_LINES or len(line) > _OUTSIDE_LINE:
                break
            outside.append(i)


def _is_decoration(line: str) -> bool:
    """A line without any letter or digit (crop marks, rules, ornaments)."""
    return not any(char.isalnum() for char in line)


def _drop_gutter_runs(
    lines: Sequence[str], drop: list[bool], *, numbers: Sequence[bool], is_furniture: Callable[[int], bool]
) -> None:
    """Drop runs of furniture lines inside a page that look like a gutter.

    Line numbers and printer's marks extracted from a column beside the text
    end up in the middle of a page: a run of consecutive lines, each a bare
    number or a line repeated on other pages, with at least three bare
    numbers or very short lines (``"12"``, ``"S32"``) in it. ``numbers`` says
    which lines are bare page numbers; ``is_furniture`` answers for a line index.
    """
    run: list[int] = []
    short = 0
    for i, line in enumerate([*lines, None]):
        if line == "":
            continue  # blank lines neither extend nor end a run
        if line is not None and not drop[i]:
            number = numbers[i]
            if number or is_furniture(i):
                run.append(i)
                short += number or len(line) <= _GUTTER_LINE
                continue
        if short >= _GUTTER_RUN:
            for j in run:
                drop[j] = True
        run, short = [], 0


def clean_pages_batch(pages: Sequence[Page]) -> list[Page]:
    """Clean a whole document at once (same result as the streaming cleaner).

    Args:
        pages: The pages in order.

    Returns:
        Cleaned pages, same numbers, in order (a page may become empty).
    """
    cleaner = PageCleaner()
    cleaned: list[Page] = []
    for page in pages:
        cleaned.extend(cleaner.push(page))
    cleaned.extend(cleaner.finish())
    return cleaned


class PageCleaner:
    """Streaming page cleaner with a bounded window.

    Each page is compared with up to ``history`` pages before it and
    ``lookahead`` pages after it, so a page is returned once ``lookahead``
    more pages have been pushed (or at :meth:`finish`), or earlier when
    :meth:`release` is called.

    A page released early is judged on the pages in hand; it stays
    *provisional* for :data:`REVISE_PAGES` more pages: each :meth:`push`
    judges it again with the new page in its window, and a changed text is
    returned by :meth:`revisions` (a consumer that has not used the end of
    the page yet, like the chunker's open tail, applies it). :meth:`settle`
    says which pages the consumer can no longer change, so they are not
    judged again.

    Args:
        lookahead: Pages held back (>= 0).
        history: Earlier pages remembered for comparison (>= 0).

    Raises:
        ValueError: If a size is negative.
    """

    def __init__(self, lookahead: int = DEFAULT_LOOKAHEAD, history: int = DEFAULT_HISTORY) -> None:
        if lookahead < 0 or history < 0:
            raise ValueError(f"lookahead and history must be >= 0 pages, got {lookahead} and {history}")
        self._lookahead = lookahead
        self._history_size = history
        self._pending: deque[_PreparedPage] = deque()
        # Emitted pages still needed as history or as the window of a provisional page.
        self._recent: deque[_PreparedPage] = deque(maxlen=history + REVISE_PAGES + 1)
        self._provisional: dict[int, tuple[_PreparedPage, str, int]] = {}  # number -> (page, text, after)
        self._revisions: list[Page] = []
        self._pending_chars = 0

    def push(self, page: Page) -> list[Page]:
        """Add the next page.

        Args:
            page: The next page, raw text.

        Returns:
            Pages that are now cleaned (at most a few; often exactly one).
        """
        prepared = _prepare(page)
        self._pending.append(prepared)
        self._pending_chars += prepared.characters
        self._revise()
        cleaned: list[Page] = []
        while len(self._pending) > self._lookahead:
            cleaned.append(self._emit())
        return cleaned

    @property
    def pending(self) -> int:
        """Pages held back."""
        return len(self._pending)

    @property
    def pending_characters(self) -> int:
        """Characters of the pages held back (normalized, before furniture removal)."""
        return self._pending_chars

    def release(self) -> list[Page]:
        """Clean and return every page held back now, without waiting for its lookahead.

        Returns:
            The pages, in order (each compared with the pages before it and
            the ones held back after it); they stay provisional (see the class).
        """
        cleaned: list[Page] = []
        while self._pending:
            cleaned.append(self._emit())
        return cleaned

    def finish(self) -> list[Page]:
        """Clean and return every page still held back (the document ended)."""
        cleaned = self.release()
        self._provisional.clear()
        return cleaned

    def revisions(self) -> list[Page]:
        """Provisional pages whose cleaned text changed since it was returned (then forgotten).

        Returns:
            The pages with their new text, in page order.
        """
        revised, self._revisions = self._revisions, []
        return sorted(revised, key=lambda page: page.number)

    def settle(self, first_open_page: int) -> None:
        """Stop judging again the pages before ``first_open_page`` (their text is used up).

        Args:
            first_open_page: The first page number whose text may still change downstream.
        """
        for number in [n for n in self._provisional if n < first_open_page]:
            del self._provisional[number]

    def _window(self, page: _PreparedPage) -> list[_PreparedPage]:
        """``history`` pages before ``page``, the page, and up to ``lookahead`` after it."""
        known = [*self._recent, *self._pending]
        i = next(i for i, other in enumerate(known) if other is page)
        before = known[max(0, i - self._history_size) : i] if self._history_size else []
        return [*before, page, *known[i + 1 : i + 1 + self._lookahead]]

    def _emit(self) -> Page:
        page = self._pending.popleft()
        self._pending_chars -= page.characters
        window = self._window_for_next(page)
        text = _clean_in_window(page, window)
        self._recent.append(page)
        after = len(self._pending)
        if after < min(self._lookahead, REVISE_PAGES):
            self._provisional[page.number] = (page, text, after)
        return Page(page.number, text)

    def _window_for_next(self, page: _PreparedPage) -> list[_PreparedPage]:
        before = list(self._recent)[-self._history_size :] if self._history_size else []
        return [*before, page, *list(self._pending)[: self._lookahead]]

    def _revise(self) -> None:
        """Judge the provisional pages again now that a page was added."""
        for number, (page, text, after) in list(self._provisional.items()):
            if not any(other is page for other in self._recent):  # pragma: no cover - sized for this
                del self._provisional[number]
                continue
            after += 1
            new = _clean_in_window(page, self._window(page))
            if after >= min(self._lookahead, REVISE_PAGES):
                del self._provisional[number]
            else:
                self._provisional[number] = (page, new, after)
            if new != text:
                self._revisions = [r for r in self._revisions if r.number != number]
                self._revisions.append(Page(number, new))


async def clean_pages(
    pages: AsyncIterable[Page],
    *,
    lookahead: int = DEFAULT_LOOKAHEAD,
    history: int = DEFAULT_HISTORY,
) -> AsyncIterator[Page]:
    """Clean an async stream of pages, yielding each once its window is known.

    Args:
        pages: Raw pages in order.
        lookahead: Pages held back before a page is yielded.
        history: Earlier pages compared with.

    Yields:
        Cleaned pages, in order, same numbers.
    """
    cleaner = PageCleaner(lookahead=lookahead, history=history)
    async for page in pages:
        for cleaned in cleaner.push(page):
            yield cleaned
    for cleaned in cleaner.finish():
        yield cleaned
