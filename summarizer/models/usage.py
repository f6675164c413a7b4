"""Token usage of model calls: read from LangChain's ``usage_metadata``, or estimated.

Providers report usage on the streamed message chunks (``AIMessageChunk.usage_metadata``;
for OpenAI-compatible servers the last chunk, when the request asks for
``stream_options.include_usage``). The counts of all chunks of one answer add
up to the call's usage, as LangChain's own chunk addition does. When a
provider reports nothing, :func:`estimate_tokens` (characters / 4) stands in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CHARS_PER_TOKEN", "TokenCount", "UsageLedger", "estimate_tokens", "usage_of"]

CHARS_PER_TOKEN = 4
"""Characters per token assumed by estimates (no tokenizer is used)."""


def estimate_tokens(text: str) -> int:
    """Estimate tokens as characters / :data:`CHARS_PER_TOKEN`, rounded up (0 for ``""``)."""
    return -(-len(text) // CHARS_PER_TOKEN)


@dataclass(slots=True)
class TokenCount:
    """Input and output tokens of one or more calls.

    Attributes:
        input_tokens: Prompt tokens.
        output_tokens: Generated tokens.
    """

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """``input_tokens + output_tokens``."""
        return self.input_tokens + self.output_tokens

    def add(self, other: TokenCount) -> None:
        """Add ``other``'s counts to this one, in place."""
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens

    def __bool__(self) -> bool:
        return bool(self.input_tokens or self.output_tokens)


def usage_of(chunk: Any) -> TokenCount | None:
    """The usage a streamed chunk reports (``usage_metadata``), or ``None``.

    Args:
        chunk: An ``AIMessageChunk`` (or anything with ``usage_metadata``), or a str.

    Returns:
        Its token counts, or ``None`` if it carries none.
    """
    meta = getattr(chunk, "usage_metadata", None)
    if not meta:
        return None
    return TokenCount(int(meta.get("input_tokens") or 0), int(meta.get("output_tokens") or 0))


@dataclass(slots=True)
class UsageLedger:
    """Token counts of a job's calls, by model name.

    Attributes:
        by_model: Model name → :class:`TokenCount`.
    """

    by_model: dict[str, TokenCount] = field(default_factory=dict)

    def add(self, model: str, count: TokenCount) -> None:
        """Count a call of ``model``."""
        self.by_model.setdefault(model, TokenCount()).add(count)

    def total(self) -> TokenCount:
        """All models together."""
        out = TokenCount()
        for count in self.by_model.values():
            out.add(count)
        return out

    def __iter__(self) -> Iterator[tuple[str, TokenCount]]:
        return iter(self.by_model.items())
