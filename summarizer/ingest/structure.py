"""Document structure: what is the document's content, and what is not.

Books and papers carry pages that are not their content: front matter
(licence and copyright pages, tables of contents, dedications) and back matter
(notes and references, acknowledgements, the index). Summarizing them wastes
model calls and puts licence notices and bibliography entries into the
summary. This module recognises them from the page text alone (which works for
every PDF and survives any extraction worker), helped by the PDF's outline
(bookmarks) where the caller has it (:func:`pdf_outline`):

* **front matter** (only in the first pages, :data:`FRONT_PAGES_FRACTION`):
  a licence or copyright page (Creative Commons, "All rights reserved",
  ISBN, Library of Congress data), a table of contents (a "Contents" heading,
  or most lines ending with a page number or with dot leaders in the raw
  text), a dedication (a short page starting "To ..." or "For ...");
* **back matter** (from a heading in the second half of the document, to the
  end; an "Appendix" heading ends it): "Notes", "References",
  "Bibliography", "Works Cited", "Literatur" (reason ``references``),
  "Acknowledg(e)ments" (``acknowledgements``), "Index" (``index``), and pages
  that look like an index (most lines are a term and page numbers) or a
  reference list (most lines carry citation patterns: years, "pp.", "vol.",
  "Proceedings", "et al.", numbered entries) even without a heading;
* the **title**: the PDF metadata's title if it is a real one, else the first
  page's heading (the first short lines), else the file name.

A page that carries the title and abstract is never front matter: the first
page that has prose is always kept. :class:`StructureFilter` applies all this
to a stream of cleaned pages with a one-page holdback (which also repairs words
hyphenated across page breaks, :func:`summarizer.ingest.clean.join_across_pages`).
Back matter is dropped unless ``include_back_matter``; recognised front matter
is always dropped. Everything dropped is reported as :class:`SkippedRange`
values with a reason.

Pure functions and one small state machine; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any, Literal

from summarizer.ingest.clean import join_across_pages
from summarizer.ingest.types import Page

__all__ = [
    "BACK_MATTER_REASONS",
    "FRONT_PAGES_FRACTION",
    "OutlineEntry",
    "PdfOutline",
    "SkipReason",
    "SkippedRange",
    "StructureFilter",
    "back_matter_heading",
    "citation_ratio",
    "clean_title",
    "cover_title",
    "index_ratio",
    "is_dedication",
    "is_licence_page",
    "is_toc_page",
    "pdf_outline",
    "skipped_warning",
    "text_title",
    "title_from_text",
]

SkipReason = Literal["index", "references", "acknowledgements", "table_of_contents", "licence", "dedication"]
"""Why pages were skipped (the ``reason`` of a ``document.skipped`` entry)."""

BACK_MATTER_REASONS: frozenset[str] = frozenset(("index", "references", "acknowledgements"))
"""Reasons that ``include_back_matter`` keeps."""

FRONT_PAGES_FRACTION = 0.1
"""Front matter is looked for in this first fraction of the pages (at least 12 pages)."""

_FRONT_MIN_PAGES = 12
_MIN_LINES = 6  # a page needs this many lines to be judged an index or reference list by its lines
_MAX_TITLE_CHARS = 200
_SMALL_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "nor",
        "but",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "vs",
    ]
)

_REASON_TEXT: dict[str, str] = {
    "index": "index",
    "references": "notes and references",
    "acknowledgements": "acknowledgements",
    "table_of_contents": "table of contents",
    "licence": "licence and copyright",
    "dedication": "dedication",
}


@dataclass(frozen=True, slots=True)
class SkippedRange:
    """Consecutive pages left out of the summary for one reason.

    Attributes:
        first: First page (1-based).
        last: Last page (inclusive).
        reason: One of :data:`SkipReason`.
    """

    first: int
    last: int
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class OutlineEntry:
    """One bookmark of a PDF outline.

    Attributes:
        title: The bookmark's title.
        page: 1-based page it points to.
        depth: Nesting depth (0 for top level).
    """

    title: str
    page: int
    depth: int


@dataclass(frozen=True, slots=True)
class PdfOutline:
    """What a PDF says about its own structure (see :func:`pdf_outline`).

    Attributes:
        title: The metadata title, or ``None``.
        entries: The outline, in document order.
        page_labels: Printed page label of each page (``"xiii"``, ``"1"``), or
            empty if the PDF has none.
    """

    title: str | None = None
    entries: tuple[OutlineEntry, ...] = ()
    page_labels: tuple[str, ...] = ()


# -- page classifiers --------------------------------------------------------------------

_BACK_HEADINGS: tuple[tuple[re.Pattern[str], SkipReason], ...] = (
    (
        re.compile(
            r"(?:\d+\.?\s+)?(?:references|bibliography|works cited|literature cited|notes|endnotes"
            r"|literatur(?:verzeichnis)?|bibliographie|r[ée]f[ée]rences)",
            re.IGNORECASE,
        ),
        "references",
    ),
    (
        re.compile(r"(?:\d+\.?\s+)?acknowledg(?:e)?ments?|danksagung|remerciements", re.IGNORECASE),
        "acknowledgements",
    ),
    (re.compile(r"(?:general |subject |name )?index|stichwortverzeichnis", re.IGNORECASE), "index"),
)
_APPENDIX = re.compile(r"(?:[A-Z]\.?\s+)?appendix\b|anhang\b|(?:[A-Z]|\d+)\s+appendix", re.IGNORECASE)
_CONTENTS = re.compile(
    r"(?:table of )?contents|inhalt(?:sverzeichnis)?|table des mati[èe]res|sommaire", re.IGNORECASE
)
_LICENCE = re.compile(
    r"creative\s*commons|all rights reserved|\bisbn\b|library of congress|licensed under"
    r"|copyright\s*(?:\u00a9|\(c\)|\d{4})|\u00a9\s*\d{4}|cataloging.in.publication|printed in the"
    r"|permission of the publisher|this (?:pdf|book|work) (?:version )?(?:of .{1,60} )?is licensed",
    re.IGNORECASE,
)
_ENDS_WITH_PAGE = re.compile(r"\S.*?\s(?:\d{1,4}|[ivxlc]{1,6})$", re.IGNORECASE)
_INDEX_LINE = re.compile(
    r"^[^\d].{0,80}?,\s*(?:\d{1,4}(?:[\u2013\u2014-]\d{1,4})?n?|[ivxl]+)"
    r"(?:,\s*(?:\d{1,4}(?:[\u2013\u2014-]\d{1,4})?n?|[ivxl]+))*,?$|^[^\d,]{1,60}:$"
    r"|^(?:\d{1,4}(?:[\u2013\u2014-]\d{1,4})?n?,\s*)+\d{1,4}(?:[\u2013\u2014-]\d{1,4})?n?,?$",
    re.IGNORECASE,
)
_CITATION_MARK = re.compile(
    r"\((?:1[5-9]|20)\d\d[a-z]?\)|,\s*(?:1[5-9]|20)\d\d[a-z]?[.,;)]|\bpp?\.\s*\d|\bvol\.\s*\d|\bproceedings\b"
    r"|\bconference\b|\bjournal\b|\bet al\.|^\s*\[\d{1,3}\]|^\s*\d{1,3}\.\s+\S|\bibid\b|\bop\. cit\."
    r"|available at link #|\bpress\b|\buniversity\b|\bsee\b|\bsymposium\b|\bworkshop\b|\btechnical report\b"
    r"|(?-i:\bIn\s+[A-Z])|\bdoi\b|https?://",
    re.MULTILINE | re.IGNORECASE,
)
_DEDICATION = re.compile(r"(?:to|for|in (?:loving )?memory of|dedicated to|f[üu]r)\s", re.IGNORECASE)
_WORDS = re.compile(r"[^\W\d_]+")
_PREAMBLE = re.compile(r"(?:produced by|distributed proofreading|transcriber|e-?text|this e-?book)\b", re.I)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def back_matter_heading(line: str) -> SkipReason | None:
    """The back-matter section a heading line opens, or ``None``.

    A heading is a short line that is exactly "References", "Notes",
    "Bibliography", "Acknowledgments", "Index" and the like (capitalised or in
    capitals, maybe numbered: ``"7. References"``). A lowercase line is a label
    or a wrapped word, not a heading: the UML diagrams of
    GeoBase_NHNC1_Data_Model_UML_EN.pdf label associations "references"; in an
    experiment that handed pages on before the cleaner had removed such labels,
    that line started "back matter" (pages 11-19 dropped).

    Args:
        line: One line of text.

    Returns:
        ``"references"``, ``"acknowledgements"``, ``"index"`` or ``None``.
    """
    line = line.strip().rstrip(":.")
    if len(line) > 40:
        return None
    first = _WORDS.search(line)
    if first is None or first.group()[0].islower():
        return None
    for pattern, reason in _BACK_HEADINGS:
        if pattern.fullmatch(line):
            return reason
    return None


def index_ratio(text: str) -> float:
    """Fraction of a page's lines that look like index entries (``"radio, 3–6, 128"``).

    Args:
        text: A page's text.

    Returns:
        Between 0 and 1; 0 for pages with fewer than :data:`_MIN_LINES` lines.
    """
    lines = _lines(text)
    if len(lines) < _MIN_LINES:
        return 0.0
    return sum(1 for line in lines if _INDEX_LINE.search(line)) / len(lines)


def citation_ratio(text: str) -> float:
    """Citation patterns per line of a page (years, "pp.", "vol.", "et al.", numbered entries...).

    Args:
        text: A page's text.

    Returns:
        Matches divided by lines (may exceed 1); 0 for pages with fewer than
        :data:`_MIN_LINES` lines.
    """
    lines = _lines(text)
    if len(lines) < _MIN_LINES:
        return 0.0
    return len(_CITATION_MARK.findall(text)) / len(lines)


def is_licence_page(text: str) -> bool:
    """Whether a page is a licence or copyright page (not prose that mentions a licence).

    Args:
        text: A page's text.

    Returns:
        ``True`` if licence patterns occur and the page is short or dense with them.
    """
    marks = len(_LICENCE.findall(text))
    if not marks:
        return False
    words = len(text.split())
    return words < 120 or marks >= 3 or (marks >= 2 and words < 400)


def is_toc_page(text: str, raw_leaders: int = 0) -> bool:
    """Whether a page is (part of) a table of contents.

    Args:
        text: A page's cleaned text.
        raw_leaders: Lines of the raw page that had dot leaders (cleaning removes them).

    Returns:
        ``True`` for a "Contents" heading at the top, or when most lines end
        with a page number, or have dot leaders.
    """
    lines = _lines(text)
    if not lines:
        return False
    if any(_CONTENTS.fullmatch(line.rstrip(":")) for line in lines[:3]):
        return True
    if len(lines) < _MIN_LINES:
        return False
    numbered = sum(1 for line in lines if _ENDS_WITH_PAGE.fullmatch(line) and len(line) < 90)
    return numbered >= 0.6 * len(lines) or raw_leaders >= 0.5 * len(lines)


def is_dedication(text: str) -> bool:
    """Whether a page is a dedication: a few short lines starting "To ..." or "For ...".

    Args:
        text: A page's text.

    Returns:
        ``True`` for a dedication.
    """
    lines = _lines(text)
    return 0 < len(lines) <= 6 and len(text) < 300 and _DEDICATION.match(lines[0]) is not None


def _has_prose(text: str) -> bool:
    """Whether a page has at least one long line of running text (a paragraph)."""
    return any(len(line) >= 60 and len(_WORDS.findall(line)) >= 8 for line in _lines(text))


_LEADER_RAW = re.compile(r"(?:[.·•…‥_][ \t]*){5,}(?:\d{1,5}|[ivxlc]+)?[ \t]*$", re.IGNORECASE | re.MULTILINE)


def raw_leader_lines(text: str) -> int:
    """Lines of a raw page that end with dot leaders (``"Scope ....... 7"``).

    Args:
        text: The page as extracted, before cleaning.

    Returns:
        The count.
    """
    return len(_LEADER_RAW.findall(text))


# -- title ---------------------------------------------------------------------------------

_BAD_TITLE = re.compile(
    r"untitled|^document\d*$|^binder\d*|\.(?:pdf|docx?|rtf|txt|indd|qxd|tex|dvi)$"
    r"|^microsoft (?:word|powerpoint)"
    r"|^slide \d+$|^title$|^\W*$|^[\w-]+\.\w{2,4}$",
    re.IGNORECASE,
)


def clean_title(title: str | None) -> str | None:
    """A title fit to show and to put into a prompt, or ``None``.

    White space is collapsed, an all-capitals title is set in title case,
    placeholder titles ("Untitled", "Binder1.pdf", "Microsoft Word - x.doc")
    are refused and the length is capped at 200 characters.

    Args:
        title: A candidate title (metadata, heading or file name).

    Returns:
        The cleaned title, or ``None``.
    """
    if not title:
        return None
    text = " ".join(title.replace("\x00", "").split()).strip(" -:;,")
    if len(_WORDS.findall(text)) == 0 or _BAD_TITLE.search(text):
        return None
    letters = [c for c in text if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) > 0.8 * len(letters) and len(letters) > 3:
        text = " ".join(
            w.lower() if i and w.lower() in _SMALL_WORDS else w.capitalize()
            for i, w in enumerate(text.split())
        )
    if len(text) > _MAX_TITLE_CHARS:
        text = text[: _MAX_TITLE_CHARS - 1].rstrip() + "\u2026"
    return text


def title_from_text(text: str) -> str | None:
    """The heading at the top of a first page: its first short lines.

    Up to three lines of at most 12 words each are joined, stopping at a line
    that ends a sentence, at a byline ("By ...") or an author list (commas,
    "and", e-mail addresses), or at a long line.

    Args:
        text: The first page's (or text document's) opening text.

    Returns:
        The heading, cleaned (:func:`clean_title`), or ``None``.
    """
    heading: list[str] = []
    for line in _lines(text)[:10]:
        if not _WORDS.findall(line):
            if heading:
                break
            continue
        if _PREAMBLE.match(line) or "http" in line or "@" in line or _LICENCE.search(line):
            if heading:
                break
            continue  # "Produced by ...", a URL: before the heading of a Gutenberg text
        byline = re.search(r"(?:^|\s)by\s+[A-Z]", line, re.IGNORECASE)
        if byline is not None:
            if byline.start() and not heading:
                heading.append(line[: byline.start()])
            break
        if len(line.split()) > 12:
            break
        if heading and (re.search(r"[,*\u2217\u2020\u2021\d]", line) or line.endswith((".", "!", "?"))):
            break  # an author list, a date, an edition, a sentence
        if heading and line == heading[-1]:
            continue  # the same heading twice (a running head above it)
        heading.append(line)
        if len(heading) == 3 or line.endswith((".", "!", "?")):
            break
    return clean_title(" ".join(heading).replace("- ", "-")) if heading else None


def _title_from_filename(filename: str) -> str | None:
    stem = PurePath(filename).stem
    return clean_title(re.sub(r"[_]+", " ", stem))


_COVER_MAX_CHARS = 400
"""A cover's OCR text longer than this is not a title page: it adds nothing to the title."""


