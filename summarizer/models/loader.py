"""Resolve a model name (``"extractive"`` or ``"provider:model"``) to a chat model.

Real providers are created through LangChain's ``init_chat_model`` and set up
for the pipeline, which owns retries and timeouts:

* the SDK's own retries are off (``max_retries=0``), so that every retry is the
  pipeline's, with its backoff, its ``chunk.restart`` events and its count;
* HTTP timeouts are set (``ChatOpenAI`` waits ten minutes by default): connect
  and read; the pipeline adds a first-token and an inter-chunk stall timeout
  that work for every provider;
* OpenAI and OpenAI-compatible servers stream token usage
  (``stream_usage=True``: ``stream_options.include_usage``);
* an optional shared :class:`~langchain_core.rate_limiters.InMemoryRateLimiter`
  spaces requests out.

For an OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio) pass its
``base_url`` (or set ``OPENAI_BASE_URL``); such servers usually ignore the API
key, so without ``OPENAI_API_KEY`` a placeholder is sent.
"""

from __future__ import annotations

import os
from typing import Any

from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel
from langchain_core.rate_limiters import BaseRateLimiter, InMemoryRateLimiter

from ..errors import ErrorCode, ModelError
from .extractive import ExtractiveChatModel

__all__ = ["EXTRACTIVE", "LOCAL_API_KEY", "load_model", "rate_limiter"]

EXTRACTIVE = "extractive"
"""Name of the embedded model; ``"extractive:<anything>"`` selects it too."""

LOCAL_API_KEY = "not-needed"
"""API key sent to an OpenAI-compatible ``base_url`` when ``OPENAI_API_KEY`` is unset."""

_OPENAI_LIKE = frozenset({"openai", "azure_openai"})
"""Providers built on the ``openai`` SDK: full timeout object, usage streaming."""

