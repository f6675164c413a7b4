"""One streamed model call as ``(text, usage)`` pieces: ``astream``, or a fast path for ChatOpenAI.

The pipeline takes any LangChain chat model (or runnable). The generic path is
``model.astream(prompt)``: every streamed chunk becomes an ``AIMessageChunk``,
goes through the callback manager and is merged into the run's generation.
With ``langchain-openai`` each chunk is first built as a pydantic
``ChatCompletionChunk`` by the ``openai`` SDK, then converted: together several
hundred microseconds of CPU per token, which is what limits a server streaming
tens of thousands of tokens a second.

:func:`open_stream` takes a **fast path** for a plain
``langchain_openai.ChatOpenAI`` (the exact class, not a subclass) when nothing
would notice the difference: no callback handler or tracer is configured, no
rate limiter is left on the model, streaming is not disabled, no response
headers, gateway or Responses API. The request is still built by the model
(``_get_request_payload``, with ``stream_options.include_usage`` as
``stream_usage`` says) and sent by the model's own ``openai`` client (its base
URL, key, timeouts, headers); errors raised are those of ``ChatOpenAI``'s own
stream (the ``openai`` SDK's, mapped by ``langchain-openai``). Only the parsing of
the server-sent events is done here, on the response's bytes: ``json.loads``
of each event's data and the delta's ``content`` and the ``usage`` read from the
dict, as ``langchain-openai`` does, without the SDK's line decoder and without
building pydantic objects. Any other model
(or a ``ChatOpenAI`` with callbacks) takes the generic path unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import ssl
import weakref
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.prompt_values import PromptValue

from .usage import TokenCount, usage_of

__all__ = ["Piece", "fast_path_reason", "open_stream", "stream_chunk_timeout", "text_of"]

log = logging.getLogger(__name__)

Piece = tuple[str, TokenCount | None]
"""One streamed piece: its text (maybe empty) and the usage it reports, if any."""


def text_of(chunk: Any) -> str:
    """The text of one streamed piece (an ``AIMessageChunk``, or a str from a parser)."""
    if isinstance(chunk, str):
        return chunk
    text = getattr(chunk, "text", None)
    if isinstance(text, str):
        return str(text)
    content = getattr(chunk, "content", "")
    return content if isinstance(content, str) else ""


async def _generic(model: Any, value: PromptValue) -> AsyncIterator[Piece]:
    """The generic path: ``model.astream``, each chunk's text and usage."""
    iterator = model.astream(value).__aiter__()
    try:
        async for chunk in iterator:
            yield text_of(chunk), usage_of(chunk)
    finally:
        closer = getattr(iterator, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


def _openai_parts() -> tuple[Any, Any, Any, Any] | None:
    """``(ChatOpenAI, openai module, bad-request mapper, api-error mapper)``, or ``None``."""
    try:
        import openai
        from langchain_openai import ChatOpenAI
        from langchain_openai.chat_models import base
    except ImportError:
        return None
    if not hasattr(openai, "AsyncStream"):
        return None
    bad_request = getattr(base, "_handle_openai_bad_request", None)
    api_error = getattr(base, "_handle_openai_api_error", None)
    if bad_request is None or api_error is None:
        return None
    return ChatOpenAI, openai, bad_request, api_error


def fast_path_reason(model: Any) -> str | None:
    """Why ``model`` cannot take the ChatOpenAI fast path, or ``None`` if it can.

    Args:
        model: The chat model (or runnable) of a call.

    Returns:
        A short reason (for logs and tests), or ``None``: the fast path applies.
    """
    if not type(model).__module__.startswith("langchain_openai."):
        # Not ChatOpenAI, and no import of the openai SDK (0.5-0.7 s, on the event loop,
        # at the first call of a server whose model is another one: the embedded model).
        return "not exactly langchain_openai.ChatOpenAI"
    parts = _openai_parts()
    if parts is None:
        return "langchain-openai not available"
    chat_openai = parts[0]
    if type(model) is not chat_openai:
        return "not exactly langchain_openai.ChatOpenAI"
    if model.rate_limiter is not None:
        return "the model has a rate limiter"
    if model.include_response_headers or model._uses_gateway:
        return "response headers or the LangSmith gateway"
    if model._use_responses_api({**model.model_kwargs}):
        return "the Responses API"
    try:
        should_stream = model._should_stream(async_api=True, stream=True)
    except Exception:  # a private API that changed: stay on the generic path
        return "cannot tell whether the model streams"
    if not should_stream:
        return "streaming is disabled"
    from langchain_core.callbacks import AsyncCallbackManager

    manager = AsyncCallbackManager.configure(
        None, model.callbacks, model.verbose, None, model.tags, None, model.metadata
    )
    if manager.handlers:
        return "callback handlers or tracing are configured"
    return None


def open_stream(model: Any, value: PromptValue, *, fast: bool | None = None) -> AsyncIterator[Piece]:
    """Stream one call of ``model`` on ``value`` as ``(text, usage)`` pieces.

    The fast path (module docstring) when :func:`fast_path_reason` finds none,
    else ``model.astream(value)``.

    Args:
        model: Any LangChain chat model or runnable streaming message chunks or strings.
        value: The formatted prompt.
        fast: Whether the fast path applies, if the caller already asked
            :func:`fast_path_reason`; ``None``: ask it here.

    Returns:
        An async iterator (with ``aclose``) of pieces in the order streamed.
    """
    if fast is None:
        fast = fast_path_reason(model) is None
    if fast:
        return _fast_openai(model, value)
    return _generic(model, value)


def stream_chunk_timeout(model: Any) -> float | None:
    """The longest wait for a streamed chunk that ``model`` itself enforces (seconds), if any.

    ``ChatOpenAI.stream_chunk_timeout`` bounds each chunk's wait inside its own
    stream; the fast path leaves it to the caller's timeouts, which take this into account.
    """
    value = getattr(model, "stream_chunk_timeout", None)
    return float(value) if isinstance(value, int | float) and value > 0 else None


@functools.cache
def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """The HTTP library's ``(timeout errors, request errors)``, as the ``openai`` SDK maps them."""
    try:
        from openai._httpx2 import request_exceptions, timeout_exceptions
    except ImportError:  # an SDK on plain httpx
        import httpx

        return (httpx.TimeoutException,), (httpx.RequestError,)
    return tuple(timeout_exceptions()), tuple(request_exceptions())


async def _sse_data(
    response: Any,
    timeouts: tuple[type[BaseException], ...],
    transport: tuple[type[BaseException], ...],
    openai: Any,
) -> AsyncIterator[bytes]:
    """The ``data`` of each server-sent event of ``response``, as bytes (several ``data:`` lines joined).

    Comments, ``event:``, ``id:`` and ``retry:`` fields are skipped; an event
    without data is no event (the SDK's decoder does the same); an unterminated
    last event is dropped. Transport errors become the SDK's.

    Raises:
        openai.APITimeoutError: The HTTP read timed out.
        openai.APIConnectionError: The connection failed or was cut.
    """
    pending = b""
    data: list[bytes] = []
    # An uncompressed body is read from the transport stream itself, as the SDK drains it:
    # ``aiter_bytes`` would add a decoder, a re-chunker and a context manager per read.
    encoding = response.headers.get("content-encoding", "").strip().lower()
    stream = getattr(response, "stream", None)
    plain = encoding in ("", "identity") and stream is not None and hasattr(stream, "__aiter__")
    source: AsyncIterator[bytes] = stream if plain else response.aiter_bytes()  # type: ignore[assignment]
    try:
        async for received in source:
            lines = (pending + received).split(b"\n")
            pending = lines.pop()
            for line in lines:
                if line.endswith(b"\r"):
                    line = line[:-1]
                if not line:
                    if data:
                        yield data[0] if len(data) == 1 else b"\n".join(data)
                        data = []
                elif line.startswith(b"data:"):
                    value = line[5:]
                    data.append(value[1:] if value.startswith(b" ") else value)
    except timeouts as exc:
        raise openai.APITimeoutError(request=response.request) from exc
    except transport as exc:
        raise openai.APIConnectionError(request=response.request) from exc


_DRAIN_S = 0.1
"""Longest wait for the end of a body after ``[DONE]`` (seconds), as the SDK waits."""

_OPTION_KEYS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})
"""Payload keys ``create`` turns into request options rather than body fields."""


