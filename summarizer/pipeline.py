"""Map-reduce summarization over an async stream of chunks, as an async stream of events.

The shape is LangChain's map-reduce summarization (``token_max`` collapse, as in
``langchain_classic``'s ``ReduceDocumentsChain`` and the LangGraph recipe), but
streaming from end to end:

* **map**: every chunk is summarized with ``MAP_PROMPT | model | StrOutputParser()``
  as soon as the chunk exists, at most ``concurrency`` calls at once. Chunks are
  pulled eagerly (they are small) so the total is known early; only model calls
  are bounded.
* **collapse**: while the summaries together exceed ``reduce_budget_chars``, they
  are grouped (consecutive, each group within the budget) and every group is
  summarized with ``COLLAPSE_PROMPT``; repeat, one level at a time.
* **reduce**: ``REDUCE_PROMPT`` writes the final summary, streamed.

Every model call is streamed: its pieces become ``chunk.token``,
``collapse.token`` or ``summary.token`` events, followed by the call's full text,
which is exactly the pieces joined. Events carry no ``job_id``/``seq``: the job
stamps them. The module knows nothing about sockets, jobs or storage::

    async for event in summarize_chunks(chunks, model=ExtractiveChatModel()):
        print(event.type)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from .errors import ErrorCode, ModelError, NoTextError, SummarizerError
from .ingest.types import Chunk
from .prompts import COLLAPSE_PROMPT, MAP_PROMPT, REDUCE_PROMPT, fence, page_label
from .protocol import (
    ChunkStarted,
    ChunkSummary,
    ChunkToken,
    Collapse,
    CollapseSummary,
    CollapseToken,
    Progress,
    Stage,
    Summary,
    SummaryToken,
)

__all__ = ["Piece", "PipelineConfig", "PriorResults", "group_pieces", "summarize_chunks"]

Event = Any
"""One of the server events of :mod:`summarizer.protocol`, without ``seq``."""

_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Knobs of the map-reduce.

    Attributes:
        concurrency: Model calls at once (map, and collapse within a level); default 4.
        map_words: Target words per chunk summary; default 80.
        summary_words: Target words of the final summary; default 250.
        reduce_budget_chars: Largest input of one collapse or reduce call, in
            characters (about 4 per token); default 12,000. The ``token_max`` of
            LangChain's map-reduce, counted in characters.
        max_collapse_levels: Collapse levels allowed before giving up; default 8.
        model_name: Name reported in the ``summary`` event.
    """

    concurrency: int = 4
    map_words: int = 80
    summary_words: int = 250
    reduce_budget_chars: int = 12_000
    max_collapse_levels: int = 8
    model_name: str = ""

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.reduce_budget_chars < 1:
            raise ValueError(f"reduce_budget_chars must be positive, got {self.reduce_budget_chars}")


@dataclass(frozen=True, slots=True)
class Piece:
    """A summary and the pages it covers (1-based, inclusive)."""

    first_page: int
    last_page: int
    text: str

    @property
    def pages(self) -> tuple[int, int]:
        """``(first_page, last_page)``."""
        return (self.first_page, self.last_page)


@dataclass(slots=True)
class PriorResults:
    """Model outputs a previous run of the same job already produced (after a crash).

    A chunk or collapse group found here is not sent to the model again and
    emits no events (its events are already in the job's log).

    Attributes:
        maps: Chunk index → chunk summary text.
        collapses: ``(level, group)`` → collapse output text.
    """

    maps: dict[int, str] = field(default_factory=dict)
    collapses: dict[tuple[int, int], str] = field(default_factory=dict)


def joined_length(pieces: list[Piece]) -> int:
    """Characters of the pieces' texts joined by blank lines."""
    if not pieces:
        return 0
    return sum(len(p.text) for p in pieces) + len(_SEPARATOR) * (len(pieces) - 1)


def group_pieces(pieces: list[Piece], budget: int) -> list[list[Piece]]:
    """Split consecutive pieces into groups whose joined length fits ``budget``.

    Greedy and order-preserving, like LangChain's ``split_list_of_docs``, except
    that a single piece longer than the budget forms a group of its own instead
    of raising (collapsing it alone still shortens it).

    Args:
        pieces: Summaries in document order.
        budget: Characters allowed per group.

    Returns:
        Non-empty groups, in order, that together hold every piece once.
    """
    groups: list[list[Piece]] = []
    current: list[Piece] = []
    size = 0
    for piece in pieces:
        extra = len(piece.text) + (len(_SEPARATOR) if current else 0)
        if current and size + extra > budget:
            groups.append(current)
            current, size = [], 0
            extra = len(piece.text)
        current.append(piece)
        size += extra
    if current:
        groups.append(current)
    return groups


def _chain(prompt: ChatPromptTemplate, model: Runnable[Any, Any]) -> Runnable[dict[str, Any], str]:
    return prompt | model | StrOutputParser()