def cover_title(title: str | None, cover: str) -> str | None:
    """The title completed from a cover page's text: ``"Title: Subtitle"``.

    A cover (an image-only first page, read by OCR) shows the title and often
    a subtitle that says what the document is about, which the metadata title
    lacks: freeculture.pdf's cover reads "FREE CULTURE" then "HOW BIG MEDIA
    USES TECHNOLOGY AND THE LAW TO LOCK DOWN CULTURE AND CONTROL CREATIVITY".
    The cover's first paragraph is its heading; the second, of 3 to 25 words
    and not a byline, is the subtitle. The subtitle is added only where the
    heading repeats ``title`` (words compared without case), so an unrelated
    cover never changes a title; without a ``title`` the heading becomes it.

    Args:
        title: The title known so far (metadata or first heading), or ``None``.
        cover: The cover's text (blank lines between its paragraphs).

    Returns:
        The completed title (cleaned, :func:`clean_title`), or ``title`` unchanged.
    """
    if len(cover) > _COVER_MAX_CHARS:
        return title
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", cover) if _WORDS.search(p)]
    if not paragraphs:
        return title
    heading = clean_title(paragraphs[0])
    if heading is None:
        return title
    words = [w.lower() for w in _WORDS.findall(heading)]
    if title is not None and words != [w.lower() for w in _WORDS.findall(title)]:
        return title
    base = title or heading
    if len(paragraphs) < 2:
        return base
    subtitle = paragraphs[1]
    count = len(_WORDS.findall(subtitle))
    if not 3 <= count <= 25 or re.match(r"(?i)by\s", subtitle) or subtitle.endswith("."):
        return base
    return clean_title(f"{base}: {clean_title(subtitle)}") or base


