"""summarizer.pacing: a burst of heavy steps is spread over event-loop iterations, in order."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from summarizer.pacing import SLICE_S, Pacer, pacer, take_turn
from summarizer.pipeline import PipelineConfig, summarize_chunks
from tests.fakes import EchoModel, burn
from tests.test_pipeline import aiter_chunks, make_chunks

STEP_S = 0.002
STEPS = 40
"""40 steps of 2 ms at once: one 80 ms iteration unpaced."""


class _Iterations:
    """Measures the longest gap between two runs of a task that only yields (one iteration)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.count = 0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            self.count += 1
            last = now

    def start(self) -> _Iterations:
        """Start counting on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()

    def __enter__(self) -> _Iterations:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def test_a_burst_of_heavy_steps_never_holds_one_iteration_much_past_the_slice() -> None:
    order: list[int] = []

    async def step(i: int) -> None:
        await take_turn()
        order.append(i)
        burn(STEP_S)

    with _Iterations() as gaps:
        await asyncio.sleep(0)  # the ticker runs once before the burst
        await asyncio.gather(*(step(i) for i in range(STEPS)))
    assert order == list(range(STEPS))  # first come, first served
    # Unpaced the burst is one iteration of STEPS x STEP_S = 80 ms.
    assert gaps.longest < SLICE_S + 4 * STEP_S + 0.01, gaps.longest
    assert pacer().waited >= STEPS // 2


async def test_a_turn_without_contention_does_not_suspend() -> None:
    coroutine = Pacer(asyncio.get_running_loop()).turn()
    with pytest.raises(StopIteration):
        coroutine.send(None)  # done at the first send: no round trip through the loop


async def test_cheap_steps_are_released_many_per_iteration() -> None:
    """A heavy step fills the slice, 500 cheap ones queue behind it: the measured cost
    per step sizes the batches released, so they need far fewer iterations than steps."""
    done = 0

    async def step(heavy: bool) -> None:
        nonlocal done
        await take_turn()
        if heavy:
            burn(1.5 * SLICE_S)
        done += 1

    with _Iterations() as ticks:
        await asyncio.sleep(0)
        before = ticks.count
        await asyncio.gather(step(True), *(step(False) for _ in range(500)))
        iterations = ticks.count - before
    assert done == 501
    assert pacer().waited >= 500
    assert iterations < 60, iterations  # one per step would be 500


async def test_a_cancelled_waiter_gives_its_place_up_and_the_others_all_run() -> None:
    local = Pacer(asyncio.get_running_loop(), slice_s=0.0)
    ran: list[int] = []

    async def step(i: int) -> None:
        await local.turn()
        ran.append(i)
        burn(0.001)

    tasks = [asyncio.create_task(step(i)) for i in range(10)]
    await asyncio.sleep(0)  # step 0 ran; 1-9 wait
    tasks[3].cancel()  # waiting: leaves the queue
    await asyncio.sleep(0)  # _close released step 1
    tasks[1].cancel()  # released but not yet run: its turn goes to the next waiter
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [i for i, r in enumerate(results) if isinstance(r, asyncio.CancelledError)] == [1, 3]
    assert ran == [0, 2, 4, 5, 6, 7, 8, 9]
    assert local.queued == 0


async def test_model_calls_that_start_together_take_turns() -> None:
    """Forty one-chunk jobs whose model calls each burn 2 ms as they start (prompt
    formatting and opening a stream, in a real provider client): the pipeline takes a
    turn before each call, so no iteration runs them all."""
    model = EchoModel(start_cpu_s=STEP_S)
    config = PipelineConfig(concurrency=1)

    async def job() -> None:
        async for _ in summarize_chunks(aiter_chunks(make_chunks(1)), model, config=config):
            pass

    await job()  # warm: the prompts' templates and LangChain's imports are made on first use
    model.prompts.clear()
    with _Iterations() as gaps:
        await asyncio.sleep(0)
        await asyncio.gather(*(job() for _ in range(STEPS)))
    assert len(model.prompts) == 2 * STEPS  # a map and a reduce call each
    assert gaps.longest < SLICE_S + 4 * STEP_S + 0.01, gaps.longest


@pytest.mark.parametrize("transport", ["ws", "http"])
async def test_jobs_posted_together_take_turns_being_created(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, transport: str
) -> None:
    """Forty clients start a job at once on the real server (``start`` on the WebSocket, or
    ``POST /v1/jobs``); creating a job here burns 4 ms (a slow disk): the server's loop
    never runs more than a slice's worth of them in one iteration."""
    import httpx
    import websockets

    from summarizer.cli import running_server
    from summarizer.jobs import JobManager
    from summarizer.settings import Settings
    from tests.test_session_feed import recv_event

    real_create = JobManager.create
    ticker: list[_Iterations] = []
    iterations: list[int] = []  # per job created, the server loop's iteration it was created in

    def slow_create(self: JobManager, spec: Any) -> Any:
        if not ticker:  # on the server's loop: count its iterations from the first job on
            ticker.append(_Iterations().start())
        iterations.append(ticker[0].count)
        burn(0.004)
        return real_create(self, spec)

    monkeypatch.setattr(JobManager, "create", slow_create)
    settings = Settings(model="echo", max_jobs=STEPS, data_dir=tmp_path)  # nobody else's jobs to recover
    with running_server(settings, models={"echo": EchoModel(words=4)}) as url:
        if transport == "ws":
            start = json.dumps(
                {"type": "start", "protocol": 1, "filename": "a.txt", "media_type": "text/plain"}
            )
            sockets = [await websockets.connect(url) for _ in range(STEPS)]
            try:
                await asyncio.gather(*(ws.send(start) for ws in sockets))
                kinds = [(await recv_event(ws)).type for ws in sockets]
            finally:
                await asyncio.gather(*(ws.close() for ws in sockets))
            assert kinds == ["accepted"] * STEPS
        else:
            base = url.replace("ws://", "http://").removesuffix("/ws")
            files = {"file": ("a.txt", b"The committee met on Tuesday. " * 20, "text/plain")}
            async with httpx.AsyncClient(timeout=30) as client:
                await client.get(f"{base}/healthz")
                replies = await asyncio.gather(
                    *(client.post(f"{base}/v1/jobs", files=files) for _ in range(STEPS))
                )
            assert [r.status_code for r in replies] == [201] * STEPS, (
                Counter(r.status_code for r in replies),
                len(iterations),
            )
        ticker[0].stop()
    # At most a slice's worth of creations (4 ms each) per iteration: the one that opens
    # the slice and the one that finds it not yet spent.
    per_iteration = Counter(iterations)
    assert max(per_iteration.values()) <= 2, per_iteration