class _Run:
    """State of one pipeline run; events go to ``emit`` in the order they happen."""

    def __init__(
        self,
        model: Runnable[Any, Any],
        reduce_model: Runnable[Any, Any],
        config: PipelineConfig,
        emit: Callable[[Event], None],
        clock: Callable[[], float],
        started: float,
        prior: PriorResults,
    ) -> None:
        self.config = config
        self.prior = prior
        self.emit = emit
        self.clock = clock
        self.started = started
        self.map_chain = _chain(MAP_PROMPT, model)
        self.collapse_chain = _chain(COLLAPSE_PROMPT, model)
        self.reduce_chain = _chain(REDUCE_PROMPT, reduce_model)
        self.limit = asyncio.Semaphore(config.concurrency)
        self.calls = {"map": 0, "collapse": 0, "reduce": 0}
        self.summaries: dict[int, Piece] = {}
        self.total: int | None = None
        self.map_started: float | None = None

    def elapsed(self) -> float:
        return round(self.clock() - self.started, 3)

    async def _stream(
        self, chain: Runnable[dict[str, Any], str], inputs: dict[str, Any], on_text: Callable[[str], None]
    ) -> str:
        parts: list[str] = []
        try:
            async for text in chain.astream(inputs):
                if text:
                    parts.append(text)
                    on_text(text)
        except (SummarizerError, asyncio.CancelledError):
            raise
        except Exception as exc:  # provider errors of every kind
            raise ModelError(f"The model call failed: {type(exc).__name__}: {exc}") from exc
        return "".join(parts)

    # -- map ----------------------------------------------------------------------

    async def map_all(self, chunks: AsyncIterable[Chunk]) -> list[Piece]:
        count = 0
        async with asyncio.TaskGroup() as group:
            async for chunk in chunks:
                if self.map_started is None:
                    self.map_started = self.clock()
                group.create_task(self.map_one(chunk))
                count += 1
            self.total = count
            self.emit_map_progress()
        return [self.summaries[i] for i in range(count)]

    async def map_one(self, chunk: Chunk) -> None:
        if chunk.index in self.prior.maps:
            self.summaries[chunk.index] = Piece(chunk.first_page, chunk.last_page, self.prior.maps[chunk.index])
            return
        async with self.limit:
            pages = chunk.pages
            self.emit(ChunkStarted(index=chunk.index, pages=pages, characters=len(chunk.text)))
            began = self.clock()
            self.calls["map"] += 1
            text = await self._stream(
                self.map_chain,
                {
                    "text": fence(chunk.text),
                    "words": self.config.map_words,
                    "pages": page_label(*pages),
                },
                lambda t: self.emit(ChunkToken(index=chunk.index, pages=pages, text=t)),
            )
            self.summaries[chunk.index] = Piece(chunk.first_page, chunk.last_page, text)
            self.emit(
                ChunkSummary(
                    index=chunk.index, pages=pages, text=text, elapsed_s=round(self.clock() - began, 3)
                )
            )
            self.emit_map_progress()

    def emit_map_progress(self) -> None:
        done = len(self.summaries)
        eta: float | None = None
        if self.total is not None and done and self.map_started is not None:
            eta = round((self.clock() - self.map_started) / done * (self.total - done), 1)
        self.emit(Progress(stage="map", done=done, total=self.total, elapsed_s=self.elapsed(), eta_s=eta))

    # -- collapse ------------------------------------------------------------------

    async def collapse_until_fits(self, pieces: list[Piece]) -> list[Piece]:
        level = 0
        while len(pieces) > 1 and joined_length(pieces) > self.config.reduce_budget_chars:
            level += 1
            if level > self.config.max_collapse_levels:
                raise ModelError(
                    f"The summaries still take {joined_length(pieces)} characters after "
                    f"{self.config.max_collapse_levels} collapse levels, more than the reduce "
                    f"budget of {self.config.reduce_budget_chars}: the model's summaries are too long."
                )
            new = await self.collapse_level(level, pieces)
            if joined_length(new) >= joined_length(pieces):
                raise ModelError(
                    f"Collapse level {level} did not shorten the summaries "
                    f"({joined_length(pieces)} → {joined_length(new)} characters)."
                )
            pieces = new
        return pieces

    async def collapse_level(self, level: int, pieces: list[Piece]) -> list[Piece]:
        """Summarize every budget-sized group of ``pieces`` concurrently; one piece per group."""
        groups = group_pieces(pieces, self.config.reduce_budget_chars)
        self.emit(Collapse(level=level, groups=len(groups), characters=joined_length(pieces)))
        tracker = _StageProgress("collapse", len(groups), self)
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(self.collapse_group(level, i, group, tracker))
                for i, group in enumerate(groups)
            ]
        return [task.result() for task in tasks]

    async def collapse_group(
        self, level: int, index: int, group: list[Piece], tracker: _StageProgress
    ) -> Piece:
        pages = (group[0].first_page, group[-1].last_page)
        if (level, index) in self.prior.collapses:
            tracker.step()
            return Piece(pages[0], pages[1], self.prior.collapses[(level, index)])
        async with self.limit:
            self.calls["collapse"] += 1
            text = await self._stream(
                self.collapse_chain,
                {"text": fence(_SEPARATOR.join(p.text for p in group)), "words": self.config.summary_words},
                lambda t: self.emit(CollapseToken(level=level, group=index, pages=pages, text=t)),
            )
            self.emit(CollapseSummary(level=level, group=index, pages=pages, text=text))
            tracker.step()
            return Piece(pages[0], pages[1], text)

    # -- reduce --------------------------------------------------------------------

    async def reduce(self, pieces: list[Piece]) -> Summary:
        self.emit(Progress(stage="reduce", done=0, total=1, elapsed_s=self.elapsed()))
        self.calls["reduce"] += 1
        text = await self._stream(
            self.reduce_chain,
            {"text": fence(_SEPARATOR.join(p.text for p in pieces)), "words": self.config.summary_words},
            lambda t: self.emit(SummaryToken(text=t)),
        )
        self.emit(Progress(stage="reduce", done=1, total=1, elapsed_s=self.elapsed(), eta_s=0.0))
        return Summary(
            text=text, elapsed_s=self.elapsed(), calls=dict(self.calls), model=self.config.model_name
        )

    async def run(self, chunks: AsyncIterable[Chunk]) -> None:
        pieces = await self.map_all(chunks)
        if not pieces:
            raise NoTextError("The document has no text to summarize.", code=ErrorCode.EMPTY_DOCUMENT)
        pieces = await self.collapse_until_fits(pieces)
        self.emit(await self.reduce(pieces))


