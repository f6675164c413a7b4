"""``SUMMARIZER_TOKENS_PER_MINUTE`` applied to model calls: a chat model wrapper and its limiter.

Each call costs its **estimated tokens**: the characters of its messages / 4
(rounded up) plus its maximum output tokens: the model's ``max_tokens`` (or
``max_completion_tokens``) when set, else :data:`DEFAULT_OUTPUT_TOKENS`. The cost
is taken from a :class:`~summarizer.ratelimit.TokenBudget`: one in Redis shared by
every replica (:class:`~summarizer.ratelimit.RedisRateLimiter`), or one in the
process (:class:`~summarizer.ratelimit.LocalTokenBucket`).

The wait must happen *before* the call, outside its first-token timeout. The
pipeline (and ``BaseChatModel`` itself) awaits a model's ``rate_limiter`` right
before each call, but without telling it the call's size; so the wrapper's
:class:`CallLimiter` takes the request limit, if any, and then **reserves** a
typical call's tokens (the running mean of recent costs) and notes the
reservation in a context variable of the calling task. When the call begins,
:class:`TokenLimitedChatModel` computes the exact estimate and charges the
difference at once (a refund if smaller). So waiting is outside the timeout, the
charge is exact, and concurrent calls cannot all pass an almost empty budget
together. A call reached without a reservation (the model used directly, not
through its limiter) takes its whole cost itself, blocking.

A call larger than one minute's budget is never refused and cannot deadlock: it
waits until the whole budget is free, goes, and the excess becomes a debt that
the next calls wait out (see :mod:`summarizer.ratelimit`).
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.rate_limiters import BaseRateLimiter

from ..ratelimit import TokenBudget

__all__ = ["DEFAULT_OUTPUT_TOKENS", "CallLimiter", "TokenLimitedChatModel", "estimate_tokens", "limit_tokens"]

DEFAULT_OUTPUT_TOKENS = 400
"""Output tokens a call is assumed to use when the model sets no ``max_tokens``
(a 250-word final summary is about 330 tokens; a chunk summary of 80 words, 110)."""

_RESERVED: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "summarizer_tokens_reserved", default=None
)
"""Tokens the calling task reserved (through :class:`CallLimiter`) for its next call."""


def estimate_tokens(messages: Sequence[BaseMessage], output_tokens: int) -> int:
    """A call's estimated cost: its messages' characters / 4 (rounded up) plus ``output_tokens``.

    Args:
        messages: The prompt.
        output_tokens: Maximum output tokens of the call.

    Returns:
        Tokens.
    """
    chars = sum(len(m.content) if isinstance(m.content, str) else len(str(m.content)) for m in messages)
    return math.ceil(chars / 4) + output_tokens


class CallLimiter(BaseRateLimiter):
    """The limiter of a :class:`TokenLimitedChatModel`: requests (if limited), then a token reservation.

    Args:
        budget: The tokens-per-minute budget.
        requests: The request limiter (``SUMMARIZER_REQUESTS_PER_SECOND``), or ``None``.
        initial_estimate: Tokens reserved before any call was seen.

    The budget serves takes first come, first served (each reserves its place
    when it asks, see :mod:`summarizer.ratelimit`), so no caller is starved by
    callers that ask for less. The estimate converges to the workload's mean; a
    newcomer starts low (the output tokens only).
    """

    def __init__(
        self, budget: TokenBudget, requests: BaseRateLimiter | None, initial_estimate: float
    ) -> None:
        self.budget = budget
        self.requests = requests
        self._estimate = float(initial_estimate)
        self._lock = threading.Lock()

    @property
    def estimate(self) -> float:
        """Tokens reserved per call now: the running mean of recent calls' costs."""
        return self._estimate

    def observe(self, cost: float) -> None:
        """Fold one call's cost into the running mean (weight 1/4)."""
        with self._lock:
            self._estimate += (cost - self._estimate) / 4

    def _reserve(self) -> float:
        reserve = self._estimate
        if self.budget.tokens_per_minute is not None:
            reserve = min(reserve, self.budget.tokens_per_minute)
        return reserve

    def _note(self, reserved: float) -> None:
        _RESERVED.set((_RESERVED.get() or 0.0) + reserved)

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take one request and reserve a typical call's tokens (waits unless ``blocking`` is false).

        Returns:
            Whether both were taken.
        """
        if self.requests is not None and not self.requests.acquire(blocking=blocking):
            return False
        reserve = self._reserve()
        if not self.budget.acquire_tokens(reserve, blocking=blocking):
            return False
        self._note(reserve)
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        """:meth:`acquire` for the event loop."""
        if self.requests is not None and not await self.requests.aacquire(blocking=blocking):
            return False
        reserve = self._reserve()
        if not await self.budget.aacquire_tokens(reserve, blocking=blocking):
            return False
        self._note(reserve)
        return True


class TokenLimitedChatModel(BaseChatModel):
    """A chat model whose every call takes its estimated tokens from a budget first.

    Build it with :func:`limit_tokens`. The wrapped model does the work; this one
    only accounts (module docstring).

    Attributes:
        inner: The wrapped chat model (without a ``rate_limiter`` of its own).
        limiter: The :class:`CallLimiter` (also ``rate_limiter``, which the pipeline takes over).
        output_tokens: Maximum output tokens a call is charged for.
    """

    inner: BaseChatModel
    limiter: CallLimiter
    output_tokens: int = DEFAULT_OUTPUT_TOKENS

    @property
    def _llm_type(self) -> str:
        return f"token-limited-{self.inner._llm_type}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return dict(self.inner._identifying_params)

    def _cost(self, messages: list[BaseMessage]) -> tuple[float, float | None]:
        """The call's cost and what its task reserved for it (``None``: nothing)."""
        cost = float(estimate_tokens(messages, self.output_tokens))
        reserved = _RESERVED.get()
        _RESERVED.set(None)
        self.limiter.observe(cost)
        return cost, reserved

    async def _atake(self, messages: list[BaseMessage]) -> None:
        cost, reserved = self._cost(messages)
        budget = self.limiter.budget
        if reserved is None:
            await budget.aacquire_tokens(cost)
        elif cost != reserved:
            await asyncio.to_thread(budget.charge_tokens, cost - reserved)

    def _take(self, messages: list[BaseMessage]) -> None:
        cost, reserved = self._cost(messages)
        if reserved is None:
            self.limiter.budget.acquire_tokens(cost)
        elif cost != reserved:
            self.limiter.budget.charge_tokens(cost - reserved)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._take(messages)
        return self.inner._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        await self._atake(messages)
        return await self.inner._agenerate(messages, stop=stop, run_manager=run_manager, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        self._take(messages)
        yield from self.inner._stream(messages, stop=stop, run_manager=run_manager, **kwargs)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        await self._atake(messages)
        async for chunk in self.inner._astream(messages, stop=stop, run_manager=run_manager, **kwargs):
            yield chunk


def _max_output(model: BaseChatModel) -> int | None:
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens", "num_predict"):
        value = getattr(model, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def limit_tokens(
    model: BaseChatModel,
    budget: TokenBudget,
    *,
    requests: BaseRateLimiter | None = None,
    output_tokens: int | None = None,
) -> TokenLimitedChatModel:
    """Wrap ``model`` so that each call takes its estimated tokens from ``budget`` (and a request
    from ``requests``) before it is made.

    Args:
        model: The chat model (its own ``rate_limiter``, if any, is replaced by ``requests``).
        budget: The tokens-per-minute budget (shared through Redis, or local).
        requests: The request limiter, or ``None``.
        output_tokens: Maximum output tokens per call; default: the model's
            ``max_tokens`` if set, else :data:`DEFAULT_OUTPUT_TOKENS`.

    Returns:
        The wrapped model.
    """
    out = output_tokens or _max_output(model) or DEFAULT_OUTPUT_TOKENS
    inner = model.model_copy(update={"rate_limiter": None}) if model.rate_limiter is not None else model
    limiter = CallLimiter(budget, requests, initial_estimate=out)
    return TokenLimitedChatModel(inner=inner, limiter=limiter, output_tokens=out, rate_limiter=limiter)