async def _drain(events: AsyncIterator[bytes], openai: Any) -> None:
    """Read what is left of a body after ``[DONE]``, for at most :data:`_DRAIN_S`."""
    with contextlib.suppress(TimeoutError, openai.APIError):
        async with asyncio.timeout(_DRAIN_S):
            async for _ in events:
                pass


@functools.cache
def _request_options() -> Any:
    """The request options ``chat.completions.create`` sends with (bearer auth), or ``None``."""
    try:
        import inspect

        from openai._base_client import make_request_options

        if "security" in inspect.signature(make_request_options).parameters:
            return make_request_options(security={"bearer_auth": True})
    except (ImportError, TypeError, ValueError):
        pass
    return None


POOL_STREAMS = 16
"""Streams in flight on one connection pool before the fast path spreads them over another (count)."""


class _Pools:
    """Copies of one provider client, each with its own HTTP connection pool, used least-loaded first.

    ``httpcore``'s pool walks every connection it holds each time a request
    starts or a response closes (and probes each idle one's socket with a
    ``poll``): with 100 streams on one pool, that walk took about a fifth of the
    event loop's CPU in ``bench.many_users`` and stalled it for hundreds of
    milliseconds at the reduce phase. Spreading the streams over pools of at
    most :data:`POOL_STREAMS` makes each walk that much shorter. A copy differs
    from the model's client only by its ``httpx`` client (the SDK's default,
    with the same timeout, base URL and TLS context), so it sends the same requests.
    """

    def __init__(self, root: Any) -> None:
        self.clients: list[Any] = [root]
        self.streams: list[int] = [0]

    def acquire(self) -> int:
        """Index of the client for a new stream (counted in flight until :meth:`release`)."""
        index = min(range(len(self.clients)), key=self.streams.__getitem__)
        if self.streams[index] >= POOL_STREAMS:
            index = self._add()
        self.streams[index] += 1
        return index

    def release(self, index: int) -> None:
        """The stream started by :meth:`acquire` ``index`` is over."""
        self.streams[index] -= 1

    def _add(self) -> int:
        import openai

        root = self.clients[0]
        options: dict[str, Any] = {"timeout": root._client.timeout, "base_url": root._client.base_url}
        # The root's TLS context, the same settings: making one loads the CA file (tens of ms).
        context = getattr(
            getattr(getattr(root._client, "_transport", None), "_pool", None), "_ssl_context", None
        )
        if isinstance(context, ssl.SSLContext):
            options["verify"] = context
        http = openai.DefaultAsyncHttpxClient(**options)
        self.clients.append(root.copy(http_client=http))
        self.streams.append(0)
        return len(self.clients) - 1


