"""The map-reduce plan: its configuration, the grouping of summaries, and the call estimate.

Everything here is plain Python over :mod:`summarizer.prompts`; nothing imports
a chat model. ``summarizer summarize --dry-run`` prints :func:`estimate_calls`
right after a book is parsed, and importing :mod:`summarizer.pipeline` (LangChain's
language models and tracers: about 1 s of CPU here) would have been a fifth of its
wall time. :mod:`summarizer.pipeline` runs the plan and re-exports these names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .ingest.types import Chunk
from .models.retry import RetryPolicy
from .models.usage import CHARS_PER_TOKEN
from .prompts import (
    COLLAPSE,
    LENGTH_WORDS,
    MAP,
    REDUCE,
    SummaryFormat,
    collapse_inputs,
    label_block,
    map_inputs,
    reduce_inputs,
)
from .protocol import StartOptions

if TYPE_CHECKING:
    from .settings import Settings

__all__ = [
    "SEPARATOR",
    "CallEstimate",
    "Piece",
    "PipelineConfig",
    "StepEstimate",
    "block_length",
    "estimate_calls",
    "estimated_tokens",
    "group_pieces",
    "joined_length",
]

SEPARATOR = "\n\n"
"""What joins summaries in a collapse or reduce prompt, and the final summary's parts."""
_CHARS_PER_WORD = 6
"""Characters per word of a summary, for estimates (a word, a space, punctuation)."""


def estimated_tokens(chars: int) -> int:
    """Estimated tokens of ``chars`` characters (4 per token, rounded up)."""
    return -(-chars // CHARS_PER_TOKEN)


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """Knobs of the map-reduce. Only JSON values, so that jobs can store it.

    Attributes:
        concurrency: Model calls at once (map, and collapse within a level); default 4.
        map_words: Target words per chunk summary; default 80.
        summary_words: Target words of the final summary; default 250.
        reduce_budget_chars: Largest input of one collapse or reduce call, in
            characters (about 4 per token); default 12,000. The ``token_max`` of
            LangChain's map-reduce, counted in characters.
        max_collapse_levels: Collapse levels allowed before giving up; default 8.
        model_name: Name of the map/collapse model (usage, prices, messages).
        reduce_model_name: Name of the reduce model, reported in ``summary.model``;
            ``""``: ``model_name``.
        strict: Fail on the first chunk that fails after its retries, instead of
            leaving it out (``chunk.failed``, ``summary.missing_pages``).
        summary_format: ``"paragraphs"``, ``"bullets"`` or ``None`` (the model's choice).
        language: Language of the final summary, or ``None`` (the document's).
        instructions: The user's extra instructions, or ``None``.
        max_retries: Retries of a failed call (429, 5xx, timeouts, drops); default 4.
        retry_base_s: First retry delay in seconds, doubled each retry; default 1.
        retry_max_s: Longest retry delay in seconds, also caps ``Retry-After``; default 30.
        read_timeout_s: Seconds to wait for a call's first streamed piece
            (``None``: no limit); default 120.
        stall_timeout_s: Seconds allowed between two streamed pieces (``None``:
            no limit); default 60.
        max_split_depth: How many times a text the model finds too long may be
            halved; default 4 (down to 1/16).
        prices: USD per million tokens by model name, ``{"input_per_mtok": ..,
            "output_per_mtok": ..}`` (see :mod:`summarizer.models.pricing`).
        token_coalesce_s: Seconds a call's streamed pieces may be held to go out
            as one token event (the first piece of a window is sent at once);
            default 0.025; 0 sends every piece as its own event.
        openai_fast_path: Let a plain ``ChatOpenAI`` stream through
            :mod:`summarizer.models.streaming`'s fast path; ``False``: every model
            through ``astream``. Default ``True``.
    """

    concurrency: int = 4
    map_words: int = 80
    summary_words: int = 250
    reduce_budget_chars: int = 12_000
    max_collapse_levels: int = 8
    model_name: str = ""
    reduce_model_name: str = ""
    strict: bool = False
    summary_format: SummaryFormat | None = None
    language: str | None = None
    instructions: str | None = None
    max_retries: int = 4
    retry_base_s: float = 1.0
    retry_max_s: float = 30.0
    read_timeout_s: float | None = 120.0
    stall_timeout_s: float | None = 60.0
    max_split_depth: int = 4
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    token_coalesce_s: float = 0.025
    openai_fast_path: bool = True

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.reduce_budget_chars < 1:
            raise ValueError(f"reduce_budget_chars must be positive, got {self.reduce_budget_chars}")
        if self.max_retries < 0 or self.max_split_depth < 0:
            raise ValueError("max_retries and max_split_depth must not be negative")
        for name in ("read_timeout_s", "stall_timeout_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, got {value}")
        if self.summary_format not in (None, "paragraphs", "bullets"):
            raise ValueError(f"summary_format must be 'paragraphs' or 'bullets', got {self.summary_format!r}")

    @property
    def retry_policy(self) -> RetryPolicy:
        """The :class:`~summarizer.models.retry.RetryPolicy` of these settings."""
        return RetryPolicy(max_retries=self.max_retries, base_s=self.retry_base_s, max_s=self.retry_max_s)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        options: StartOptions | None = None,
        *,
        model_name: str,
        concurrency: int | None = None,
    ) -> PipelineConfig:
        """The configuration of one job: the server's settings, then the job's options.

        Args:
            settings: The server's :class:`~summarizer.settings.Settings`.
            options: The job's ``start.options`` (``None``: defaults).
            model_name: The job's model.
            concurrency: Map calls at once (already capped by the caller);
                ``None``: ``options.concurrency`` or the setting.

        Returns:
            The config. ``summary_words`` is ``options.summary_words``, else the
            words of ``options.length``, else the setting; ``strict`` is the
            option if given, else the setting.
        """
        opts = options or StartOptions()
        words = opts.summary_words or (LENGTH_WORDS[opts.length] if opts.length else settings.summary_words)
        return cls(
            concurrency=concurrency or opts.concurrency or settings.concurrency,
            map_words=settings.map_words,
            summary_words=words,
            reduce_budget_chars=settings.reduce_budget_chars,
            max_collapse_levels=settings.max_collapse_levels,
            model_name=model_name,
            reduce_model_name=settings.reduce_model or "",
            strict=settings.strict if opts.strict is None else opts.strict,
            summary_format=opts.format,
            language=opts.language,
            instructions=opts.instructions,
            max_retries=settings.max_retries,
            retry_base_s=settings.retry_base_s,
            retry_max_s=settings.retry_max_s,
            read_timeout_s=settings.read_timeout_s,
            stall_timeout_s=settings.stall_timeout_s,
            token_coalesce_s=settings.token_coalesce_s,
            openai_fast_path=settings.openai_fast_path,
            prices={
                name: {str(k): float(v) for k, v in price.items()} for name, price in settings.prices.items()
            },
        )


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

    @property
    def block(self) -> str:
        """The summary as a collapse or reduce prompt carries it: ``[pp. a–b]`` line, then text."""
        return label_block(self.first_page, self.last_page, self.text)


