"""What went wrong with a model call, and whether and when to try it again.

:func:`classify_error` turns whatever a provider SDK raised (``openai``'s
exceptions, ``httpx`` transport errors, timeouts, anything with a
``status_code``) into one :class:`~summarizer.errors.ModelCallError` subclass
with the wire code the user sees:

==========================================  ==========================  =========
provider answer                             error                       retried
==========================================  ==========================  =========
HTTP 401, 403                               ``authentication_failed``   no
HTTP 404                                    ``model_not_found``         no
HTTP 400/413 "context length exceeded"      ``context_too_long``        split
HTTP 429 (``Retry-After`` honoured)         ``rate_limited``            yes
HTTP 429 ``insufficient_quota``             ``rate_limited``            no
HTTP 408, 409, 5xx; connection failed       ``provider_unavailable``    yes
connect/read timeout, stalled stream        ``model_timeout``           yes
malformed stream (bad JSON in an SSE line)  ``model_error``             yes
other HTTP 4xx, anything else               ``model_error``             no
==========================================  ==========================  =========

:class:`RetryPolicy` says how long to wait before retry *n*: exponential
backoff with jitter, at least what ``Retry-After`` asks, at most ``max_s``.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import (
    AuthenticationFailed,
    ContextTooLong,
    ErrorCode,
    ModelCallError,
    ModelNotFound,
    ModelTimeout,
    ProviderUnavailable,
    RateLimited,
    SummarizerError,
)

__all__ = ["RetryPolicy", "classify_error", "is_context_overflow", "parse_retry_after"]

_CONTEXT = re.compile(
    r"context[_ ]length|context[_ ]window|maximum context|context size|exceeds? the (?:\w+ )*context"
    r"|too many (?:input )?tokens|prompt is too long|input is too long"
    r"|reduce the length of the (?:messages|prompt)",
    re.IGNORECASE,
)
_CONTEXT_CODES = frozenset(
    {"context_length_exceeded", "exceed_context_size_error", "string_above_max_length"}
)
_TIMEOUT_NAMES = frozenset(
    {"TimeoutException", "ReadTimeout", "ConnectTimeout", "WriteTimeout", "PoolTimeout"}
)
_TRANSPORT_NAMES = frozenset(
    {"TransportError", "NetworkError", "ConnectError", "ReadError", "WriteError", "RemoteProtocolError"}
)
_MAX_DETAIL = 300
_SDK_PREFIX = re.compile(r"^Error code: \d+ - ")
"""What the ``openai`` SDK puts before the provider's message."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to wait before retrying a failed model call.

    Attributes:
        max_retries: Retries after the first attempt (0: never retry).
        base_s: Delay before the first retry (seconds); doubles each retry.
        max_s: Longest delay (seconds), also the cap of a provider's ``Retry-After``.
    """

    max_retries: int = 4
    base_s: float = 1.0
    max_s: float = 30.0

    def delay(
        self, attempt: int, retry_after_s: float | None = None, *, rng: Callable[[], float] = random.random
    ) -> float:
        """Seconds to wait before retry number ``attempt``.

        "Equal jitter": half of ``base_s * 2**(attempt - 1)`` fixed, the other half
        random, so that concurrent calls that failed together do not retry together.

        Args:
            attempt: The retry about to be made, from 1.
            retry_after_s: What the provider asked for (``Retry-After``), if anything:
                the delay is at least this.
            rng: Uniform random numbers in [0, 1) (injectable for tests).

        Returns:
            The delay in seconds, between 0 and ``max_s``.
        """
        backoff = float(self.base_s * 2 ** max(attempt - 1, 0))
        delay = backoff / 2 + rng() * backoff / 2
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return max(0.0, min(delay, self.max_s))


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds a provider asks to wait, from ``retry-after-ms`` or ``Retry-After``.

    Args:
        headers: Response headers (case-insensitive mapping, e.g. ``httpx.Headers``),
            or ``None``.
        now: Current Unix time in seconds, for an HTTP-date value (default: now).

    Returns:
        The delay in seconds (``>= 0``), or ``None`` if absent or unreadable.
    """
    if not headers:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def is_context_overflow(message: str, code: str | None = None) -> bool:
    """Whether a provider's error says the prompt exceeds the context window.

    OpenAI sends ``code: "context_length_exceeded"``; vLLM, llama.cpp, LM Studio
    and others only say it in words ("This model's maximum context length is
    ... tokens", "the request exceeds the available context size").

    Args:
        message: The error message.
        code: The provider's error code, if any.

    Returns:
        ``True`` for a context overflow.
    """
    return (code or "") in _CONTEXT_CODES or bool(_CONTEXT.search(message))