_POOLS: weakref.WeakKeyDictionary[Any, _Pools] = weakref.WeakKeyDictionary()
"""The :class:`_Pools` of each provider client (``ChatOpenAI.root_async_client``) in use."""


def _pools_of(model: Any) -> _Pools | None:
    """The pools to spread ``model``'s streams over, or ``None`` to keep its one client.

    Only a model on the SDK's default HTTP client is spread: a client the user
    gave (``http_async_client``: proxies, transports, hooks...) is used as given.
    """
    import openai

    root = model.root_async_client
    if getattr(model, "http_async_client", None) is not None:
        return None
    if not isinstance(getattr(root, "_client", None), openai.DefaultAsyncHttpxClient):
        return None
    try:
        pools = _POOLS.get(root)
        if pools is None:
            pools = _POOLS[root] = _Pools(root)
    except TypeError:  # pragma: no cover - a client that cannot be weakly referenced
        return None
    return pools


async def _create(model: Any, payload: dict[str, Any], client: Any = None) -> Any:
    """Start the streamed request as ``model.async_client.create(**payload)`` does.

    ``client`` is the provider client to send it with (``model.root_async_client``
    or one of its :class:`_Pools` copies; that one when ``None``).

    For a payload of plain fields and text messages, the SDK's parameter
    transformation (half a millisecond of CPU per call, and the identity for
    such a payload) is skipped: the same body goes to the same ``post`` with
    the same options. Anything else goes through ``create``.
    """
    options = _request_options()
    plain = options is not None and not (payload.keys() & _OPTION_KEYS)
    plain = plain and all(isinstance(m.get("content"), str) for m in payload.get("messages") or ())
    if client is None:
        client = model.root_async_client
    if not plain:
        if client is model.root_async_client:
            return await model.async_client.create(**payload)
        return await client.chat.completions.create(**payload)
    from openai import AsyncStream
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

    return await client.post(
        "/chat/completions",
        body=payload,
        options=options,
        cast_to=ChatCompletion,
        stream=True,
        stream_cls=AsyncStream[ChatCompletionChunk],
    )


