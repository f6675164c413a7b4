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
  take ``SUMMARIZER_TOKENS_PER_MINUTE`` budget (bursts up to one minute's budget);
  :meth:`~RedisRateLimiter.charge_tokens` adds (or refunds) tokens without waiting.
* :class:`LocalTokenBucket` is the same token budget in one process (no Redis).

Both token budgets follow one rule (:class:`TokenBudget`): a take waits until it
fits in the budget (the budget refills at ``tokens_per_minute / 60`` a second and
holds at most one minute's worth); a take larger than a whole minute's budget
waits until the budget is full, goes, and leaves the rest as a debt that later
takes wait out. Nothing is ever refused, so no call can deadlock; the long-run
rate is the setting. Blocking takes are served first come, first served: a take
*reserves* its tokens when it asks (the TAT moves at once) and then sleeps until
they are its own, so a large call (a reduce) is never overtaken by a stream of
small ones (map calls) that would each fit sooner; with Redis the order holds
across replicas. A waiter that is cancelled gives its reservation back.
:mod:`summarizer.models.tokenlimit` applies it to model calls.

``redis`` is imported lazily (the ``redis`` extra).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from langchain_core.rate_limiters import BaseRateLimiter

__all__ = ["LocalTokenBucket", "RedisRateLimiter", "TokenBudget"]


@runtime_checkable
class TokenBudget(Protocol):
    """A tokens-per-minute budget (Redis-shared or local); see the module docstring.

    Attributes:
        tokens_per_minute: The budget's rate (tokens per minute), or ``None`` for unlimited.
    """

    tokens_per_minute: float | None

    def acquire_tokens(self, tokens: float, *, blocking: bool = True) -> bool:
        """Take ``tokens`` (waits until they fit unless ``blocking`` is false)."""
        ...

    async def aacquire_tokens(self, tokens: float, *, blocking: bool = True) -> bool:
        """:meth:`acquire_tokens` for the event loop."""
        ...

    def charge_tokens(self, tokens: float) -> None:
        """Add ``tokens`` at once, without waiting (a debt if over budget); negative refunds."""
        ...


# ARGV: interval, cost, tolerance, and "1" to reserve. Without it, a take that does not fit is
# refused with the microseconds to wait; a reservation takes ``cost`` in any case (in order of
# arrival) and returns the microseconds until it is within the tolerance (0: at once).
_GCRA = """
local interval = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local reserve = ARGV[4] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - tolerance
if allow_at > now and not reserve then return math.ceil(allow_at - now) end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
if allow_at > now then return math.ceil(allow_at - now) end
return 0
"""

# Unconditional charge (ARGV: interval, cost; a negative cost refunds, never below "now").
_CHARGE = """
local interval = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval * cost
if new_tat <= now then redis.call('DEL', KEYS[1]) return 0 end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return 1
"""


class RedisRateLimiter(BaseRateLimiter):
    """Requests per second (and optionally tokens per minute) for every replica together.

    Args:
        url: ``redis://HOST:PORT/DB``, the service's Redis.
        requests_per_second: Requests per second, all replicas together (> 0), or
            ``None`` for no request limit.
        tokens_per_minute: Tokens per minute for :meth:`acquire_tokens`, or ``None``.
        prefix: Key prefix (the store's, by default ``summarizer:``).
        max_wait_step_s: Longest single sleep of a request waiting for its turn
            (seconds, default 0.5 s), so it re-checks often; token takes reserve
            and sleep once.

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
        self._charge = self._r.register_script(_CHARGE)
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

        Blocking, the take reserves its place at once and sleeps until its turn
        (first come, first served across replicas); not blocking, it takes only
        if the tokens fit now.

        Returns:
            Whether they were taken (always, when blocking or with no token limit).
        """
        if self.tokens_per_minute is None or tokens <= 0:
            return True
        if not blocking:
            return self._try(*self._token_args(tokens)) == 0
        key, interval, cost, tolerance = self._token_args(tokens)
        wait = int(self._script(keys=[key], args=[repr(interval), repr(cost), repr(tolerance), "1"])) / 1e6
        try:
            if wait > 0:
                time.sleep(wait)
        except BaseException:
            self.charge_tokens(-cost)  # interrupted: the reservation is given back
            raise
        return True

    async def aacquire_tokens(self, tokens: float, *, blocking: bool = True) -> bool:
        """:meth:`acquire_tokens` for the event loop (a cancelled waiter gives its reservation back)."""
        if self.tokens_per_minute is None or tokens <= 0:
            return True
        if not blocking:
            return await asyncio.to_thread(self._try, *self._token_args(tokens)) == 0
        key, interval, cost, tolerance = self._token_args(tokens)
        args = [repr(interval), repr(cost), repr(tolerance), "1"]
        wait = int(await asyncio.to_thread(self._script, keys=[key], args=args)) / 1e6
        try:
            if wait > 0:
                await asyncio.sleep(wait)
        except BaseException:
            await asyncio.to_thread(self.charge_tokens, -cost)
            raise
        return True

    def charge_tokens(self, tokens: float) -> None:
        """Add ``tokens`` to the budget's use at once, without waiting (the part of a call beyond
        what was taken ahead: a debt that later takes wait out); a negative number refunds."""
        if self.tokens_per_minute is None or tokens == 0:
            return
        interval = 60e6 / self.tokens_per_minute
        self._charge(keys=[self._tokens_key], args=[repr(interval), repr(float(tokens))])

    def close(self) -> None:
        """Close the connection pool."""
        self._r.close()


class LocalTokenBucket:
    """A tokens-per-minute budget for one process, with the semantics of the Redis one.

    The same GCRA as :class:`RedisRateLimiter` on the monotonic clock, guarded by a
    lock (thread- and task-safe).

    Args:
        tokens_per_minute: Tokens per minute (> 0).
        clock: Monotonic clock in seconds (injectable for tests).

    Raises:
        ValueError: The rate is not positive.
    """

    def __init__(
        self,
        tokens_per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if tokens_per_minute <= 0:
            raise ValueError(f"rates must be positive, got {tokens_per_minute}")
        self.tokens_per_minute: float | None = tokens_per_minute
        self._clock = clock
        self._interval = 60.0 / tokens_per_minute
        self._tat = 0.0
        self._lock = threading.Lock()

    def try_take(self, tokens: float) -> float:
        """Take ``tokens`` (at most one minute's budget) if they fit now.

        Returns:
            0 if taken, else the seconds to wait before they would fit.
        """
        assert self.tokens_per_minute is not None
        cost = min(tokens, self.tokens_per_minute)
        with self._lock:
            now = float(self._clock())
            tat = max(self._tat, now)
            new_tat = tat + self._interval * cost
            allow_at = new_tat - 60.0
            if allow_at > now:
                return allow_at - now
            self._tat = new_tat
            return 0.0

    def reserve(self, tokens: float) -> float:
        """Take ``tokens`` (at most one minute's budget) now, behind every earlier reservation.

        Returns:
            The seconds until they are within the budget (0: at once).
        """
        assert self.tokens_per_minute is not None
        cost = min(tokens, self.tokens_per_minute)
        with self._lock:
            now = float(self._clock())
            self._tat = max(self._tat, now) + self._interval * cost
            return max(0.0, self._tat - 60.0 - now)

    def acquire_tokens(self, tokens: float, *, blocking: bool = True) -> bool:
        """Take ``tokens`` of the per-minute budget (a take larger than the budget takes all of it).

        Blocking, the take reserves its place at once and sleeps until its turn
        (first come, first served); not blocking, it takes only if the tokens fit now.

        Returns:
            Whether they were taken (always, when blocking).
        """
        if tokens <= 0:
            return True
        if not blocking:
            return self.try_take(tokens) == 0
        wait = self.reserve(tokens)
        try:
            if wait > 0:
                time.sleep(wait)
        except BaseException:
            self.charge_tokens(-min(tokens, self.tokens_per_minute or tokens))
            raise
        return True

    async def aacquire_tokens(self, tokens: float, *, blocking: bool = True) -> bool:
        """:meth:`acquire_tokens` for the event loop (a cancelled waiter gives its reservation back)."""
        if tokens <= 0:
            return True
        if not blocking:
            return self.try_take(tokens) == 0
        wait = self.reserve(tokens)
        try:
            if wait > 0:
                await asyncio.sleep(wait)
        except BaseException:
            self.charge_tokens(-min(tokens, self.tokens_per_minute or tokens))
            raise
        return True

    def charge_tokens(self, tokens: float) -> None:
        """Add ``tokens`` at once, without waiting (a debt if over budget); negative refunds."""
        with self._lock:
            now = self._clock()
            self._tat = max(now, max(self._tat, now) + self._interval * tokens)
