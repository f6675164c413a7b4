"""The embedded default chat model: an extractive summarizer behind LangChain's interface.

:class:`ExtractiveChatModel` answers the map, collapse and reduce prompts of
:mod:`summarizer.prompts` without any network or model file: it takes the text
between ``<document>`` and ``</document>`` in the last human message, reads the
target length ("about N words") from the rest of that message, and returns the
most salient sentences of the text (see :mod:`summarizer.models.ranking`). It
streams its answer word by word, so the pipeline and the web page behave as
with a real model.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from ..prompts import DOC_CLOSE, DOC_OPEN, TITLE_PREFIX
from .ranking import summarize_text

__all__ = [
    "CHARS_PER_TOKEN",
    "MAX_WORDS",
    "ExtractiveChatModel",
    "estimate_tokens",
    "parse_request",
    "parse_style",
]

CHARS_PER_TOKEN = 4
"""Characters per token assumed by the usage estimate (no tokenizer is used)."""

MAX_WORDS = 100_000
"""Largest word budget accepted from a prompt (words); larger numbers are capped."""

_BLOCK = re.compile(re.escape(DOC_OPEN) + r"(.*?)(?:" + re.escape(DOC_CLOSE) + r"|\Z)", re.DOTALL)
_BUDGET = re.compile(r"\b(\d{1,3}(?:,\d{3})+|\d{1,9})[\s-]+words?\b", re.IGNORECASE)
_PAGE_MARK = re.compile(
    r"[(\[]\s*(?:pp?|pages?)\.?\s*\d+(?:\s*[-\u2013\u2014]\s*\d+)?\s*[)\]]:?", re.IGNORECASE
)
_PIECE = re.compile(r"\S+\s*|\s+")
_TITLE = re.compile("^" + re.escape(TITLE_PREFIX) + r"(.+)$", re.MULTILINE)
_BULLETS = re.compile(r"bulleted list", re.IGNORECASE)


def estimate_tokens(text: str) -> int:
    """Estimate a token count as characters / :data:`CHARS_PER_TOKEN`, rounded up.

    Args:
        text: Any text.

    Returns:
        The estimate (tokens); 0 for the empty string.
    """
    return -(-len(text) // CHARS_PER_TOKEN)


def _message_text(message: BaseMessage) -> str:
    """A message's text content (string content, or its text blocks joined)."""
    if isinstance(message.content, str):
        return message.content
    return str(message.text)


def parse_request(prompt: str, default_words: int) -> tuple[str, int]:
    """Split a prompt into the text to summarize and the word budget.

    The source is everything inside ``<document>`` ... ``</document>`` blocks
    (all of them, joined by blank lines; an unclosed block runs to the end), or
    the whole prompt if it has none. The budget is the first "N words" (as in
    "about N words") outside the blocks, so a number inside the document never
    changes it; without one it is ``default_words``. Page-reference markers such
    as ``(pp. 3–5)`` or ``[p. 4]`` are removed from the source.

    Args:
        prompt: The human message's text.
        default_words: Budget when the prompt names none (words).

    Returns:
        ``(source, max_words)``, ``max_words`` between 1 and :data:`MAX_WORDS`.
    """
    blocks = [m.group(1) for m in _BLOCK.finditer(prompt)]
    if blocks:
        source = "\n\n".join(blocks)
        outside = _BLOCK.sub("\n", prompt)
    else:
        source, outside = prompt, prompt
    match = _BUDGET.search(outside)
    words = int(match.group(1).replace(",", "")) if match else default_words
    return _PAGE_MARK.sub(" ", source), max(1, min(words, MAX_WORDS))


def parse_style(prompt: str) -> tuple[str | None, bool]:
    """The document's title and whether bullets are asked for, read outside the document blocks.

    The title is the line ``Document title: ...`` (see
    :func:`summarizer.prompts.title_line`); bullets are asked for by a
    "bulleted list" format note (:func:`summarizer.prompts.reduce_notes`).

    Args:
        prompt: The human message's text.

    Returns:
        ``(title or None, bullets)``.
    """
    outside = _BLOCK.sub("\n", prompt)
    match = _TITLE.search(outside)
    return (match.group(1).strip() if match else None), _BULLETS.search(outside) is not None


def _pieces(text: str) -> list[str]:
    """Stream pieces: each word with its following white space; never empty."""
    return _PIECE.findall(text) or [""]


