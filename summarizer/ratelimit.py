"""Rate limits shared by every replica on one Redis: requests per second and tokens per minute.

A generic cell rate algorithm (GCRA) in one Lua script: each limit is one Redis
key holding its *theoretical arrival time* (TAT, microseconds on Redis's own
clock, so replicas' clocks do not matter). Taking ``cost`` units moves the TAT
by ``cost`` emission intervals; a take that would put it more than the
tolerance ahead of now is refused with the wait until it would fit. The check
and the update are one atomic script, so three replicas asking at once get a
combined rate of the setting, not three times it.

* :class:`RedisRateLimiter` is a LangChain
  :class:`~langchain_core.rate_limiters.BaseRateLimiter` (what
  :func:`summarizer.models.loader.rate_limiter` returns for one process):
  ``SUMMARIZER_REQUESTS_PER_SECOND``, spaced evenly (a burst of at most 2 lets a late
  waiter catch up; over any window of *t* seconds at most ``rate * t + 2`` requests).
* :meth:`RedisRateLimiter.acquire_tokens` / :meth:`~RedisRateLimiter.aacquire_tokens`
  take ``SUMMARIZER_TOKENS_PER_MINUTE`` budget (bursts up to one minute's budget).

``redis`` is imported lazily (the ``redis`` extra).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langchain_core.rate_limiters import BaseRateLimiter

__all__ = ["RedisRateLimiter"]

_GCRA = """
local interval = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - tolerance
if allow_at > now then return math.ceil(allow_at - now) end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return 0
"""


class RedisRateLimiter(BaseRateLimiter):
    """Requests per second (and optionally tokens per minute) for every replica together.

    Args:
        url: ``redis://HOST:PORT/DB``, the service's Redis.
        requests_per_second: Requests per second, all replicas together (> 0), or
            ``None`` for no request limit.
        tokens_per_minute: Tokens per minute for :meth:`acquire_tokens`, or ``None``.
        prefix: Key prefix (the store's, by default ``summarizer:``).
        max_wait_step_s: Longest single sleep while waiting (seconds, default 0.5 s),
            so a waiter re-checks often.

    Raises:
        ValueError: A rate is not positive.
        ImportError: The ``redis`` package is missing.
    """

    def __init__(
        self,
        url: str,
        requests_per_second: float | None,
        *,
        tokens_per_minute: float | None = None,
        prefix: str = "summarizer:",
        max_wait_step_s: float = 0.5,
    ) -> None:
        import redis

        for rate in (requests_per_second, tokens_per_minute):
            if rate is not None and rate <= 0:
                raise ValueError(f"rates must be positive, got {rate}")
        self.requests_per_second = requests_per_second
        self.tokens_per_minute = tokens_per_minute
        self.max_wait_step_s = max_wait_step_s
        self._r: Any = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._script = self._r.register_script(_GCRA)
        self._requests_key = f"{prefix}{{rl}}:requests"
        self._tokens_key = f"{prefix}{{rl}}:tokens"

    # -- the algorithm -----------------------------------------------------------------

    def _try(self, key: str, interval_us: float, cost: float, tolerance_us: float) -> float:
        """Take ``cost`` units now if they fit; returns 0, or the seconds to wait before trying again."""
        wait_us = self._script(keys=[key], args=[repr(interval_us), repr(cost), repr(tolerance_us)])
        return int(wait_us) / 1e6

    def _request_args(self) -> tuple[str, float, float, float]:
        assert self.requests_per_second is not None
        interval = 1e6 / self.requests_per_second
        # Tolerance of two intervals: a waiter woken late (a loaded machine) may catch up with one
        # extra request, so the long-run rate stays at the setting; never more than 2 at once.
        return self._requests_key, interval, 1.0, 2 * interval

    def _token_args(self, tokens: float) -> tuple[str, float, float, float]:
        assert self.tokens_per_minute is not None
        interval = 60e6 / self.tokens_per_minute
        budget = 60e6  # up to one minute's budget at once
        return self._tokens_key, interval, min(tokens, self.tokens_per_minute), budget

    # -- BaseRateLimiter ---------------------------------------------------------------

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take one request (waits until it fits unless ``blocking`` is false).

        Returns:
            Whether the request was taken.
        """
        if self.requests_per_second is None:
            return True
        while True:
            wait = self._try(*self._request_args())
            if wait == 0:
                return True
            if not blocking:
                return False
            time.sleep(min(wait, self.max_wait_step_s))

    async def aacquire(self, *, blocking: bool = True) -> bool:
        """:meth:`acquire` for the event loop (the Redis call runs in a worker thread)."""
        if self.requests_per_second is None:
            return True
        while True:
            wait = await asyncio.to_thread(self._try, *self._request_args())
            if wait == 0:
                return True
            if not blocking:
                return False
            await asyncio.sleep(min(wait, self.max_wait_step_s))

    # -- tokens --------------------------------------------------------------------------

    def acquire_tokens(self, tokens: float, *, blocking: bool = True) -> bool:
        """Take ``tokens`` of the per-minute budget (a take larger than the budget takes all of it).

        Returns:
            Whether they were taken (always, when blocking or with no token limit).
        """
        if self.tokens_per_minute is None or tokens <= 0:
            return True
        while True:
            wait = self._try(*self._token_args(tokens))
            if wait == 0:
                return True
            if not blocking:
                return False
            time.sleep(min(wait, self.max_wait_step_s))

    async def aacquire_tokens(self, tokens: float, *, blocking: bool = True) -> bool:
        """:meth:`acquire_tokens` for the event loop."""
        if self.tokens_per_minute is None or tokens <= 0:
            return True
        while True:
            wait = await asyncio.to_thread(self._try, *self._token_args(tokens))
            if wait == 0:
                return True
            if not blocking:
                return False
            await asyncio.sleep(min(wait, self.max_wait_step_s))

    def close(self) -> None:
        """Close the connection pool."""
        self._r.close()