def text_title(opening: str, filename: str = "") -> str | None:
    """The title of a text or Markdown document: its first heading, else the file name.

    Args:
        opening: The document's first characters (a couple of thousand suffice).
        filename: The client's file name.

    Returns:
        The title, or ``None`` if neither gives one.
    """
    for line in _lines(opening)[:3]:
        if line.startswith("#"):
            return clean_title(line.lstrip("#")) or _title_from_filename(filename)
    return title_from_text(opening) or _title_from_filename(filename)


# -- the PDF outline -----------------------------------------------------------------------


def pdf_outline(reader: Any, *, page_labels: bool = True) -> PdfOutline:
    """Read a PDF's metadata title, outline and page labels with pypdf.

    For the PDF worker: call it once after opening the document and send the
    result (plain values) with the page count. Never raises: a broken outline
    or label tree gives empty values.

    Args:
        reader: A ``pypdf.PdfReader`` (decrypted).
        page_labels: Read the page labels too (default ``True``); they cost a
            walk of the page tree (0.26 s on the 352 pages of freeculture.pdf).

    Returns:
        The :class:`PdfOutline`.
    """
    title: str | None = None
    try:
        metadata = reader.metadata
        if metadata is not None and metadata.title:
            title = str(metadata.title)
    except Exception:  # pypdf raises many types on damaged files
        title = None
    entries: list[OutlineEntry] = []

    def walk(items: Iterable[Any], depth: int) -> None:
        for item in items:
            if len(entries) >= 2000 or depth > 8:
                return
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            try:
                page = reader.get_destination_page_number(item) + 1
                entries.append(OutlineEntry(str(item.title), page, depth))
            except Exception:
                continue

    try:
        walk(reader.outline, 0)
    except Exception:
        entries = []
    labels: tuple[str, ...] = ()
    try:
        labels = tuple(str(label) for label in reader.page_labels) if page_labels else ()
    except Exception:
        labels = ()
    return PdfOutline(title=title, entries=tuple(entries), page_labels=labels)