class _StageProgress:
    """Counts finished calls of one stage and emits ``progress`` with an ETA."""

    def __init__(self, stage: Stage, total: int, run: _Run) -> None:
        self.stage: Stage = stage
        self.total = total
        self.done = 0
        self.run = run
        self.began = run.clock()

    def step(self) -> None:
        self.done += 1
        spent = self.run.clock() - self.began
        eta = round(spent / self.done * (self.total - self.done), 1)
        self.run.emit(
            Progress(
                stage=self.stage, done=self.done, total=self.total, elapsed_s=self.run.elapsed(), eta_s=eta
            )
        )


_DONE = object()


async def summarize_chunks(
    chunks: AsyncIterable[Chunk],
    model: BaseChatModel | Runnable[Any, Any],
    *,
    config: PipelineConfig | None = None,
    reduce_model: BaseChatModel | Runnable[Any, Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
    started: float | None = None,
    prior: PriorResults | None = None,
) -> AsyncIterator[Event]:
    """Summarize a stream of chunks with map-reduce, yielding protocol events.

    Args:
        chunks: Chunks in document order (``index`` 0, 1, ...), e.g. from
            :func:`summarizer.ingest.iter_chunks`; consumed as they arrive.
        model: Any LangChain chat model (or runnable taking a prompt value).
        config: :class:`PipelineConfig`; defaults apply if ``None``.
        reduce_model: Model for the final reduce; defaults to ``model``.
        clock: Monotonic clock in seconds (injectable for tests).
        started: Clock reading that ``elapsed_s`` counts from; defaults to now.
        prior: Outputs of an earlier run of the same job to reuse (no model
            call, no events for them).

    Yields:
        ``chunk.started``/``chunk.token``/``chunk.summary``/``progress`` per
        chunk (interleaved across concurrent calls), then per collapse level
        ``collapse`` and its ``collapse.*`` and ``progress`` events, then
        ``summary.token`` events and finally one ``summary``.

    Raises:
        ModelError: A model call failed, or collapsing does not converge.
        NoTextError: ``chunks`` was empty.
        SummarizerError: Whatever the chunk source raised (e.g. a damaged PDF).
    """
    cfg = config or PipelineConfig()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    run = _Run(
        model,
        reduce_model or model,
        cfg,
        queue.put_nowait,
        clock,
        clock() if started is None else started,
        prior or PriorResults(),
    )

    async def runner() -> None:
        try:
            await run.run(chunks)
        finally:
            queue.put_nowait(_DONE)

    task = asyncio.create_task(runner())
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                break
            yield item
        await _unwrap(task)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _unwrap(task: asyncio.Task[None]) -> None:
    """Await ``task``, re-raising the first error of an ``ExceptionGroup`` plainly."""
    try:
        await task
    except BaseExceptionGroup as group:
        raise _first_leaf(group) from None


def _first_leaf(group: BaseExceptionGroup[Any]) -> BaseException:
    """The most meaningful exception inside a (nested) TaskGroup error."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for leaf in leaves:
        if isinstance(leaf, SummarizerError):
            return leaf
    return leaves[0]
