"""Turns for bursts of heavy steps, so that one event-loop iteration stays short.

A server's event loop runs every callback that is ready at the start of an
iteration before it looks at its timers and sockets again. When a hundred
sessions send ``start`` in the same instant, or a hundred jobs finish their map
calls together, a hundred heavy synchronous steps (creating a job in the store,
formatting a prompt and opening a model stream through LangChain) become ready
at once: one iteration then runs for 50-90 ms, and every other session's tokens,
acknowledgements and heartbeats wait that long (``bench.many_users``: the
server's event-loop lag p99 was 66 ms, all of it in such bursts).

:func:`take_turn` is awaited before such a step. Without contention it returns
at once (no suspension, no cost). Within one iteration, steps may start until
:data:`SLICE_S` has passed since the first one; later ones queue, first come
first served, and are released a few per iteration: as many as fit in
:data:`SLICE_S` at the cost per step measured on the slices before (an
exponentially weighted mean of each slice's duration over its steps), at least
one. The same work is done in the same order; it is spread over iterations,
with the loop's timers and sockets served between them. This is cooperative
time slicing in the manner of a fair scheduler's quantum; asyncio itself only
offers ``sleep(0)``, which puts a step at the end of the current ready queue and
so bounds nothing.

There is one :class:`Pacer` per event loop, shared by every job of the process.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Final

__all__ = ["SLICE_S", "Pacer", "pacer", "take_turn"]

SLICE_S: Final = 0.004
"""Time one iteration may spend starting paced steps (seconds)."""

_SMOOTHING: Final = 0.3
"""Weight of the newest slice in the mean cost per step."""


class Pacer:
    """Lets heavy steps start a slice's worth per event-loop iteration, in arrival order.

    Args:
        loop: The event loop whose iterations are sliced.
        slice_s: Time (seconds, default :data:`SLICE_S`) one iteration may
            spend on steps started through :meth:`turn`; a step already started
            is never interrupted, so an iteration can exceed it by one step.
        clock: Monotonic clock in seconds (default :func:`time.perf_counter`).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        slice_s: float = SLICE_S,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._loop = loop
        self._slice_s = slice_s
        self._clock = clock or time.perf_counter
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._open = False  # steps were started in the current slice; _close is scheduled
        self._began = 0.0  # when the current slice's first step started
        self._steps = 0  # steps started in the current slice
        self._cost = 0.0  # mean seconds per step (0: not measured yet)
        self.waited = 0
        """Steps that had to wait for a later iteration (a count, for diagnostics and tests)."""

    @property
    def queued(self) -> int:
        """Steps waiting for their turn now."""
        return sum(not f.done() for f in self._waiters)

    async def turn(self) -> None:
        """Return when the caller may run its step: at once, or in a later iteration.

        Raises:
            asyncio.CancelledError: The caller was cancelled while it waited
                (its place is given up).
        """
        if not self._waiters and self._fits():
            self._start()
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        self.waited += 1
        try:
            await waiter
        except asyncio.CancelledError:
            if not waiter.cancelled():  # released, then cancelled: its place goes to the next one
                self._release(1)
            raise

    def _fits(self) -> bool:
        return not self._open or self._clock() - self._began < self._slice_s

    def _start(self, steps: int = 1) -> None:
        """Count ``steps`` into the current slice, opening it (and scheduling its close) if needed.

        :meth:`_release` calls it after resolving the released waiters' futures:
        their wake-ups are then ahead of :meth:`_close` in the loop's ready
        queue, so the close runs, and measures, after them.
        """
        if not self._open:
            self._open = True
            self._began = self._clock()
            self._steps = 0
            self._loop.call_soon(self._close)
        self._steps += steps

    def _close(self) -> None:
        """Runs in the iteration after a slice: measure it, then release the next steps."""
        elapsed = self._clock() - self._began
        if self._steps:
            cost = elapsed / self._steps
            self._cost = cost if not self._cost else (1 - _SMOOTHING) * self._cost + _SMOOTHING * cost
        self._open = False
        if self._waiters:
            self._release(max(1, int(self._slice_s / self._cost)) if self._cost > 0 else 1)

    def _release(self, count: int) -> None:
        """Wake up to ``count`` waiters; they run in the next iteration, in one slice."""
        released = 0
        while released < count and self._waiters:
            waiter = self._waiters.popleft()
            if waiter.done():  # cancelled while it waited
                continue
            waiter.set_result(None)
            released += 1
        if released:
            self._start(released)


_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pacer] = weakref.WeakKeyDictionary()


def pacer() -> Pacer:
    """The running event loop's :class:`Pacer` (made on first use).

    Raises:
        RuntimeError: No event loop is running in this thread.
    """
    loop = asyncio.get_running_loop()
    found = _PACERS.get(loop)
    if found is None:
        found = _PACERS[loop] = Pacer(loop)
    return found


async def take_turn() -> None:
    """Await the running loop's :class:`Pacer` before a heavy synchronous step.

    Raises:
        asyncio.CancelledError: Cancelled while waiting.
    """
    await pacer().turn()