def _outline_back_matter(outline: PdfOutline | None) -> list[tuple[int, SkipReason | None]]:
    """``(page, reason)`` for each top-level bookmark from the back-matter bookmark on."""
    if outline is None:
        return []
    marks: list[tuple[int, SkipReason | None]] = []
    for entry in outline.entries:
        if entry.depth:
            continue
        reason = back_matter_heading(entry.title)
        if reason is None and _APPENDIX.match(entry.title.strip()):
            marks.append((entry.page, None))
        elif reason is not None:
            marks.append((entry.page, reason))
    return marks


# -- the stream filter ---------------------------------------------------------------------


def skipped_warning(skipped: Sequence[SkippedRange], *, include_back_matter: bool = False) -> str | None:
    """The warning that tells the user which pages were not summarized.

    Args:
        skipped: The ranges, in page order.
        include_back_matter: Whether back matter was kept (then it is not mentioned).

    Returns:
        A sentence, or ``None`` if nothing was skipped.
    """
    if not skipped:
        return None
    parts = []
    for item in skipped:
        pages = f"page {item.first}" if item.first == item.last else f"pages {item.first}\u2013{item.last}"
        parts.append(f"{pages} ({_REASON_TEXT[item.reason]})")
    hint = (
        ""
        if include_back_matter
        else ("; use the include_back_matter option (--include-back-matter) to summarize the back matter too")
    )
    return f"Not summarized, as not part of the document's content: {', '.join(parts)}{hint}."