def _text_length(piece: Piece) -> int:
    return len(piece.text)


def block_length(piece: Piece) -> int:
    """Characters of ``piece`` as a collapse or reduce prompt carries it (:attr:`Piece.block`)."""
    return len(piece.block)


def joined_length(pieces: Sequence[Piece], measure: Callable[[Piece], int] = _text_length) -> int:
    """Characters of the pieces (as ``measure`` counts each) joined by blank lines."""
    if not pieces:
        return 0
    return sum(measure(p) for p in pieces) + len(SEPARATOR) * (len(pieces) - 1)


def group_pieces(
    pieces: Sequence[Piece], budget: int, measure: Callable[[Piece], int] = _text_length
) -> list[list[Piece]]:
    """Split consecutive pieces into groups whose joined length fits ``budget``.

    Greedy and order-preserving, like LangChain's ``split_list_of_docs``, except
    that a single piece longer than the budget forms a group of its own instead
    of raising (collapsing it alone still shortens it).

    Args:
        pieces: Summaries in document order.
        budget: Characters allowed per group.
        measure: Characters of one piece; default its text's length (the
            pipeline counts the labelled block, :attr:`Piece.block`).

    Returns:
        Non-empty groups, in order, that together hold every piece once.
    """
    groups: list[list[Piece]] = []
    current: list[Piece] = []
    size = 0
    for piece in pieces:
        extra = measure(piece) + (len(SEPARATOR) if current else 0)
        if current and size + extra > budget:
            groups.append(current)
            current, size = [], 0
            extra = measure(piece)
        current.append(piece)
        size += extra
    if current:
        groups.append(current)
    return groups


