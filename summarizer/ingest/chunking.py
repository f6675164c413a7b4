"""Incremental chunking with exact character offsets and page ranges.

:class:`IncrementalChunker` is fed page by page (or piece by piece while an
upload still arrives) and emits each chunk **as soon as** ``chunk_size``
characters past the chunk's start are known, or at the end of the document.
There is no buffer of several chunks and no re-splitting: a chunk is cut
greedily, as long as possible, at the best boundary near its end.

Where a chunk ends (in this order of preference, each looked for only in the
last :data:`NEAR_FRACTION` of the ``chunk_size`` window, so chunks stay full):

1. Markdown only: before a heading line (looked for in the last half);
2. a paragraph break (a blank line, also between pages);
3. the end of a sentence (``.``, ``!``, ``?``, optionally followed by a
   closing quote or bracket, then white space);
4. a line break (tables, lists and headings of a PDF end their lines);
5. any white space (a word boundary);
6. exactly ``chunk_size`` characters (a word longer than the window).

The next chunk starts ``chunk_overlap`` characters before the end, moved
forward to the start of a word (never more than ``chunk_overlap`` characters
are shared); in Markdown, a chunk cut before a heading is followed by one that
starts at the heading. So the number of chunks is close to
``ceil(characters / (chunk_size - chunk_overlap))``: every chunk is a model
call that repeats the prompt and the overlap, so packing them is money.

The document text the offsets refer to is the concatenation of everything
fed, with ``"\\n\\n"`` inserted before the first text of each new page (except
the first). Text of a page that is only white space is not added. Memory is
bounded by ``chunk_size`` plus the largest single piece fed.
"""

from __future__ import annotations

import bisect
import re

from summarizer.ingest.types import Chunk, Page

__all__ = ["NEAR_FRACTION", "PAGE_SEPARATOR", "IncrementalChunker"]

PAGE_SEPARATOR = "\n\n"
"""Inserted between the text of consecutive pages."""

NEAR_FRACTION = 0.06
"""A paragraph or sentence boundary counts as "near" the end of a full chunk
when it lies in the last 6% of the ``chunk_size`` window (240 of 4,000
characters): chunks stay at least 94% full, so a document needs at most about
``1.07 x ceil(characters / (chunk_size - chunk_overlap))`` chunks."""

MARKDOWN_HEADING_FRACTION = 0.5
"""Markdown: a heading in the last half of the window ends the chunk before it."""

_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s)")
_HEADING = re.compile(r"\n(?=#{1,6} )")
_HEADING_AFTER = re.compile(r"[ \t]*\n\s*#{1,6} ")  # white space, then a heading line
_WORD_START = re.compile(r"(?<=\s)\S")