async def _fast_openai(model: Any, value: PromptValue) -> AsyncIterator[Piece]:
    """The ChatOpenAI fast path: the model's request and client, the events parsed as plain JSON.

    Raises:
        openai.APIError: As ``ChatOpenAI``'s stream raises it (mapped by
            ``langchain-openai``): HTTP errors, an ``error`` in the stream,
            timeouts, connection failures.
        json.JSONDecodeError: A ``data:`` line that is not JSON.
    """
    parts = _openai_parts()
    assert parts is not None  # checked by fast_path_reason
    _, openai, bad_request, api_error = parts
    kwargs: dict[str, Any] = {"stream": True}
    stream_usage = model._should_stream_usage(None, **kwargs)
    if stream_usage:
        kwargs["stream_options"] = {"include_usage": stream_usage}
    payload = model._get_request_payload(value, stop=None, **kwargs)
    if "response_format" in payload:  # pragma: no cover - never in a plain ChatOpenAI's payload
        async for piece in _generic(model, value):
            yield piece
        return
    timeouts, transport = _transport_errors()
    pools = _pools_of(model)
    pool = pools.acquire() if pools is not None else 0
    try:
        stream = await _create(model, payload, pools.clients[pool] if pools is not None else None)
        response = stream.response  # read here, not through the SDK's pydantic chunks
        try:
            events = _sse_data(response, timeouts, transport, openai)
            async for data in events:
                if data.startswith(b"[DONE]"):
                    # As the SDK does: read the rest of the body, so that the connection is reused.
                    await _drain(events, openai)
                    break
                chunk = json.loads(data)
                if not isinstance(chunk, dict):
                    continue
                error = chunk.get("error")
                if error:
                    message = error.get("message") if isinstance(error, dict) else None
                    if not message or not isinstance(message, str):
                        message = "An error occurred during streaming"
                    raise openai.APIError(message=message, request=response.request, body=error)
                usage = chunk.get("usage")
                counted = (
                    TokenCount(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
                    if isinstance(usage, dict) and usage
                    else None
                )
                choices = chunk.get("choices") or ()
                delta = choices[0].get("delta") if choices else None
                text = (delta.get("content") or "") if isinstance(delta, dict) else ""
                if text or counted is not None:
                    yield (text if isinstance(text, str) else ""), counted
        finally:
            await response.aclose()
    except openai.BadRequestError as error:
        bad_request(error)
        raise
    except openai.APIError as error:
        api_error(error)
        raise
    finally:
        if pools is not None:
            pools.release(pool)