# -- estimates (``summarizer summarize --dry-run``) ------------------------------------------


@dataclass(frozen=True, slots=True)
class StepEstimate:
    """Estimated calls and tokens of one step.

    Attributes:
        calls: Model calls.
        input_tokens: Prompt tokens (characters / 4).
        output_tokens: Generated tokens (target words × 6 characters / 4).
    """

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def plus(self, input_chars: int, output_chars: int) -> StepEstimate:
        """This estimate with one more call of the given sizes (characters)."""
        return StepEstimate(
            self.calls + 1,
            self.input_tokens + estimated_tokens(input_chars),
            self.output_tokens + estimated_tokens(output_chars),
        )


@dataclass(frozen=True, slots=True)
class CallEstimate:
    """What summarizing a document would cost, before calling any model.

    Attributes:
        chunks: Chunks (map calls).
        pages: Pages of the document (the last chunk's last page).
        characters: Characters of text in the chunks.
        collapse_levels: Collapse levels expected.
        steps: ``"map"``, ``"collapse"``, ``"reduce"`` → :class:`StepEstimate`.
    """

    chunks: int
    pages: int
    characters: int
    collapse_levels: int
    steps: Mapping[str, StepEstimate]

    @property
    def total(self) -> StepEstimate:
        """All steps together."""
        return StepEstimate(
            sum(s.calls for s in self.steps.values()),
            sum(s.input_tokens for s in self.steps.values()),
            sum(s.output_tokens for s in self.steps.values()),
        )


def estimate_calls(chunks: Sequence[Chunk], config: PipelineConfig | None = None) -> CallEstimate:
    """Simulate the map-reduce on ``chunks`` with summaries of the target length.

    Every summary is assumed to be as long as asked (``map_words`` or
    ``summary_words`` words of 6 characters, but never longer than its input);
    prompt sizes are the real prompts' characters, tokens are characters / 4.
    Context overflows and retries are not foreseen.

    Args:
        chunks: The document's chunks (e.g. from :func:`summarizer.ingest.read_document`).
        config: The pipeline configuration (defaults if ``None``).

    Returns:
        The :class:`CallEstimate`.
    """
    cfg = config or PipelineConfig()
    steps = {"map": StepEstimate(), "collapse": StepEstimate(), "reduce": StepEstimate()}
    pieces: list[Piece] = []
    for chunk in chunks:
        inputs = map_inputs(chunk.text, chunk.pages, cfg.map_words, instructions=cfg.instructions)
        output = min(cfg.map_words * _CHARS_PER_WORD, len(chunk.text))
        steps["map"] = steps["map"].plus(MAP.chars(inputs), output)
        pieces.append(Piece(chunk.first_page, chunk.last_page, "x" * output))
    levels = 0
    while len(pieces) > 1 and joined_length(pieces, block_length) > cfg.reduce_budget_chars:
        levels += 1
        if levels > cfg.max_collapse_levels:
            break
        new = []
        for group in group_pieces(pieces, cfg.reduce_budget_chars, block_length):
            inputs = collapse_inputs(
                [p.block for p in group], cfg.summary_words, instructions=cfg.instructions
            )
            output = min(cfg.summary_words * _CHARS_PER_WORD, sum(len(p.text) for p in group))
            steps["collapse"] = steps["collapse"].plus(COLLAPSE.chars(inputs), output)
            new.append(Piece(group[0].first_page, group[-1].last_page, "x" * output))
        if joined_length(new, block_length) >= joined_length(pieces, block_length):
            break
        pieces = new
    if pieces:
        inputs = reduce_inputs(
            [p.block for p in pieces],
            cfg.summary_words,
            summary_format=cfg.summary_format,
            language=cfg.language,
            instructions=cfg.instructions,
        )
        steps["reduce"] = steps["reduce"].plus(REDUCE.chars(inputs), cfg.summary_words * _CHARS_PER_WORD)
    return CallEstimate(
        chunks=len(chunks),
        pages=max((c.last_page for c in chunks), default=0),
        characters=sum(len(c.text) for c in chunks),
        collapse_levels=levels,
        steps=steps,
    )