class IncrementalChunker:
    """Split a document into overlapping chunks while it is still being read.

    Args:
        chunk_size: Largest chunk length (characters); must be > 0.
        chunk_overlap: Characters neighbouring chunks may share; ``0 <=
            chunk_overlap < chunk_size``.
        markdown: Prefer Markdown headings as split points.

    Raises:
        ValueError: If the sizes are out of range; the message shows the values.

    Example:
        >>> chunker = IncrementalChunker(chunk_size=1000, chunk_overlap=100)
        >>> chunks = [*chunker.feed(Page(1, "..." * 600)), *chunker.finish()]
    """

    def __init__(self, chunk_size: int, chunk_overlap: int, *, markdown: bool = False) -> None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0:
            raise ValueError(f"chunk_size must be a positive integer (characters), got {chunk_size!r}")
        if isinstance(chunk_overlap, bool) or not isinstance(chunk_overlap, int) or chunk_overlap < 0:
            raise ValueError(f"chunk_overlap must be an integer >= 0 (characters), got {chunk_overlap!r}")
        if chunk_overlap >= chunk_size:
            raise ValueError(
                f"chunk_overlap ({chunk_overlap}) must be smaller than chunk_size ({chunk_size})"
            )
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.markdown = markdown
        self._near = max(1, int(chunk_size * NEAR_FRACTION))
        self._heading_near = max(1, int(chunk_size * MARKDOWN_HEADING_FRACTION))
        self._buffer = ""  # document text from _buffer_start on
        self._buffer_start = 0  # document offset of the buffer's first character
        self._cursor = 0  # buffer offset where the next chunk may start
        self._covered = 0  # document offset one past the last emitted chunk's end
        self._length = 0  # characters of document text so far
        self._page: int | None = None  # page of the last text added
        self._page_offsets: list[int] = []  # document offsets where pages start ...
        self._page_numbers: list[int] = []  # ... and their numbers
        self._next_index = 0
        self._chunk_chars = 0
        self._finished = False

    @property
    def characters(self) -> int:
        """Characters of document text added so far (separators included)."""
        return self._length

    @property
    def buffered(self) -> int:
        """Characters held back, not yet emitted as a whole chunk (at most about ``chunk_size``)."""
        return len(self._buffer) - self._cursor

    @property
    def needed(self) -> int:
        """Characters still to add before the next chunk can be cut (>= 1)."""
        return max(1, self.chunk_size + 1 - self.buffered)

    @property
    def chunks_emitted(self) -> int:
        """Chunks returned so far."""
        return self._next_index

    @property
    def chunk_characters(self) -> int:
        """Characters of all chunks returned so far (overlaps counted twice)."""
        return self._chunk_chars

    def feed(self, page: Page) -> list[Chunk]:
        """Add a whole page.

        Args:
            page: The page; a page whose text is only white space is skipped.

        Returns:
            Chunks that are now complete (often none).

        Raises:
            RuntimeError: After :meth:`finish`.
        """
        if not page.text.strip():
            return []
        return self.append(page.text, page.number, new_page=True)

    def append(self, text: str, page: int, *, new_page: bool = False) -> list[Chunk]:
        """Add text that continues page ``page`` (or starts it).

        Consecutive calls with the same page number continue the same page
        without a separator, which lets a text upload be chunked while it arrives.

        Args:
            text: The next piece of text (may be empty).
            page: 1-based page number the text belongs to.
            new_page: Start a new page even if ``page`` equals the previous one.

        Returns:
            Chunks that are now complete (often none).

        Raises:
            RuntimeError: After :meth:`finish`.
        """
        if self._finished:
            raise RuntimeError("IncrementalChunker.append() called after finish()")
        if not text:
            return []
        if new_page or page != self._page:
            if self._length:
                self._add(PAGE_SEPARATOR)
            self._page_offsets.append(self._length)
            self._page_numbers.append(page)
            self._page = page
        self._add(text)
        return self._cut(final=False)

    @property
    def first_open_page(self) -> int | None:
        """The first page whose text is not all in emitted chunks yet (``None`` before any text)."""
        return self._page_at(self._covered) if self._page_numbers else None

    def revise(self, page: Page) -> tuple[bool, list[Chunk]]:
        """Replace the text of a page already fed, where no emitted chunk has used it yet.

        The cleaner may judge a page again once more pages are known (a running
        footer is only recognised on the next pages): the revision is applied
        if the old and new texts differ only after the part of the page that
        is already in an emitted chunk (the overlap with the next chunk
        included), so every offset of emitted chunks stays exact.

        Args:
            page: The page's number and its new text.

        Returns:
            ``(applied, chunks)``: whether the text was replaced, and chunks that
            are complete now (if the new text is longer).
        """
        if self._finished or not page.text.strip() or page.number not in self._page_numbers:
            return False, []
        i = len(self._page_numbers) - 1 - self._page_numbers[::-1].index(page.number)
        start = self._page_offsets[i] - self._buffer_start  # buffer offsets
        if i + 1 < len(self._page_offsets):
            end = self._page_offsets[i + 1] - len(PAGE_SEPARATOR) - self._buffer_start
        else:
            end = len(self._buffer)
        if start < 0:
            return False, []
        old = self._buffer[start:end]
        same = 0
        for a, b in zip(old, page.text, strict=False):
            if a != b:
                break
            same += 1
        frozen = max(self._covered - self._buffer_start, self._cursor)  # used by an emitted chunk
        if start + same < frozen or old == page.text:
            return False, []
        delta = len(page.text) - len(old)
        self._buffer = self._buffer[: start + same] + page.text[same:] + self._buffer[end:]
        self._length += delta
        for j in range(i + 1, len(self._page_offsets)):
            self._page_offsets[j] += delta
        return True, self._cut(final=False)

    def finish(self) -> list[Chunk]:
        """Cut what is left at the end of the document.

        Returns:
            The remaining chunks (none if the document had no text).
        """
        if self._finished:
            return []
        self._finished = True
        chunks = self._cut(final=True)
        self._buffer = ""
        self._cursor = 0
        return chunks

    def _add(self, text: str) -> None:
        self._buffer += text
        self._length += len(text)

    def _cut(self, *, final: bool) -> list[Chunk]:
        """Emit every chunk whose window is complete (all that is left if ``final``)."""
        chunks: list[Chunk] = []
        buffer, size = self._buffer, self.chunk_size
        while True:
            start = self._cursor
            while start < len(buffer) and buffer[start].isspace():
                start += 1
            if start >= len(buffer):
                self._cursor = start
                break
            if len(buffer) - start > size:
                end = self._best_end(buffer, start)
            elif final:
                end = len(buffer)
            else:
                self._cursor = start
                break
            text = buffer[start:end].rstrip()
            end = start + len(text)
            if self._buffer_start + end <= self._covered:
                # Only the overlap is left: already in the previous chunk.
                self._cursor = len(buffer)
                break
            chunks.append(self._make_chunk(self._buffer_start + start, text))
            self._covered = self._buffer_start + end
            self._cursor = max(start + 1, self._next_start(buffer, start, end))
        if self._cursor > 0:  # forget what no future chunk can reach
            self._buffer = buffer[self._cursor :]
            self._buffer_start += self._cursor
            self._cursor = 0
            self._forget_pages_before(self._buffer_start)
        return chunks

    def _best_end(self, buffer: str, start: int) -> int:
        """Buffer offset where the chunk starting at ``start`` should end (window complete)."""
        limit = start + self.chunk_size  # the chunk is buffer[start:limit] at most
        if self.markdown:
            heading = _last_match(_HEADING, buffer, limit - self._heading_near, limit)
            if heading is not None and heading > start:
                return heading
        low = limit - self._near
        paragraph = buffer.rfind("\n\n", low, limit)
        if paragraph > start:
            return paragraph
        sentence = _last_match(_SENTENCE_END, buffer, low, limit, end=True)
        if sentence is not None and sentence > start:
            return sentence
        line = buffer.rfind("\n", low, limit + 1)
        if line > start:
            return line
        if buffer[limit].isspace():
            return limit
        for i in range(limit - 1, start, -1):
            if buffer[i].isspace():
                return i
        return limit

    def _next_start(self, buffer: str, start: int, end: int) -> int:
        """Where the chunk after ``buffer[start:end]`` starts: a word start in the overlap.

        After a Markdown chunk that ends right before a heading, the next one
        starts at the heading (a new section needs no overlap).
        """
        if self.chunk_overlap == 0 or (self.markdown and _HEADING_AFTER.match(buffer, end)):
            return end
        match = _WORD_START.search(buffer, max(start + 1, end - self.chunk_overlap), end)
        return match.start() if match is not None else end

    def _make_chunk(self, start: int, text: str) -> Chunk:
        end = start + len(text)
        chunk = Chunk(
            index=self._next_index,
            text=text,
            start=start,
            end=end,
            first_page=self._page_at(start),
            last_page=self._page_at(end - 1),
        )
        self._next_index += 1
        self._chunk_chars += len(text)
        return chunk

    def _page_at(self, offset: int) -> int:
        """Page of the character at document ``offset`` (a separator counts for the page before)."""
        i = bisect.bisect_right(self._page_offsets, offset) - 1
        return self._page_numbers[max(i, 0)]

    def _forget_pages_before(self, offset: int) -> None:
        """Drop page starts that no future chunk can reach."""
        i = bisect.bisect_right(self._page_offsets, offset) - 1
        if i > 0:
            del self._page_offsets[:i]
            del self._page_numbers[:i]


_LOOKAHEAD_SLACK = 8
"""Characters past the window the patterns' lookaheads may look at."""


def _last_match(pattern: re.Pattern[str], text: str, low: int, high: int, *, end: bool = False) -> int | None:
    """The last offset (a match's start, or its end if ``end``) in ``[low, high]``, or ``None``.

    The pattern may look up to :data:`_LOOKAHEAD_SLACK` characters past ``high``.
    """
    found: int | None = None
    for match in pattern.finditer(text, max(low, 0), high + _LOOKAHEAD_SLACK):
        position = match.end() if end else match.start()
        if position > high:
            break
        found = position
    return found
