"""A chat model that behaves like a remote API: fixed latency, streamed tokens, no work.

:class:`LatencyModel` stands in for a real provider in the benchmarks, so that
what is measured is the orchestration (our pipeline, LangChain, LangGraph) and
not a model. Every call:

* waits ``first_token_s`` (default 300 ms), then streams ``tokens`` tokens
  (default 60) one every ``token_delay_s`` (default 10 ms);
* schedules token *i* at ``start + first_token_s + i * token_delay_s`` (absolute
  deadlines), so a call lasts exactly :attr:`LatencyModel.call_seconds` however
  late the event loop wakes up. This is like an API generating at its own pace
  and buffering when the client reads slowly;
* answers with words of the prompt's ``<document>`` text, starting at an
  offset derived from a CRC-32 of the prompt: the same prompt always gets the
  same answer, and answers are short (about 60 words), so collapsing converges.

``get_num_tokens`` counts characters / 4 (the budget rule of the project); no
tokenizer is ever loaded. ``max_concurrent`` caps calls in flight per event loop,
like a provider's concurrency limit. ``stamp`` appends ``@<time.time()>`` to every
token, so a client in another process can measure how long delivery took.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import weakref
import zlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, PrivateAttr

__all__ = ["STAMP", "STAMPS", "LatencyModel", "parse_stamp", "parse_stamps"]

_DOCUMENT = re.compile(r"<document>(.*?)(?:</document>|\Z)", re.DOTALL)
STAMP = re.compile(r"@(\d+\.\d+)\s*$")
"""Matches the wall-clock stamp at the end of a stamped token."""
STAMPS = re.compile(r"@(\d+\.\d+)(?=\s|$)")
"""Matches every stamp in a text of several stamped tokens (one coalesced event)."""


def parse_stamp(token: str) -> float | None:
    """The ``time.time()`` stamped into a token by a ``stamp=True`` model, or ``None``."""
    match = STAMP.search(token)
    return float(match.group(1)) if match else None


def parse_stamps(text: str) -> list[float]:
    """Every ``time.time()`` stamped into ``text`` (several tokens coalesced into one event)."""
    return [float(match.group(1)) for match in STAMPS.finditer(text)]


def _prompt_text(messages: Sequence[BaseMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return message.text if not isinstance(message.content, str) else message.content
    if not messages:
        return ""
    last = messages[-1]
    return last.content if isinstance(last.content, str) else str(last.text)


class LatencyModel(BaseChatModel):
    """Deterministic, latency-simulating streaming chat model (see the module docstring).

    Attributes:
        first_token_s: Seconds from the call's start to its first token.
        token_delay_s: Seconds between consecutive tokens.
        tokens: Tokens per answer (each a word and a space).
        stamp: Append ``@<wall-clock seconds>`` to every token.
        max_concurrent: Calls in flight at most (per event loop); ``None`` for no cap.
            Waiting for a slot is not part of a call's duration.
    """

    first_token_s: float = Field(default=0.3, ge=0.0, le=60.0)
    token_delay_s: float = Field(default=0.01, ge=0.0, le=10.0)
    tokens: int = Field(default=60, ge=1, le=100_000)
    stamp: bool = False
    max_concurrent: int | None = Field(default=None, ge=1)

    _slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = PrivateAttr(
        default_factory=weakref.WeakKeyDictionary
    )
    _in_flight: int = PrivateAttr(default=0)
    _peak: int = PrivateAttr(default=0)
    _calls: int = PrivateAttr(default=0)

    @property
    def _llm_type(self) -> str:
        return "latency-simulator"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "first_token_s": self.first_token_s,
            "token_delay_s": self.token_delay_s,
            "tokens": self.tokens,
        }

    @property
    def call_seconds(self) -> float:
        """Nominal duration of one call: first token plus ``tokens - 1`` token delays (seconds)."""
        return self.first_token_s + (self.tokens - 1) * self.token_delay_s

    # -- accounting ---------------------------------------------------------------------

    @property
    def peak_in_flight(self) -> int:
        """Most calls that were in flight at once since the last :meth:`reset_stats`."""
        return self._peak

    @property
    def calls(self) -> int:
        """Calls started since the last :meth:`reset_stats`."""
        return self._calls

    def reset_stats(self) -> None:
        """Zero :attr:`peak_in_flight` and :attr:`calls`."""
        self._peak = self._in_flight
        self._calls = 0

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        if self.max_concurrent is None:
            semaphore: asyncio.Semaphore | None = None
        else:
            loop = asyncio.get_running_loop()
            semaphore = self._slots.get(loop)
            if semaphore is None:
                semaphore = self._slots[loop] = asyncio.Semaphore(self.max_concurrent)
        async with semaphore if semaphore is not None else contextlib.nullcontext():
            self._in_flight += 1
            self._calls += 1
            self._peak = max(self._peak, self._in_flight)
            try:
                yield
            finally:
                self._in_flight -= 1

    # -- the answer -----------------------------------------------------------------------

    def get_num_tokens(self, text: str) -> int:
        """Characters / 4, the project's budget rule (no tokenizer)."""
        return len(text) // 4

    def answer(self, messages: Sequence[BaseMessage]) -> list[str]:
        """The tokens (word + space) of the answer to ``messages``; deterministic."""
        prompt = _prompt_text(messages)
        blocks = _DOCUMENT.findall(prompt)
        words = " ".join(blocks).split() if blocks else prompt.split()
        if not words:
            words = ["empty"]
        start = zlib.crc32(prompt.encode("utf-8", "surrogatepass")) % len(words)
        return [words[(start + i) % len(words)] + " " for i in range(self.tokens)]

    def _token(self, piece: str) -> str:
        return f"{piece[:-1]}@{time.time():.6f} " if self.stamp else piece

    # -- BaseChatModel --------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Block for :attr:`call_seconds`, then return the whole answer (no stamps)."""
        time.sleep(self.call_seconds)
        message = AIMessage(content="".join(self.answer(messages)))
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Wait :attr:`call_seconds` without blocking the loop, then return the whole answer."""
        async with self._slot():
            began = time.monotonic()
            pieces = self.answer(messages)
            remaining = began + self.call_seconds - time.monotonic()
            if remaining > 0:
                await asyncio.sleep(remaining)
            text = "".join(pieces[:-1]) + self._token(pieces[-1])
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Stream the answer token by token on the absolute schedule of the module docstring."""
        async with self._slot():
            began = time.monotonic()
            for index, piece in enumerate(self.answer(messages)):
                remaining = began + self.first_token_s + index * self.token_delay_s - time.monotonic()
                if remaining > 0:
                    await asyncio.sleep(remaining)
                text = self._token(piece)
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                if run_manager is not None:
                    await run_manager.on_llm_new_token(text, chunk=chunk)
                yield chunk
