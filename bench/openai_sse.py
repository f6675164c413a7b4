"""The server-sent events of an OpenAI-compatible streamed chat completion, as text.

Shared by the benchmark's model server (:mod:`bench.model_server`) and the test
suite's scripted one (``tests/fake_openai.py``): one ``data: {...}`` line per
``chat.completion.chunk``, a usage chunk with empty ``choices`` when the request
set ``stream_options.include_usage``, then ``data: [DONE]``. Compact JSON: the
benchmark server writes ten thousand of these a second.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DONE", "chunk", "usage_chunk"]

DONE = "data: [DONE]\n\n"
"""The event that ends the stream."""


def _event(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n"


def chunk(completion_id: str, model: str, delta: dict[str, Any], finish: str | None = None) -> str:
    """One ``chat.completion.chunk`` event.

    Args:
        completion_id: The completion's ``id`` (the same for every chunk of a stream).
        model: The model name echoed back.
        delta: The choice's delta, e.g. ``{"content": "word "}`` or ``{"role": "assistant"}``.
        finish: The ``finish_reason`` (``"stop"`` on the last chunk), else ``None``.

    Returns:
        The event, ``data: ...`` and a blank line.
    """
    return _event(
        {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


def usage_chunk(completion_id: str, model: str, usage: dict[str, int]) -> str:
    """The last chunk before :data:`DONE` when usage was asked for: empty ``choices``, ``usage`` set."""
    return _event(
        {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [],
            "usage": usage,
        }
    )
