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
  spaces requests out;
* OpenAI and OpenAI-compatible models send their async requests through the
  ``openai`` SDK's aiohttp transport (``openai.DefaultAioHttpClient``, the
  ``openai[aiohttp]`` extra) when it is installed: its C HTTP parser reads a
  streamed token in about a third less CPU than the default ``httpx``
  transport (``bench.many_users``, provider layer), which is what bounds a
  server streaming many answers at once. The aiohttp transport ignores the
  ``HTTP(S)_PROXY`` variables, so with a proxy set the SDK's ``httpx`` client
  (which honours them) is kept; ``http_client="httpx"`` keeps it always. The
  caller closes the client with :func:`aclose_model`.

For an OpenAI-compatible server (Ollama, vLLM, llama.cpp, LM Studio) pass its
``base_url`` (or set ``OPENAI_BASE_URL``); such servers usually ignore the API
key, so without ``OPENAI_API_KEY`` a placeholder is sent.
"""

from __future__ import annotations

import os
import urllib.request
import weakref
from typing import Any

from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel
from langchain_core.rate_limiters import BaseRateLimiter, InMemoryRateLimiter

from ..errors import ErrorCode, ModelError
from ..settings import HttpClient
from .extractive import ExtractiveChatModel

__all__ = [
    "EXTRACTIVE",
    "LOCAL_API_KEY",
    "HttpClient",
    "aclose_model",
    "load_model",
    "rate_limiter",
]

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


_OWNED_CLIENTS: weakref.WeakSet[Any] = weakref.WeakSet()
"""The async HTTP clients :func:`load_model` made (closed by :func:`aclose_model`)."""


def _aiohttp_client(kind: HttpClient, timeout: Any) -> Any | None:
    """The SDK's aiohttp client with ``timeout``, or ``None`` for the SDK's default transport.

    Raises:
        ModelError: ``unknown_model`` if ``kind`` is ``"aiohttp"`` and it is not installed.
    """
    if kind == "httpx":
        return None
    if kind == "auto" and urllib.request.getproxies().keys() & {"http", "https", "all"}:
        return None  # the aiohttp transport ignores HTTP(S)_PROXY: keep the SDK's httpx, which honours it
    try:
        import openai

        factory = openai.DefaultAioHttpClient
        return factory(**({"timeout": timeout} if timeout is not None else {}))
    except (AttributeError, ImportError, RuntimeError) as error:  # RuntimeError: no aiohttp
        if kind == "aiohttp":
            raise ModelError(
                "The aiohttp HTTP client needs the openai SDK's aiohttp extra: "
                f"pip install 'openai[aiohttp]' ({_first_line(error)}).",
                code=ErrorCode.UNKNOWN_MODEL,
            ) from error
        return None


async def aclose_model(model: Any) -> None:
    """Close the HTTP client :func:`load_model` made for ``model`` (its aiohttp session), if any.

    A model given by the caller, or one on the SDK's default client, is left
    alone. Idempotent; the model must not be used afterwards.

    Args:
        model: A model returned by :func:`load_model`.
    """
    client = getattr(model, "http_async_client", None)
    if client is not None and client in _OWNED_CLIENTS:
        _OWNED_CLIENTS.discard(client)
        await client.aclose()


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
    http_client: HttpClient = "httpx",
) -> dict[str, Any]:
    """``kwargs`` plus the timeouts, retries, usage, limiter and HTTP client ``provider`` takes."""
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
        if "http_async_client" not in out:
            client = _aiohttp_client(http_client, out.get("timeout"))
            if client is not None:
                out["http_async_client"] = client
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
    http_client: HttpClient = "auto",
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
        http_client: Async HTTP transport of OpenAI-like models (:data:`HttpClient`);
            default ``"auto"``: aiohttp when installed and no proxy is set. Close it
            with :func:`aclose_model`.
        **kwargs: Passed to the model's constructor (e.g. ``api_key``,
            ``temperature``, ``default_words``); they win over the above.

    Returns:
        The chat model. No network call is made.

    Raises:
        ModelError: With code ``UNKNOWN_MODEL`` if the name is malformed, the
            provider is unknown, its integration package is not installed, or
            the model cannot be constructed (e.g. missing credentials), or
            ``http_client="aiohttp"`` and aiohttp is not installed.
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
            http_client=http_client,
        )
        chat_model = init_chat_model(model, model_provider=provider, **options)
    except ModelError:
        raise
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
    made = options.get("http_async_client")
    if made is not None and made is not kwargs.get("http_async_client"):
        _OWNED_CLIENTS.add(made)
    return chat_model