class ExtractiveChatModel(BaseChatModel):
    """Extractive summarizer with a chat model's interface (LangChain ``BaseChatModel``).

    Reads the last human message (or, without one, the last message): the text
    between ``<document>`` and ``</document>`` is summarized to the budget named
    as "about N words" outside those markers (see :func:`parse_request`). The
    answer is the chosen sentences joined by single spaces. Instructions are
    never followed and text outside the markers is never summarized, so prompt
    injection in the document has no effect beyond being a candidate sentence.
    The document's title (a ``Document title:`` line outside the markers) is
    used as a query; a "bulleted list" format note gives one sentence per
    line, each starting with ``"- "``.
    ``stop`` sequences are ignored. Usage is estimated as characters / 4.

    Attributes:
        default_words: Budget when the prompt names none (words).
        token_delay_s: Pause between streamed words (seconds), for demos; 0 still
            yields to the event loop between words when streaming asynchronously.
    """

    default_words: int = Field(default=120, ge=1, le=MAX_WORDS)
    token_delay_s: float = Field(default=0.0, ge=0.0, le=10.0)

    @property
    def _llm_type(self) -> str:
        return "extractive"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": "extractive", "default_words": self.default_words}

    # -- the work ---------------------------------------------------------------------

    def _prompt(self, messages: Sequence[BaseMessage]) -> str:
        for message in reversed(messages):
            if isinstance(message, HumanMessage):
                return _message_text(message)
        return _message_text(messages[-1]) if messages else ""

    def _summarize(self, messages: Sequence[BaseMessage]) -> tuple[str, UsageMetadata]:
        """The answer to ``messages`` and its estimated usage."""
        prompt = self._prompt(messages)
        source, words = parse_request(prompt, self.default_words)
        title, bullets = parse_style(prompt)
        sentences = summarize_text(source, words, title=title)
        text = "\n".join(f"- {s}" for s in sentences) if bullets else " ".join(sentences)
        input_tokens = sum(estimate_tokens(_message_text(m)) for m in messages)
        output_tokens = estimate_tokens(text)
        usage = UsageMetadata(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
        )
        return text, usage

    @staticmethod
    def _chunk(piece: str, usage: UsageMetadata | None) -> ChatGenerationChunk:
        if usage is None:
            return ChatGenerationChunk(message=AIMessageChunk(content=piece))
        return ChatGenerationChunk(
            message=AIMessageChunk(
                content=piece,
                usage_metadata=usage,
                response_metadata={"model_name": "extractive"},
                chunk_position="last",
            )
        )

    # -- BaseChatModel ----------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Summarize the prompt in one piece.

        Args:
            messages: The chat messages; see the class docstring.
            stop: Ignored.
            run_manager: Callback manager (unused: no tokens are streamed).
            **kwargs: Ignored.

        Returns:
            One generation whose ``AIMessage`` carries the summary and usage.
        """
        text, usage = self._summarize(messages)
        message = AIMessage(
            content=text, usage_metadata=usage, response_metadata={"model_name": "extractive"}
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        """Like :meth:`_generate`, with the ranking in a worker thread.

        Args:
            messages: The chat messages.
            stop: Ignored.
            run_manager: Callback manager (unused).
            **kwargs: Ignored.

        Returns:
            One generation with the summary.
        """
        return await asyncio.to_thread(self._generate, messages, stop)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Stream the summary word by word.

        Each chunk is a word with the white space after it, so the chunks join
        to exactly the text :meth:`_generate` returns; an empty summary is one
        empty chunk. The last chunk carries the usage estimate.

        Args:
            messages: The chat messages.
            stop: Ignored.
            run_manager: Receives ``on_llm_new_token`` for every chunk.
            **kwargs: Ignored.

        Yields:
            ``ChatGenerationChunk`` objects holding ``AIMessageChunk`` pieces.
        """
        text, usage = self._summarize(messages)
        pieces = _pieces(text)
        for number, piece in enumerate(pieces):
            if number and self.token_delay_s:
                time.sleep(self.token_delay_s)
            chunk = self._chunk(piece, usage if number == len(pieces) - 1 else None)
            if run_manager is not None:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Stream the summary word by word without blocking the event loop.

        The ranking runs in a worker thread; between words the coroutine sleeps
        ``token_delay_s`` seconds (0 lets other tasks run).

        Args:
            messages: The chat messages.
            stop: Ignored.
            run_manager: Receives ``on_llm_new_token`` for every chunk.
            **kwargs: Ignored.

        Yields:
            ``ChatGenerationChunk`` objects, as :meth:`_stream`.
        """
        text, usage = await asyncio.to_thread(self._summarize, messages)
        pieces = _pieces(text)
        for number, piece in enumerate(pieces):
            if number:
                await asyncio.sleep(self.token_delay_s)
            chunk = self._chunk(piece, usage if number == len(pieces) - 1 else None)
            if run_manager is not None:
                await run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