_TIMEOUT_AND_RETRIES = frozenset(
    {"anthropic", "deepseek", "fireworks", "groq", "mistralai", "together", "xai", "perplexity"}
)
"""Other providers whose chat model takes ``timeout`` (s) and ``max_retries``."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def rate_limiter(requests_per_second: float | None) -> BaseRateLimiter | None:
    """A rate limiter for ``requests_per_second``, or ``None`` for unlimited.

    Share one limiter between models to limit them together (it is thread- and
    task-safe). Bursts are not allowed: requests are spaced out evenly.

    Args:
        requests_per_second: Requests per second (> 0), or ``None``.

    Returns:
        An ``InMemoryRateLimiter`` or ``None``.
    """
    if requests_per_second is None:
        return None
    return InMemoryRateLimiter(
        requests_per_second=requests_per_second,
        check_every_n_seconds=min(0.1, 0.5 / requests_per_second),
        max_bucket_size=1,
    )


def _provider_kwargs(
    provider: str,
    kwargs: dict[str, Any],
    *,
    base_url: str | None,
    connect_timeout_s: float | None,
    read_timeout_s: float | None,
    limiter: BaseRateLimiter | None,
) -> dict[str, Any]:
    """``kwargs`` plus the timeouts, retries, usage and limiter settings ``provider`` takes."""
    out = dict(kwargs)
    if limiter is not None:
        out.setdefault("rate_limiter", limiter)
    if provider in _OPENAI_LIKE:
        import openai

        if provider == "openai" and base_url is not None:
            out["base_url"] = base_url
        out.setdefault("max_retries", 0)
        out.setdefault("stream_usage", True)
        if connect_timeout_s is not None or read_timeout_s is not None:
            read = read_timeout_s if read_timeout_s is not None else 600.0
            connect = connect_timeout_s if connect_timeout_s is not None else 5.0
            out.setdefault("timeout", openai.Timeout(read, connect=connect, write=read, pool=connect))
        local = out.get("base_url") or (os.environ.get("OPENAI_BASE_URL") if provider == "openai" else None)
        if local and "api_key" not in out and not os.environ.get("OPENAI_API_KEY"):
            out["api_key"] = LOCAL_API_KEY
    elif provider in _TIMEOUT_AND_RETRIES:
        out.setdefault("max_retries", 0)
        if read_timeout_s is not None:
            out.setdefault("timeout", read_timeout_s)
    elif provider == "ollama" and read_timeout_s is not None:
        out.setdefault("client_kwargs", {"timeout": read_timeout_s})
    return out


def load_model(
    name: str,
    *,
    base_url: str | None = None,
    connect_timeout_s: float | None = None,
    read_timeout_s: float | None = None,
    limiter: BaseRateLimiter | None = None,
    **kwargs: Any,
) -> BaseChatModel:
    """Create the chat model a name designates, without calling it.

    ``"extractive"`` (or ``"extractive:<anything>"``, case-insensitive) is the
    embedded :class:`~summarizer.models.extractive.ExtractiveChatModel`; keyword
    arguments it does not know (e.g. ``temperature``) are ignored. Any other
    ``"provider:model"`` goes to LangChain's ``init_chat_model`` with the provider
    given explicitly (e.g. ``"openai:gpt-4o-mini"``, ``"ollama:llama3.1"``), with
    the SDK's retries off and the timeouts, usage streaming and rate limiter of
    the module docstring.

    Args:
        name: The model name.
        base_url: Endpoint of an OpenAI-compatible server (``.../v1``); passed
            on for the ``openai`` provider only, and only if given.
        connect_timeout_s: HTTP connect timeout (seconds), ``None``: the SDK's.
        read_timeout_s: HTTP read timeout (seconds), ``None``: the SDK's.
        limiter: Rate limiter shared by the models (see :func:`rate_limiter`).
        **kwargs: Passed to the model's constructor (e.g. ``api_key``,
            ``temperature``, ``default_words``); they win over the above.

    Returns:
        The chat model. No network call is made.

    Raises:
        ModelError: With code ``UNKNOWN_MODEL`` if the name is malformed, the
            provider is unknown, its integration package is not installed, or
            the model cannot be constructed (e.g. missing credentials).
    """
    cleaned = name.strip()
    provider, colon, model = cleaned.partition(":")
    provider, model = provider.strip().lower().replace("-", "_"), model.strip()
    if provider == EXTRACTIVE:
        try:
            return ExtractiveChatModel(**kwargs)
        except ValueError as error:
            raise ModelError(
                f"Invalid option for the extractive model: {_first_line(error)}",
                code=ErrorCode.UNKNOWN_MODEL,
            ) from error
    if not colon or not provider or not model:
        raise ModelError(
            f"Unknown model {name!r}: use 'extractive' or 'provider:model' "
            "(for example 'openai:gpt-4o-mini').",
            code=ErrorCode.UNKNOWN_MODEL,
        )
    try:
        options = _provider_kwargs(
            provider,
            kwargs,
            base_url=base_url,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            limiter=limiter,
        )
        chat_model = init_chat_model(model, model_provider=provider, **options)
    except ImportError as error:
        raise ModelError(
            f"Model {cleaned!r} needs a package that is not installed: {_first_line(error)}",
            code=ErrorCode.UNKNOWN_MODEL,
        ) from error
    except ValueError as error:
        message = _first_line(error)
        if message.startswith("Unsupported provider"):
            message = f"unknown provider {provider!r}"
        raise ModelError(f"Cannot load model {cleaned!r}: {message}", code=ErrorCode.UNKNOWN_MODEL) from error
    except Exception as error:  # e.g. openai.OpenAIError for missing credentials
        raise ModelError(
            f"Cannot create model {cleaned!r}: {_first_line(error)}",
            code=ErrorCode.UNKNOWN_MODEL,
        ) from error
    if not isinstance(chat_model, BaseChatModel):  # pragma: no cover - init_chat_model contract
        raise ModelError(f"Model {cleaned!r} did not resolve to a chat model", code=ErrorCode.UNKNOWN_MODEL)
    return chat_model
