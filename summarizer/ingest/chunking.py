"""Incremental chunking with exact character offsets and page ranges.

:class:`IncrementalChunker` wraps langchain's ``RecursiveCharacterTextSplitter``
(lengths in characters, plain :func:`len`) so that it can be fed page by page,
or piece by piece while an upload still arrives, and emits chunks as soon as
enough text is buffered instead of at the end of the document.

The document text the offsets refer to is the concatenation of everything
fed, with ``"\\n\\n"`` inserted before the first text of each new page (except
the first). Text of a page that is only white space is not added.

Buffering: once :data:`FLUSH_FACTOR` times ``chunk_size`` characters are
buffered, the buffer is split, every chunk but the last is emitted, and the
buffer restarts at the last chunk's start, so memory stays bounded (roughly
``FLUSH_FACTOR * chunk_size`` plus the largest single piece fed).
"""

from __future__ import annotations

import bisect
import logging

from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from summarizer.ingest.types import Chunk, Page

__all__ = ["FLUSH_FACTOR", "PAGE_SEPARATOR", "IncrementalChunker"]

logger = logging.getLogger(__name__)

PAGE_SEPARATOR = "\n\n"
"""Inserted between the text of consecutive pages."""

FLUSH_FACTOR = 3
"""Split the buffer once it holds this many times ``chunk_size`` characters."""


class IncrementalChunker:
    """Split a document into overlapping chunks while it is still being read.

    Args:
        chunk_size: Largest chunk length (characters); must be > 0.
        chunk_overlap: Characters neighbouring chunks may share; ``0 <=
            chunk_overlap < chunk_size``.
        markdown: Prefer Markdown structure (headings, code fences, rules) as
            split points.

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
        self._splitter = _make_splitter(chunk_size, chunk_overlap, markdown=markdown)
        self._parts: list[str] = []  # buffered text, not yet emitted
        self._buffered = 0  # characters in _parts
        self._buffer_start = 0  # document offset of the buffer's first character
        self._length = 0  # characters of document text so far
        self._page: int | None = None  # page of the last text added
        self._page_offsets: list[int] = []  # document offsets where pages start ...
        self._page_numbers: list[int] = []  # ... and their numbers
        self._next_index = 0
        self._finished = False

    @property
    def characters(self) -> int:
        """Characters of document text added so far (separators included)."""
        return self._length

    @property
    def buffered(self) -> int:
        """Characters held back, not yet emitted as a whole chunk."""
        return self._buffered

    @property
    def chunks_emitted(self) -> int:
        """Chunks returned so far."""
        return self._next_index

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
        if self._buffered >= FLUSH_FACTOR * self.chunk_size:
            return self._split(final=False)
        return []

    def finish(self) -> list[Chunk]:
        """Split what is left at the end of the document.

        Returns:
            The remaining chunks (none if the document had no text).
        """
        if self._finished:
            return []
        self._finished = True
        return self._split(final=True)

    def _add(self, text: str) -> None:
        self._parts.append(text)
        self._buffered += len(text)
        self._length += len(text)

    def _split(self, *, final: bool) -> list[Chunk]:
        """Split the buffer; keep its tail from the last chunk unless ``final``."""
        buffer = "".join(self._parts)
        spans: list[tuple[int, str]] = []
        search_from = 0
        for text in self._splitter.split_text(buffer):
            position = buffer.find(text, search_from)
            if position < 0:  # pragma: no cover - the splitter returns substrings, in order
                logger.warning("chunk text not found after offset %d; searching from 0", search_from)
                position = buffer.find(text)
            if spans and position == spans[-1][0]:
                # langchain sometimes emits a chunk and then a longer one from
                # the same start: keep only the longer.
                if len(text) <= len(spans[-1][1]):
                    continue
                spans.pop()
            elif spans and position + len(text) <= spans[-1][0] + len(spans[-1][1]):
                continue  # contained in the previous chunk: adds nothing
            spans.append((position, text))
            search_from = max(position, position + len(text) - self.chunk_overlap)
        if not final:
            if len(spans) < 2:
                self._parts = [buffer]
                return []
            keep_from = spans[-1][0]
            spans = spans[:-1]
            self._parts = [buffer[keep_from:]]
            self._buffered = len(buffer) - keep_from
        else:
            self._parts = []
            self._buffered = 0
            keep_from = len(buffer)
        chunks = [self._make_chunk(self._buffer_start + pos, text) for pos, text in spans]
        self._buffer_start += keep_from
        self._forget_pages_before(self._buffer_start)
        return chunks

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


def _make_splitter(chunk_size: int, chunk_overlap: int, *, markdown: bool) -> RecursiveCharacterTextSplitter:
    """Build the langchain splitter, measuring length in characters."""
    if markdown:
        return RecursiveCharacterTextSplitter.from_language(
            Language.MARKDOWN,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            length_function=len,
            strip_whitespace=True,
        )
    return RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        length_function=len,
        strip_whitespace=True,
        keep_separator=True,
    )