@dataclass(slots=True)
class _State:
    back: SkipReason | None = None  # the back-matter section we are in
    body_started: bool = False  # a page with prose was kept: front matter is over
    pages_seen: int = 0


@dataclass(slots=True)
class StructureFilter:
    """Drops front and back matter from a stream of cleaned pages (one-page holdback).

    Feed pages in order with :meth:`push`, then call :meth:`finish`; each
    returns the pages to summarize (a back-matter heading in mid-page keeps the
    text above it). :attr:`skipped` lists what was dropped (or, with
    ``include_back_matter``, the back matter that was recognised but kept is
    not listed) and :attr:`title` the document's title once the first page
    with text was seen.

    Attributes:
        total_pages: Pages in the document (for "first pages" and "second half").
        filename: The client's file name (the last resort for the title).
        include_back_matter: Keep notes, references, acknowledgements and index.
        outline: The PDF's own outline and metadata title, if the caller has it.
        raw_leaders: Page number -> dot-leader lines of its raw text (see
            :func:`raw_leader_lines`), filled by the caller as pages arrive.
        title: The document's title (``None`` until known, or if there is none).
        skipped: Skipped page ranges, in page order.
    """

    total_pages: int
    filename: str = ""
    include_back_matter: bool = False
    outline: PdfOutline | None = None
    raw_leaders: dict[int, int] = field(default_factory=dict)
    title: str | None = None
    skipped: list[SkippedRange] = field(default_factory=list)
    _held: Page | None = None
    _state: _State = field(default_factory=_State)
    _title_done: bool = False
    _front: list[Page] = field(default_factory=list)  # skipped front pages, in case nothing else is kept
    _kept_any: bool = False
    _changed: set[int] = field(default_factory=set)  # pages skipped, cut or re-joined
    _cover: str | None = None  # a deferred cover's OCR text, for the title at :meth:`finish`

    def __post_init__(self) -> None:
        if self.outline is not None:
            self.title = clean_title(self.outline.title)
            self._title_done = self.title is not None

    def use_outline(self, outline: PdfOutline) -> None:
        """Take the PDF's outline and metadata title, known only once the PDF is open.

        Call it before the first :meth:`push`. A plausible metadata title (see
        :func:`clean_title`) becomes :attr:`title`; a placeholder one
        (``"Binder1.pdf"``) leaves the title to the first page's heading.

        Args:
            outline: What :func:`pdf_outline` read.
        """
        self.outline = outline
        if not self._title_done:
            self.__post_init__()

    def use_cover(self, text: str) -> None:
        """Take a cover page's OCR text, which arrives out of page order (any time before :meth:`finish`).

        The cover is not summarized: at :meth:`finish` its heading and subtitle
        complete :attr:`title` (see :func:`cover_title`), so the chunks that
        :meth:`finish` releases, and the reduce that follows them, carry the
        completed title. Chunks released earlier keep the title they had: what
        the map prompts see never depends on when the OCR ended.

        Args:
            text: The cover's text as OCR read it.
        """
        self._cover = text

    # -- public --------------------------------------------------------------------------

    def push(self, page: Page) -> list[Page]:
        """Add the next cleaned page.

        Args:
            page: The page (its text may be empty).

        Returns:
            Pages (or parts of pages) to summarize, at most two.
        """
        kept = self._classify(page)
        if kept is None or kept.text != page.text:
            self._changed.add(page.number)
        if kept is None:
            return []
        return self._hold(kept)

    def finish(self) -> list[Page]:
        """The page still held back, if any; sets the title from the file name if none was found.

        If every page was front matter (a one-page licence, say), those pages
        are returned after all and nothing is reported skipped: a document is
        never reduced to nothing.
        """
        if self._cover is not None:
            self.title = cover_title(self.title, self._cover)
            self._title_done = self._title_done or self.title is not None
        self._title_fallback()
        held, self._held = self._held, None
        if held is None and not self._kept_any and self._front:
            self.skipped = [s for s in self.skipped if s.reason in BACK_MATTER_REASONS]
            front, self._front = self._front, []
            return front
        return [held] if held is not None and held.text.strip() else []

    def _title_fallback(self) -> None:
        if not self._title_done:
            self.title = self.title or _title_from_filename(self.filename)
            self._title_done = True

    def unchanged(self, number: int) -> bool:
        """Whether page ``number`` went through exactly as it came in (not skipped, cut or joined).

        A cleaner's later revision of such a page may replace it; of any other page it may not.

        Args:
            number: A page number.

        Returns:
            ``True`` if the page passed unchanged (or was not seen yet).
        """
        return number not in self._changed

    @property
    def warning(self) -> str | None:
        """The user-facing warning about :attr:`skipped` (``None`` if nothing was skipped)."""
        return skipped_warning(self.skipped, include_back_matter=self.include_back_matter)

    # -- internals -----------------------------------------------------------------------

    def _hold(self, page: Page) -> list[Page]:
        self._kept_any = True
        if self._held is None:
            self._held = page
            return []
        previous, following = join_across_pages(self._held.text, page.text)
        if previous != self._held.text:
            self._changed.update((self._held.number, page.number))
        out = Page(self._held.number, previous)
        self._held = Page(page.number, following)
        return [out] if out.text.strip() else []

    def _skip(self, number: int, reason: SkipReason) -> None:
        if (
            self.skipped
            and self.skipped[-1].reason == reason
            and self.skipped[-1].last in (number, number - 1)
        ):
            last = self.skipped[-1]
            self.skipped[-1] = SkippedRange(last.first, number, reason)
        else:
            self.skipped.append(SkippedRange(number, number, reason))

    def _front_limit(self) -> int:
        return max(_FRONT_MIN_PAGES, round(FRONT_PAGES_FRACTION * self.total_pages))

    def _set_title(self, text: str) -> None:
        if self._title_done or not text.strip():
            return
        found = title_from_text(text)
        if found is not None:
            self.title = found
            self._title_done = True

    def _classify(self, page: Page) -> Page | None:
        """The part of ``page`` to keep (``None``: none), recording what was skipped."""
        state = self._state
        state.pages_seen += 1
        text = page.text
        if not text.strip():
            return None
        number = page.number
        second_half = number > self.total_pages / 2
        # The outline, where there is one, says where back matter starts.
        for mark_page, reason in _outline_back_matter(self.outline):
            if mark_page == number and second_half:
                state.back = reason
        # Front matter: only before the first page of prose is kept, in the first pages.
        if not state.body_started and number <= self._front_limit():
            front = self._front_reason(page)
            if front is not None:
                self._skip(number, front)
                self._front.append(page)
                return None
            self._set_title(text)
            if _has_prose(text):
                state.body_started = True
                self._title_fallback()
            return page
        state.body_started = True
        self._title_fallback()
        if second_half:
            return self._back_matter(page)
        return page

    def _front_reason(self, page: Page) -> SkipReason | None:
        text = page.text
        if is_licence_page(text):
            return "licence"
        if is_toc_page(text, self.raw_leaders.get(page.number, 0)):
            return "table_of_contents"
        if is_dedication(text):
            return "dedication"
        return None

    def _back_matter(self, page: Page) -> Page | None:
        """Keep the body part of a page in the second half; skip back matter."""
        state = self._state
        lines = page.text.split("\n")
        kept: list[str] = []
        skipped_reasons: list[SkipReason] = []
        for number, line in enumerate(lines):
            heading = back_matter_heading(line)
            if heading is not None and _section_follows(heading, lines[number + 1 :]):
                state.back = heading
            elif state.back is not None and _APPENDIX.match(line.strip()) and len(line) < 60:
                state.back = None
            if state.back is None:
                kept.append(line)
            elif not skipped_reasons or skipped_reasons[-1] != state.back:
                skipped_reasons.append(state.back)
        if state.back is None and not skipped_reasons:
            # No heading: a page can still be an index or a reference list by its lines.
            if index_ratio(page.text) >= 0.6:
                state.back = "index"
                skipped_reasons, kept = ["index"], []
            elif citation_ratio(page.text) >= 1.0 and not _mostly_prose(page.text):
                skipped_reasons, kept = ["references"], []
        if not skipped_reasons:
            return page
        if self.include_back_matter:
            return page
        for reason in skipped_reasons:
            self._skip(page.number, reason)
        text = "\n".join(kept).strip()
        return Page(page.number, text) if text else None


def _section_follows(reason: SkipReason, rest: Sequence[str]) -> bool:
    """Whether the lines after a back-matter heading look like that section.

    A "References" or "Index" line inside a diagram or a sentence-less list is
    not a heading: the text after it must be citations (or an index); with
    fewer than six lines left on the page the heading is believed.
    """
    text = "\n".join(rest)
    if len(_lines(text)) < _MIN_LINES or reason == "acknowledgements":
        return True
    if reason == "index":
        return index_ratio(text) >= 0.4
    return citation_ratio(text) >= 0.3


def _mostly_prose(text: str) -> bool:
    """Whether most lines of a page are long lines of running text."""
    lines = _lines(text)
    long = sum(1 for line in lines if len(line) >= 60 and not _CITATION_MARK.search(line))
    return long >= 0.6 * max(len(lines), 1)