def classify_error(exc: BaseException, *, model: str = "") -> SummarizerError:
    """Sort an exception raised by a model call into a wire error.

    Args:
        exc: What the model call raised.
        model: The model's name, for the message.

    Returns:
        ``exc`` itself if it already is a :class:`~summarizer.errors.SummarizerError`,
        else a :class:`~summarizer.errors.ModelCallError` subclass (see the
        module's table) whose ``retryable`` says whether retrying may help.
    """
    if isinstance(exc, SummarizerError):
        return exc
    who = f"model {model!r}" if model else "the model"
    detail = _detail(exc)
    names = {cls.__name__ for cls in type(exc).__mro__}
    if isinstance(exc, TimeoutError) or names & {"APITimeoutError"} or names & _TIMEOUT_NAMES:
        return ModelTimeout(f"The call to {who} timed out: {detail}")
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return _from_status(exc, status, who, detail)
    if names & {"APIConnectionError"} or names & _TRANSPORT_NAMES or isinstance(exc, ConnectionError):
        return ProviderUnavailable(f"Cannot reach the provider of {who}: {detail}")
    if isinstance(exc, json.JSONDecodeError) or names & {"APIResponseValidationError"}:
        return ModelCallError(
            f"The provider of {who} sent a malformed response: {detail}",
            code=ErrorCode.MODEL_ERROR,
            retryable=True,
        )
    if is_context_overflow(str(exc), _code(exc)):
        return ContextTooLong(f"The prompt is too long for {who}: {detail}")
    return ModelCallError(
        f"The call to {who} failed: {type(exc).__name__}: {detail}", code=ErrorCode.MODEL_ERROR
    )


def _from_status(exc: BaseException, status: int, who: str, detail: str) -> ModelCallError:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    retry_after = parse_retry_after(headers)
    code = _code(exc)
    head = f"HTTP {status} from the provider of {who}"
    if status in (401, 403):
        return AuthenticationFailed(
            f"{head}: the API key was refused ({detail}). Check OPENAI_API_KEY (or the provider's key).",
            status=status,
        )
    if status == 404:
        return ModelNotFound(
            f"{head}: the model does not exist there ({detail}). Check the model name and the base URL.",
            status=status,
        )
    if status == 429:
        if code == "insufficient_quota":
            return RateLimited(
                f"{head}: the account's quota is used up ({detail}). Check the plan and billing.",
                status=status,
                retryable=False,
            )
        return RateLimited(f"{head}: too many requests ({detail}).", status=status, retry_after_s=retry_after)
    if status == 413 or (400 <= status < 500 and is_context_overflow(detail, code)):
        return ContextTooLong(f"{head}: the prompt is too long for the model ({detail}).", status=status)
    if status in (408, 409) or status >= 500:
        return ProviderUnavailable(f"{head}: {detail}", status=status, retry_after_s=retry_after)
    return ModelCallError(f"{head}: {detail}", code=ErrorCode.MODEL_ERROR, status=status)


def _code(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code
    body: Any = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            for key in ("code", "type"):
                if isinstance(inner.get(key), str):
                    return str(inner[key])
    return None


def _detail(exc: BaseException) -> str:
    """The first line of the exception's message (its class name if empty), shortened."""
    text = _SDK_PREFIX.sub("", (getattr(exc, "message", None) or str(exc)).strip())
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= _MAX_DETAIL else line[: _MAX_DETAIL - 1] + "…"
