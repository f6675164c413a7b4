"""Map-reduce summarization over an async stream of chunks, as an async stream of events.

The shape is LangChain's map-reduce summarization (``token_max`` collapse, as in
``langchain_classic``'s ``ReduceDocumentsChain`` and the LangGraph recipe), but
streaming from end to end:

* **map**: every chunk is summarized with ``MAP_PROMPT`` as soon as the chunk
  exists, at most ``concurrency`` calls at once. Chunks are pulled eagerly (they
  are small) so the total is known early; only model calls are bounded.
* **collapse**: while the summaries together exceed ``reduce_budget_chars``, they
  are grouped (consecutive, each group within the budget) and every group is
  summarized with ``COLLAPSE_PROMPT``; repeat, one level at a time.
* **reduce**: ``REDUCE_PROMPT`` writes the final summary, streamed.

Every model call is streamed: its pieces become ``chunk.token``,
``collapse.token`` or ``summary.token`` events, followed by the full text, which
is exactly the pieces after the last ``*.restart`` event joined. Events carry no
``job_id``/``seq``: the job stamps them. The module knows nothing about sockets,
jobs or storage::

    async for event in summarize_chunks(chunks, model=ExtractiveChatModel()):
        print(event.type)

Real models fail, so every call is guarded (see :mod:`summarizer.models.retry`):

* **timeouts**: the first streamed piece must come within ``read_timeout_s``,
  every further one within ``stall_timeout_s`` (``asyncio.timeout`` per piece);
* **retries** on 429, 5xx, dropped connections, timeouts and malformed streams,
  with exponential backoff and jitter, honouring ``Retry-After``. If some text
  of the failed attempt was already streamed, a ``chunk.restart`` (or
  ``collapse.restart``, ``summary.restart``) event tells clients to discard it;
* **context overflow**: a chunk or collapse group the model rejects as too long
  is split in two halves that are summarized separately and joined; a reduce
  that is too long is collapsed further;
* **partial results**: a chunk that still fails is reported (``chunk.failed``)
  and left out; the reduce prompt and ``summary.missing_pages`` say which pages
  are missing. With ``strict`` (and always for authentication and unknown-model
  errors, which would fail every chunk) the job fails instead;
* **usage**: tokens per call from ``usage_metadata`` (estimated when absent),
  totals and cost in the ``summary`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.runnables import Runnable

from .errors import (
    AuthenticationFailed,
    ContextTooLong,
    ErrorCode,
    ModelCallError,
    ModelError,
    ModelNotFound,
    ModelTimeout,
    NoTextError,
    SummarizerError,
)
from .ingest.ocr import ocr_eta, page_ranges
from .ingest.types import Chunk, IngestProgress
from .models.pricing import cost_usd
from .models.retry import classify_error
from .models.streaming import fast_path_reason, open_stream, stream_chunk_timeout
from .models.usage import TokenCount, UsageLedger
from .pacing import take_turn
from .plan import (
    SEPARATOR as _SEPARATOR,
)
from .plan import (
    CallEstimate,
    Piece,
    PipelineConfig,
    StepEstimate,
    block_length,
    estimate_calls,
    group_pieces,
    joined_length,
)
from .plan import (
    estimated_tokens as _tokens,
)
from .prompts import (
    COLLAPSE_PROMPT,
    MAP_PROMPT,
    REDUCE_PROMPT,
    collapse_inputs,
    map_inputs,
    reduce_inputs,
)
from .protocol import (
    ChunkFailed,
    ChunkRestart,
    ChunkStarted,
    ChunkSummary,
    ChunkToken,
    Collapse,
    CollapseRestart,
    CollapseSummary,
    CollapseToken,
    Document,
    JobWarning,
    Progress,
    ServerEvent,
    SkippedPages,
    Stage,
    Summary,
    SummaryRestart,
    SummaryToken,
    Usage,
)

if TYPE_CHECKING:
    pass

__all__ = [
    "CallEstimate",
    "EventSink",
    "IngestEvents",
    "Piece",
    "PipelineConfig",
    "PriorResults",
    "StepEstimate",
    "estimate_calls",
    "group_pieces",
    "merge_ranges",
    "split_text",
    "summarize_chunks",
    "summarize_into",
]

log = logging.getLogger(__name__)

Event = ServerEvent
"""One of the server events of :mod:`summarizer.protocol`, without ``seq``."""

EventSink = Callable[[ServerEvent], None]
"""Where the pipeline and ingestion put their events, in the order they happen
(a job's :class:`~summarizer.jobs.EventLog` stamps and stores them)."""

_MIN_SPLIT_CHARS = 200
"""Texts shorter than this (characters) are not split further on a context overflow."""
_FATAL = (AuthenticationFailed, ModelNotFound)
"""Failures that would hit every chunk alike: they end the job even when not strict."""


@dataclass(slots=True)
class PriorResults:
    """Model outputs a previous run of the same job already produced (after a crash).

    A chunk or collapse group found here is not sent to the model again and
    emits no events (its events are already in the job's log).

    Attributes:
        maps: Chunk index → chunk summary text.
        collapses: ``(level, group)`` → collapse output text.
        failed: Chunk index → ``(error code, message)`` of a chunk reported as
            failed (``chunk.failed``); it stays left out.
    """

    maps: dict[int, str] = field(default_factory=dict)
    collapses: dict[tuple[int, int], str] = field(default_factory=dict)
    failed: dict[int, tuple[str, str]] = field(default_factory=dict)


_BREAKS = (re.compile(r"\n\s*\n"), re.compile(r"(?<=[.!?])\s+"), re.compile(r"\s+"))


def split_text(text: str, min_chars: int = _MIN_SPLIT_CHARS) -> tuple[str, str] | None:
    """Split ``text`` in two halves at the break nearest its middle.

    Prefers a paragraph break, then a sentence end, then any white space, within
    the middle half of the text; else cuts in the middle.

    Args:
        text: The text to halve.
        min_chars: Texts shorter than this are not split.

    Returns:
        ``(first, second)`` (both non-empty, stripped), or ``None`` if ``text`` is too short.
    """
    text = text.strip()
    if len(text) < max(min_chars, 2):
        return None
    middle = len(text) // 2
    low, high = len(text) // 4, 3 * len(text) // 4
    for pattern in _BREAKS:
        best: tuple[int, int] | None = None
        for match in pattern.finditer(text, low, high):
            if best is None or abs(match.start() - middle) < abs(best[0] - middle):
                best = (match.start(), match.end())
        if best is not None:
            first, second = text[: best[0]].strip(), text[best[1] :].strip()
            if first and second:
                return first, second
    return text[:middle].strip(), text[middle:].strip()


def merge_ranges(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sort page ranges and merge those that overlap or touch: ``[(3, 4), (5, 6)]`` → ``[(3, 6)]``."""
    out: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def _usage_event(count: TokenCount | None) -> Usage | None:
    if count is None:
        return None
    return Usage(
        input_tokens=count.input_tokens, output_tokens=count.output_tokens, total_tokens=count.total_tokens
    )


def _reason(error: SummarizerError) -> str:
    message = error.message if len(error.message) <= 200 else error.message[:199] + "…"
    return f"{error.code.value}: {message}"


_COALESCERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, _Coalescer]] = (
    weakref.WeakKeyDictionary()
)
"""Each event loop's coalescers, by period (see :meth:`_Coalescer.of`)."""


class _Coalescer:
    """Sends the held pieces of every :class:`_Output` of one event loop, every ``period`` seconds.

    One timer for all the units that hold pieces (not one per unit and window);
    it stops when nothing is held. Get it with :meth:`of`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, period: float) -> None:
        self.loop = loop
        self.period = period
        self._held: dict[_Output, None] = {}
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def of(cls, period: float) -> _Coalescer:
        """The running loop's coalescer for ``period`` seconds (created on first use)."""
        loop = asyncio.get_running_loop()
        by_period = _COALESCERS.setdefault(loop, {})
        coalescer = by_period.get(period)
        if coalescer is None:
            coalescer = by_period[period] = cls(loop, period)
        return coalescer

    def hold(self, out: _Output) -> None:
        """``out`` holds pieces now: send them at the next tick."""
        self._held[out] = None
        if self._timer is None:
            self._timer = self.loop.call_later(self.period, self._tick)

    def release(self, out: _Output) -> None:
        """``out`` sent (or dropped) its held pieces itself."""
        self._held.pop(out, None)

    def _tick(self) -> None:
        self._timer = None
        held, self._held = self._held, {}
        for out in held:
            out._send_held()


class _Output:
    """The streamed text of one unit (a chunk, a collapse group, the summary).

    A unit may take several calls: retries, and halves after a context overflow.
    Text of finished calls is *committed*; text of the running call is
    *pending* until the call ends. A retry discards the pending text: the
    ``restart`` callback is called (the client drops everything it has of the
    unit) and the committed text is sent again as one token, so that the
    tokens after the last restart always join to the unit's text.
    """

    def __init__(
        self,
        on_token: Callable[[str], None],
        on_restart: Callable[[int, str], None],
        coalesce_s: float = 0.0,
    ) -> None:
        self.on_token = on_token
        self.on_restart = on_restart
        self.committed: list[str] = []
        self.pending: list[str] = []
        self.calls = 0
        self.usage: TokenCount | None = None
        # Token coalescing: a piece goes out at once when the unit sent nothing in the
        # last ``coalesce_s`` seconds; otherwise it is held, and every held piece of the
        # event loop goes out at the next tick of its _Coalescer (at most ``coalesce_s``
        # later), one token event per unit. So a steady stream becomes one event per
        # ``coalesce_s`` per unit, whatever the loop's delays, and a lone piece waits for nothing.
        self._coalesce_s = coalesce_s
        self._held: list[str] = []
        self._last_sent = -math.inf
        self._coalescer: _Coalescer | None = None

    def _send(self, piece: str) -> None:
        if self._coalesce_s <= 0:
            self.on_token(piece)
            return
        if self._coalescer is None:
            self._coalescer = _Coalescer.of(self._coalesce_s)
        now = self._coalescer.loop.time()
        if not self._held and now - self._last_sent >= self._coalesce_s:
            self._last_sent = now
            self.on_token(piece)
            return
        if not self._held:
            self._coalescer.hold(self)
        self._held.append(piece)

    def close(self) -> None:
        """End the unit: no held piece is sent any more (a failed or cancelled call's)."""
        if self._held and self._coalescer is not None:
            self._coalescer.release(self)
        self._held.clear()

    def flush(self) -> None:
        """Send the held pieces now as one token."""
        if self._held:
            if self._coalescer is not None:
                self._coalescer.release(self)
            self._send_held()

    def _send_held(self) -> None:
        if not self._held:
            return
        piece = "".join(self._held)
        self._held.clear()
        if self._coalescer is not None:
            self._last_sent = self._coalescer.loop.time()
        self.on_token(piece)

    @property
    def text(self) -> str:
        """Everything committed so far."""
        return "".join(self.committed)

    def begin(self) -> None:
        self.calls += 1

    def add(self, piece: str) -> None:
        self.pending.append(piece)
        self._send(piece)

    def discard(self, reason: str) -> None:
        self.flush()
        if not self.pending:
            return
        self.pending.clear()
        self.on_restart(self.calls + 1, reason)
        if self.committed:
            self.on_token(self.text)

    def commit(self, usage: TokenCount) -> str:
        self.flush()
        piece = "".join(self.pending)
        self.committed.append(piece)
        self.pending.clear()
        if self.usage is None:
            self.usage = TokenCount()
        self.usage.add(usage)
        return piece

    def separator(self, text: str) -> None:
        self.flush()
        self.committed.append(text)
        self.on_token(text)


def _shorter(a: float | None, b: float | None) -> float | None:
    """The shorter of two optional timeouts (``None``: no limit)."""
    if a is None:
        return b
    return a if b is None else min(a, b)


class _Watchdog:
    """The first-piece and stall timeouts of one streamed call, with one timer for the call.

    ``asyncio.timeout`` around every piece would create and cancel a timer per
    piece; here :meth:`progress` only notes the time, and the timer, when it
    fires, re-arms itself for the latest piece's deadline, or expires the call's
    ``asyncio.timeout`` if that deadline has passed.

    Args:
        first_s: Longest wait for the first piece (seconds), ``None``: no limit.
        stall_s: Longest wait between two pieces (seconds), ``None``: no limit.
    """

    def __init__(self, first_s: float | None, stall_s: float | None) -> None:
        self.first_s = first_s
        self.stall_s = stall_s
        self.wait = first_s
        self.fired: str | None = None
        """``"first"`` or ``"stall"`` once a timeout expired the call."""
        self._first = True
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._deadline: asyncio.Timeout | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self, deadline: asyncio.Timeout) -> None:
        self._deadline = deadline
        self._last = self._loop.time()
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.wait is not None:
            self._timer = self._loop.call_at(self._last + self.wait, self._check)

    def progress(self) -> None:
        """A piece arrived: from now on the stall timeout counts from here."""
        self._last = self._loop.time()
        if self._first:
            self._first = False
            self.wait = self.stall_s
            self._arm()

    def _check(self) -> None:
        self._timer = None
        if self.wait is None or self._deadline is None:
            return
        now = self._loop.time()
        due = self._last + self.wait
        if now < due:
            self._timer = self._loop.call_at(due, self._check)
            return
        self.fired = "first" if self._first else "stall"
        self._deadline.reschedule(now)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Run:
    """State of one pipeline run; events go to ``emit`` in the order they happen."""

    def __init__(
        self,
        model: Runnable[Any, Any],
        reduce_model: Runnable[Any, Any],
        config: PipelineConfig,
        emit: EventSink,
        clock: Callable[[], float],
        started: float,
        prior: PriorResults,
    ) -> None:
        self.config = config
        self.prior = prior
        self.emit = emit
        self.clock = clock
        self.started = started
        self.limiters: dict[int, BaseRateLimiter] = {}
        self.model = self._take_limiter(model)
        self.reduce_model = self.model if reduce_model is model else self._take_limiter(reduce_model)
        self.map_name = config.model_name
        self.reduce_name = config.reduce_model_name or config.model_name
        self.policy = config.retry_policy
        self.limit = asyncio.Semaphore(config.concurrency)
        self.halted = False  # an error is ending the run: no call waiting for a slot starts
        self.calls = {"map": 0, "collapse": 0, "reduce": 0}
        self.retries = 0
        self.usage = UsageLedger()
        self.level = 0
        self.summaries: dict[int, Piece] = {}
        self.failed: dict[int, tuple[tuple[int, int], ModelError]] = {}
        self.total: int | None = None
        self.map_started: float | None = None
        self.title: str | None = None  # the document's, from its first chunk, for map and collapse prompts
        self.final_title: str | None = None  # from its last chunk, for the reduce (a cover completes it late)

    def _take_limiter(self, model: Runnable[Any, Any]) -> Runnable[Any, Any]:
        """Take over a chat model's rate limiter, so that waiting for it is not a timeout.

        ``BaseChatModel`` waits for its ``rate_limiter`` inside the streaming
        call, where the first-token timeout already runs; the pipeline waits for
        it itself, before the call, on a copy of the model without it.
        """
        limiter = getattr(model, "rate_limiter", None)
        if not isinstance(model, BaseChatModel) or not isinstance(limiter, BaseRateLimiter):
            return model
        copy = model.model_copy(update={"rate_limiter": None})
        self.limiters[id(copy)] = limiter
        return copy

    def elapsed(self) -> float:
        return round(self.clock() - self.started, 3)

    # -- one model call ------------------------------------------------------------

    async def _stream_once(
        self, model: Runnable[Any, Any], prompt: ChatPromptTemplate, inputs: dict[str, Any], out: _Output
    ) -> TokenCount:
        """Stream one call into ``out``; its usage (reported, else estimated).

        Raises:
            ModelTimeout: No first piece within ``read_timeout_s``, or no next
                one within ``stall_timeout_s``.
        """
        # Calls that start together (a hundred jobs' maps ending at once) take turns.
        await take_turn()
        value = prompt.format_prompt(**inputs)
        limiter = self.limiters.get(id(model))
        if limiter is not None:
            await limiter.aacquire(blocking=True)
        reported: TokenCount | None = None
        produced = 0
        fast = self.config.openai_fast_path and fast_path_reason(model) is None
        iterator = open_stream(model, value, fast=fast)
        own = stream_chunk_timeout(model) if fast else None
        watchdog = _Watchdog(
            _shorter(self.config.read_timeout_s, own), _shorter(self.config.stall_timeout_s, own)
        )
        try:
            async with asyncio.timeout(None) as deadline:
                watchdog.start(deadline)
                async for piece, counted in iterator:
                    watchdog.progress()
                    if piece:
                        produced += len(piece)
                        out.add(piece)
                    if counted is not None:
                        reported = reported or TokenCount()
                        reported.add(counted)
        except TimeoutError as exc:
            if watchdog.fired is None:
                raise
            what = "sent no first token" if watchdog.fired == "first" else "stalled: no new token"
            raise ModelTimeout(f"The model {what} for {watchdog.wait:g} s.") from exc
        finally:
            watchdog.stop()
            with contextlib.suppress(Exception):
                await iterator.aclose()  # type: ignore[attr-defined]
        if reported is None:
            prompt_chars = sum(len(str(m.content)) for m in value.to_messages())
            reported = TokenCount(_tokens(prompt_chars), _tokens(produced))
        return reported

    async def _call(
        self,
        step: str,
        model_name: str,
        model: Runnable[Any, Any],
        prompt: ChatPromptTemplate,
        inputs: dict[str, Any],
        out: _Output,
    ) -> str:
        """One model call with retries; its text is committed to ``out`` and returned.

        Raises:
            ModelCallError: The call failed and retrying cannot help (or the
                retries are spent); a :class:`ContextTooLong` at once.
        """
        retries = 0
        while True:
            out.begin()
            try:
                usage = await self._stream_once(model, prompt, inputs, out)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = classify_error(exc, model=model_name)
                if (
                    isinstance(error, ContextTooLong)
                    or not error.retryable
                    or retries >= self.policy.max_retries
                ):
                    raise self._give_up(error, retries) from exc
                retries += 1
                self.retries += 1
                after = error.retry_after_s if isinstance(error, ModelCallError) else None
                delay = self.policy.delay(retries, after)
                log.warning(
                    "%s call failed (%s); retry %d/%d in %.2f s",
                    step,
                    _reason(error),
                    retries,
                    self.policy.max_retries,
                    delay,
                )
                out.discard(_reason(error))
                await asyncio.sleep(delay)
                continue
            self.calls[step] += 1
            self.usage.add(model_name, usage)
            return out.commit(usage)

    def _give_up(self, error: SummarizerError, retries: int) -> SummarizerError:
        """``error`` with the retries made (and, for a rate limit, when to try again) in its message."""
        if not isinstance(error, ModelCallError) or retries == 0:
            return error
        message = f"{error.message} Gave up after {retries} {'retry' if retries == 1 else 'retries'}."
        if error.code is ErrorCode.RATE_LIMITED and error.retryable:
            after = error.retry_after_s if error.retry_after_s is not None else self.policy.max_s
            message += f" Try again in {max(1, math.ceil(after))} s."
        return type(error)(
            message,
            code=error.code,
            retryable=error.retryable,
            retry_after_s=error.retry_after_s,
            status=error.status,
        )

    # -- map ----------------------------------------------------------------------

    async def map_all(self, chunks: AsyncIterable[Chunk]) -> list[Piece]:
        count = 0
        async with asyncio.TaskGroup() as group:
            async for chunk in chunks:
                if self.map_started is None:
                    self.map_started = self.clock()
                self.final_title = chunk.title or self.final_title
                group.create_task(self.map_one(chunk))
                count += 1
            self.total = count
            self.emit_map_progress()
        return [self.summaries[i] for i in range(count) if i in self.summaries]

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One of the ``concurrency`` call slots; none is handed out once an error ends the run.

        A call that fails the run frees its slot before its task group cancels
        the others: the next waiting call would otherwise start (a paid request)
        in that window.

        Raises:
            asyncio.CancelledError: The run is ending (an earlier call raised).
        """
        async with self.limit:
            if self.halted:
                raise asyncio.CancelledError
            try:
                yield
            except asyncio.CancelledError:
                raise
            except BaseException:
                self.halted = True
                raise

    async def map_one(self, chunk: Chunk) -> None:
        self.title = self.title or chunk.title
        if chunk.index in self.prior.maps:
            self.summaries[chunk.index] = Piece(
                chunk.first_page, chunk.last_page, self.prior.maps[chunk.index]
            )
            return
        if chunk.index in self.prior.failed:
            code, message = self.prior.failed[chunk.index]
            self.failed[chunk.index] = (chunk.pages, ModelError(message, code=ErrorCode(code)))
            return
        async with self.slot():
            index, pages = chunk.index, chunk.pages
            self.emit(ChunkStarted(index=index, pages=pages, characters=len(chunk.text), ocr=chunk.ocr))
            began = self.clock()
            out = _Output(
                lambda t: self.emit(ChunkToken(index=index, pages=pages, text=t)),
                lambda attempt, reason: self.emit(
                    ChunkRestart(index=index, pages=pages, attempt=attempt, reason=reason)
                ),
                self.config.token_coalesce_s,
            )
            try:
                with contextlib.closing(out):
                    await self._map_text(chunk.text, pages, self.config.map_words, out, depth=0)
            except ModelError as error:
                if self.config.strict or isinstance(error, _FATAL):
                    raise
                log.warning("chunk %d (pages %d-%d) failed: %s", index, *pages, _reason(error))
                self.failed[index] = (pages, error)
                self.emit(ChunkFailed(index=index, pages=pages, code=error.code, message=error.message))
                self.emit_map_progress()
                return
            text = out.text
            self.summaries[index] = Piece(chunk.first_page, chunk.last_page, text)
            self.emit(
                ChunkSummary(
                    index=index,
                    pages=pages,
                    text=text,
                    elapsed_s=round(self.clock() - began, 3),
                    usage=_usage_event(out.usage),
                )
            )
            self.emit_map_progress()

    async def _map_text(
        self, text: str, pages: tuple[int, int], words: int, out: _Output, depth: int
    ) -> None:
        """Summarize ``text`` into ``out``; halve it (recursively) if the model finds it too long."""
        inputs = map_inputs(text, pages, words, instructions=self.config.instructions, title=self.title)
        try:
            await self._call("map", self.map_name, self.model, MAP_PROMPT, inputs, out)
        except ContextTooLong as error:
            halves = split_text(text) if depth < self.config.max_split_depth else None
            if halves is None:
                raise _cannot_split(error, len(text), depth) from error
            log.info("map text of %d characters too long for the model: halving", len(text))
            out.discard(_reason(error))
            half_words = max(words // 2, 10)
            await self._map_text(halves[0], pages, half_words, out, depth + 1)
            out.separator(_SEPARATOR)
            await self._map_text(halves[1], pages, half_words, out, depth + 1)

    def emit_map_progress(self) -> None:
        done = len(self.summaries) + len(self.failed)
        eta: float | None = None
        if self.total is not None and done and self.map_started is not None:
            eta = round((self.clock() - self.map_started) / done * (self.total - done), 1)
        self.emit(Progress(stage="map", done=done, total=self.total, elapsed_s=self.elapsed(), eta_s=eta))

    # -- collapse ------------------------------------------------------------------

    async def collapse_until_fits(self, pieces: list[Piece], budget: int) -> list[Piece]:
        while len(pieces) > 1 and joined_length(pieces, block_length) > budget:
            self.level += 1
            if self.level > self.config.max_collapse_levels:
                raise ModelError(
                    f"The summaries still take {joined_length(pieces, block_length)} characters after "
                    f"{self.config.max_collapse_levels} collapse levels, more than the reduce "
                    f"budget of {budget}: the model's summaries are too long."
                )
            new = await self.collapse_level(self.level, pieces, budget)
            before, after = joined_length(pieces, block_length), joined_length(new, block_length)
            if after >= before:
                raise ModelError(
                    f"Collapse level {self.level} did not shorten the summaries "
                    f"({before} → {after} characters)."
                )
            pieces = new
        return pieces

    async def collapse_level(self, level: int, pieces: list[Piece], budget: int) -> list[Piece]:
        """Summarize every budget-sized group of ``pieces`` concurrently; one piece per group."""
        groups = group_pieces(pieces, budget, block_length)
        self.emit(Collapse(level=level, groups=len(groups), characters=joined_length(pieces, block_length)))
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
        async with self.slot():
            out = _Output(
                lambda t: self.emit(CollapseToken(level=level, group=index, pages=pages, text=t)),
                lambda attempt, reason: self.emit(
                    CollapseRestart(level=level, group=index, pages=pages, attempt=attempt, reason=reason)
                ),
                self.config.token_coalesce_s,
            )
            with contextlib.closing(out):
                await self._collapse_blocks(group, self.config.summary_words, out, depth=0)
            text = out.text
            self.emit(
                CollapseSummary(
                    level=level, group=index, pages=pages, text=text, usage=_usage_event(out.usage)
                )
            )
            tracker.step()
            return Piece(pages[0], pages[1], text)

    async def _collapse_blocks(self, group: list[Piece], words: int, out: _Output, depth: int) -> None:
        """Collapse ``group`` into ``out``; split it (recursively) if the model finds it too long."""
        inputs = collapse_inputs(
            [p.block for p in group], words, instructions=self.config.instructions, title=self.title
        )
        try:
            await self._call("collapse", self.map_name, self.model, COLLAPSE_PROMPT, inputs, out)
        except ContextTooLong as error:
            halves: tuple[list[Piece], list[Piece]] | None = None
            if depth < self.config.max_split_depth:
                if len(group) > 1:
                    middle = len(group) // 2
                    halves = (group[:middle], group[middle:])
                elif (texts := split_text(group[0].text)) is not None:
                    one = group[0]
                    halves = (
                        [Piece(one.first_page, one.last_page, texts[0])],
                        [Piece(one.first_page, one.last_page, texts[1])],
                    )
            if halves is None:
                raise _cannot_split(error, joined_length(group, block_length), depth) from error
            log.info("collapse group of %d summaries too long for the model: splitting", len(group))
            out.discard(_reason(error))
            half_words = max(words // 2, 20)
            await self._collapse_blocks(halves[0], half_words, out, depth + 1)
            out.separator(_SEPARATOR)
            await self._collapse_blocks(halves[1], half_words, out, depth + 1)

    # -- reduce --------------------------------------------------------------------

    def missing_pages(self) -> list[tuple[int, int]]:
        """Merged page ranges of the chunks that failed."""
        return merge_ranges([pages for pages, _ in self.failed.values()])

    async def reduce(self, pieces: list[Piece]) -> Summary:
        self.emit(Progress(stage="reduce", done=0, total=1, elapsed_s=self.elapsed()))
        out = _Output(
            lambda t: self.emit(SummaryToken(text=t)),
            lambda attempt, reason: self.emit(SummaryRestart(attempt=attempt, reason=reason)),
            self.config.token_coalesce_s,
        )
        missing = self.missing_pages()
        shrinks = 0
        with contextlib.closing(out):
            while True:
                inputs = reduce_inputs(
                    [p.block for p in pieces],
                    self.config.summary_words,
                    missing_pages=missing,
                    summary_format=self.config.summary_format,
                    language=self.config.language,
                    instructions=self.config.instructions,
                    title=self.final_title or self.title,
                )
                try:
                    await self._call(
                        "reduce", self.reduce_name, self.reduce_model, REDUCE_PROMPT, inputs, out
                    )
                    break
                except ContextTooLong as error:
                    size = joined_length(pieces, block_length)
                    if len(pieces) < 2 or shrinks >= self.config.max_split_depth:
                        raise _cannot_split(error, size, shrinks) from error
                    shrinks += 1
                    log.info("reduce input of %d characters too long for the model: collapsing further", size)
                    out.discard(_reason(error))
                    try:
                        pieces = await self.collapse_until_fits(pieces, max(size // 2, 1))
                    except ContextTooLong:
                        raise
                    except ModelError as inner:
                        raise ContextTooLong(
                            f"{error.message} Collapsing further failed: {inner.message}"
                        ) from inner
                    self.emit(Progress(stage="reduce", done=0, total=1, elapsed_s=self.elapsed()))
        self.emit(Progress(stage="reduce", done=1, total=1, elapsed_s=self.elapsed(), eta_s=0.0))
        total = self.usage.total()
        return Summary(
            text=out.text,
            elapsed_s=self.elapsed(),
            calls=dict(self.calls),
            model=self.reduce_name,
            missing_pages=missing,
            usage=_usage_event(total) if any(self.calls.values()) else None,
            cost_usd=cost_usd(self.usage, self.config.prices),
            retries=self.retries,
        )

    async def run(self, chunks: AsyncIterable[Chunk]) -> None:
        pieces = await self.map_all(chunks)
        if not pieces:
            if self.failed:
                raise _every_chunk_failed(self.failed[min(self.failed)][1])
            raise NoTextError("The document has no text to summarize.", code=ErrorCode.EMPTY_DOCUMENT)
        pieces = await self.collapse_until_fits(pieces, self.config.reduce_budget_chars)
        self.emit(await self.reduce(pieces))


def _every_chunk_failed(error: ModelError) -> ModelError:
    """The job's error when no chunk could be summarized: the first chunk's, restated."""
    message = f"No chunk could be summarized; the first failed with: {error.message}"
    if isinstance(error, ModelCallError):
        return type(error)(
            message,
            code=error.code,
            retryable=error.retryable,
            retry_after_s=error.retry_after_s,
            status=error.status,
        )
    return ModelError(message, code=error.code, retryable=error.retryable)


def _cannot_split(error: ContextTooLong, size: int, depth: int) -> ContextTooLong:
    """The error for a context overflow that splitting does not cure."""
    how = f"after halving it {depth} times" if depth else "and it cannot be split further"
    return ContextTooLong(
        f"{error.message} The text ({size} characters) is still too long for the model {how}: "
        "use a model with a larger context window or a smaller chunk size.",
        status=error.status,
    )


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


async def summarize_into(
    sink: EventSink,
    chunks: AsyncIterable[Chunk],
    model: BaseChatModel | Runnable[Any, Any],
    *,
    config: PipelineConfig | None = None,
    reduce_model: BaseChatModel | Runnable[Any, Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
    started: float | None = None,
    prior: PriorResults | None = None,
) -> None:
    """Summarize a stream of chunks with map-reduce, putting every event into ``sink``.

    The events and their order are those :func:`summarize_chunks` yields; the
    sink is called synchronously as each one happens (no queue in between).

    Args:
        sink: Receives each event (unstamped: no ``job_id``/``seq``).
        chunks, model, config, reduce_model, clock, started, prior: As for
            :func:`summarize_chunks`.

    Raises:
        As :func:`summarize_chunks`.
    """
    run = _Run(
        model,
        reduce_model or model,
        config or PipelineConfig(),
        sink,
        clock,
        clock() if started is None else started,
        prior or PriorResults(),
    )
    try:
        await run.run(chunks)
    except BaseExceptionGroup as group:
        raise _first_leaf(group) from None


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
        model: Any LangChain chat model (or runnable taking a prompt value and
            streaming message chunks or strings). Its ``rate_limiter``, if any,
            is honoured before each call.
        config: :class:`PipelineConfig`; defaults apply if ``None``.
        reduce_model: Model for the final reduce; defaults to ``model``.
        clock: Monotonic clock in seconds (injectable for tests).
        started: Clock reading that ``elapsed_s`` counts from; defaults to now.
        prior: Outputs of an earlier run of the same job to reuse (no model
            call, no events for them).

    Yields:
        ``chunk.started``/``chunk.token``/``chunk.summary``/``progress`` per
        chunk (interleaved across concurrent calls; ``chunk.restart`` before a
        retry that discards streamed text, ``chunk.failed`` for a chunk left
        out), then per collapse level ``collapse`` and its ``collapse.*`` and
        ``progress`` events, then ``summary.token`` events (and
        ``summary.restart``) and finally one ``summary``.

    Raises:
        ModelCallError: A model call failed for good: ``authentication_failed``,
            ``model_not_found``, or (in strict mode, or for a collapse, the reduce,
            or every chunk) ``rate_limited``, ``provider_unavailable``,
            ``model_timeout``, ``context_too_long`` or ``model_error``.
        ModelError: Collapsing does not converge.
        NoTextError: ``chunks`` was empty.
        SummarizerError: Whatever the chunk source raised (e.g. a damaged PDF).
    """
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def runner() -> None:
        try:
            await summarize_into(
                queue.put_nowait,
                chunks,
                model,
                config=config,
                reduce_model=reduce_model,
                clock=clock,
                started=started,
                prior=prior,
            )
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


class IngestEvents:
    """Turns ingestion's progress reports into events for a sink.

    Ingestion (:func:`summarizer.ingest.iter_chunks`) reports with an
    ``on_progress`` callback; this adapter emits ``warning`` for each new
    warning, ``progress`` (stage ``extract``) when the page count moves,
    ``progress`` (stage ``ocr``) when OCR'd pages move, and
    ``document`` once parsing has finished.

    Args:
        sink: Where the events go.
        clock: Monotonic clock in seconds.
        started: Clock reading ``elapsed_s`` counts from.
    """

    def __init__(self, sink: EventSink, clock: Callable[[], float], started: float) -> None:
        self.sink = sink
        self.clock = clock
        self.started = started
        self._pages_done = -1
        self._warnings_sent = 0
        self._last_ocr: tuple[int, int] | None = None
        self._ocr_started: float | None = None

    def __call__(self, progress: IngestProgress) -> None:
        """Emit what ``progress`` adds to what was already reported."""
        for message in progress.warnings[self._warnings_sent :]:
            self.sink(JobWarning(message=message))
        self._warnings_sent = len(progress.warnings)
        if progress.pages_done != self._pages_done or progress.finished:
            self._pages_done = progress.pages_done
            spent = self.clock() - self.started
            eta = None
            if progress.pages_total and progress.pages_done:
                eta = round(spent / progress.pages_done * (progress.pages_total - progress.pages_done), 1)
            self.sink(
                Progress(
                    stage="extract",
                    done=progress.pages_done,
                    total=progress.pages_total if not progress.finished else progress.pages_done,
                    elapsed_s=round(spent, 3),
                    eta_s=0.0 if progress.finished else eta,
                )
            )
        self._on_ocr(progress)
        if progress.finished:
            self.sink(
                Document(
                    pages=progress.pages_done,
                    characters=progress.characters,
                    chunks=progress.chunks,
                    ocr_pages=page_ranges(progress.ocr_pages),
                    map_calls=progress.chunks,
                    input_tokens=progress.input_tokens,
                    title=progress.title,
                    skipped=[
                        SkippedPages(first=s.first, last=s.last, reason=s.reason) for s in progress.skipped
                    ],
                )
            )

    def _on_ocr(self, progress: IngestProgress) -> None:
        """Progress of the ``ocr`` stage when pages are OCR'd (pages done/total, ETA)."""
        if progress.ocr_total is None:
            return
        state = (progress.ocr_done, progress.ocr_total)
        if state == self._last_ocr or (progress.ocr_total == 0 and self._last_ocr is None):
            return
        now = self.clock()
        if self._ocr_started is None:
            self._ocr_started = now
        self._last_ocr = state
        self.sink(
            Progress(
                stage="ocr",
                done=progress.ocr_done,
                total=progress.ocr_total,
                elapsed_s=round(now - self.started, 3),
                eta_s=ocr_eta(now - self._ocr_started, *state),
            )
        )


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
