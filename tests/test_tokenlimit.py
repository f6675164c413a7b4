"""``SUMMARIZER_TOKENS_PER_MINUTE`` on model calls: local and Redis budgets, the model wrapper,
and the rate measured at a fake OpenAI server across three processes on one Redis."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from summarizer.ingest.types import Chunk
from summarizer.models.tokenlimit import DEFAULT_OUTPUT_TOKENS, estimate_tokens, limit_tokens
from summarizer.pipeline import PipelineConfig, summarize_into
from summarizer.ratelimit import LocalTokenBucket
from summarizer.server import ModelRegistry
from summarizer.settings import Settings

from .fake_openai import FakeOpenAI
from .fakes import EchoModel
from .redis_fixtures import REDIS_SERVER, RedisServer, redis_server  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_local_bucket_holds_one_minute_and_refills_at_the_rate() -> None:
    clock = Clock()
    bucket = LocalTokenBucket(6000, clock=clock)  # 100 tokens a second
    assert bucket.try_take(4000) == 0 and bucket.try_take(2000) == 0  # a minute's budget at once
    wait = bucket.try_take(500)
    assert wait == pytest.approx(5.0)  # 500 tokens come back in 5 s
    clock.now += 5.0
    assert bucket.try_take(500) == 0


def test_local_bucket_a_call_larger_than_the_minute_goes_and_leaves_a_debt() -> None:
    """Not deadlocked: a take of 2.5 minutes' budget waits until the bucket is full (at once here),
    goes; the excess (1.5 minutes) is charged as a debt the next take waits out."""
    clock = Clock()
    bucket = LocalTokenBucket(600, clock=clock)  # 10 tokens a second
    assert bucket.acquire_tokens(1500, blocking=False)  # takes the whole budget
    bucket.charge_tokens(1500 - 600)  # what the wrapper charges for the rest of the call
    wait = bucket.try_take(10)
    assert wait == pytest.approx(90.0 + 1.0)  # the 900-token debt (90 s), then 10 tokens (1 s)
    bucket.charge_tokens(-1e9)  # a refund never goes below "empty"
    assert bucket.try_take(600) == 0


def test_redis_bucket_has_the_same_semantics(redis_server: RedisServer) -> None:  # noqa: F811
    from summarizer.ratelimit import RedisRateLimiter

    bucket = RedisRateLimiter(
        redis_server.url, None, tokens_per_minute=600, prefix=f"tl{time.monotonic_ns()}:"
    )
    try:
        assert bucket.acquire_tokens(1500, blocking=False)  # larger than the minute: takes it all
        bucket.charge_tokens(900)
        start = time.monotonic()
        assert not bucket.acquire_tokens(10, blocking=False)
        assert bucket._try(*bucket._token_args(10)) == pytest.approx(91.0, abs=0.5)
        bucket.charge_tokens(-1e9)
        assert bucket.acquire_tokens(600, blocking=False)
        assert time.monotonic() - start < 5
    finally:
        bucket.close()


class RecordingBudget:
    """A TokenBudget that records what is taken, blocking or not."""

    tokens_per_minute: float | None = 1e9

    def __init__(self) -> None:
        self.taken: list[tuple[str, float]] = []

    def acquire_tokens(self, tokens: float, *, blocking: bool = True) -> bool:
        self.taken.append(("take", tokens))
        return True

    async def aacquire_tokens(self, tokens: float, *, blocking: bool = True) -> bool:
        self.taken.append(("take", tokens))
        return True

    def charge_tokens(self, tokens: float) -> None:
        self.taken.append(("charge", tokens))


def _chunks(n: int, chars: int) -> list[Chunk]:
    out = []
    for i in range(n):
        text = (f"Sentence {i} of the document says something about topic {i}. " * 40)[:chars]
        out.append(Chunk(index=i, text=text, start=i * chars, end=(i + 1) * chars, first_page=1, last_page=1))
    return out


async def _aiter(items: list[Chunk]) -> Any:
    for item in items:
        yield item


async def test_the_pipeline_waits_before_each_call_and_charges_exactly_its_estimate() -> None:
    """Through the pipeline, every call waits in its limiter (outside the first-token timeout) for a
    reservation, then charges the difference to its exact estimate: the total charged is the sum of
    the calls' estimates (messages' characters / 4 + max output tokens)."""
    inner = EchoModel(words=5)
    budget = RecordingBudget()
    model = limit_tokens(inner, budget, output_tokens=50)
    costs: list[int] = []
    original = model.limiter.observe

    def observe(cost: float) -> None:
        costs.append(int(cost))
        original(cost)

    model.limiter.observe = observe  # type: ignore[method-assign]
    events: list[Any] = []
    await summarize_into(events.append, _aiter(_chunks(6, 900)), model, config=PipelineConfig(concurrency=2))
    assert events[-1].type == "summary"
    calls = len(inner.prompts)
    assert calls >= 7 and len(costs) == calls
    takes = [t for kind, t in budget.taken if kind == "take"]
    assert len(takes) == calls  # one blocking reservation per call, all in the limiter
    assert sum(t for _, t in budget.taken) == pytest.approx(sum(costs))
    # The estimate is the messages' characters / 4 + the max output tokens.
    messages = [HumanMessage(content=p) for p in inner.prompts]
    assert all(c > 50 for c in costs)
    assert estimate_tokens(messages[:1], 50) == math.ceil(len(inner.prompts[0]) / 4) + 50


async def test_a_model_used_directly_takes_its_whole_cost_itself() -> None:
    budget = RecordingBudget()
    model = limit_tokens(EchoModel(words=3), budget, output_tokens=10)
    copy = model.model_copy(update={"rate_limiter": None})  # what the pipeline does; nobody reserves
    await copy.ainvoke([HumanMessage(content="x" * 400)])
    assert budget.taken == [("take", 100 + 10)]


def test_the_server_registry_wraps_models_with_a_local_budget_without_redis(tmp_path: Path) -> None:
    registry = ModelRegistry(Settings(data_dir=tmp_path, tokens_per_minute=60000), {"echo": EchoModel()})
    assert isinstance(registry.budget, LocalTokenBucket)
    _, model = registry.get("echo")
    assert type(model).__name__ == "TokenLimitedChatModel"
    _, plain = ModelRegistry(Settings(data_dir=tmp_path), {"echo": EchoModel()}).get("echo")
    assert isinstance(plain, EchoModel)
    assert model.output_tokens == DEFAULT_OUTPUT_TOKENS


WORKER = textwrap.dedent(
    """
    import asyncio, sys, time
    from summarizer.ingest.types import Chunk
    from summarizer.pipeline import PipelineConfig, summarize_into
    from summarizer.server import ModelRegistry
    from summarizer.settings import Settings

    redis_url, base_url, data, me = sys.argv[1], sys.argv[2], sys.argv[4], sys.argv[5]
    tpm = float(sys.argv[3])
    settings = Settings(model="openai:fake-ok", base_url=base_url, redis_url=redis_url,
                        tokens_per_minute=tpm, data_dir=data)
    registry = ModelRegistry(settings)
    _, model = registry.get(None)
    print("ready", flush=True)
    start, stop = (float(a) for a in sys.stdin.readline().split())

    async def chunks():
        i = 0
        while True:
            text = (f"Process {me} chunk {i} tells of topic {i} at some length. " * 30)[:1000]
            yield Chunk(index=i, text=text, start=i * 1000, end=(i + 1) * 1000, first_page=1, last_page=1)
            i += 1
            await asyncio.sleep(0.1)  # a bounded supply, ~10 chunks a second: above the budget

    async def main():
        while time.time() < start:
            await asyncio.sleep(0.01)
        task = asyncio.create_task(summarize_into(lambda e: None, chunks(), model,
                                                  config=PipelineConfig(concurrency=2, max_retries=0)))
        await asyncio.sleep(stop - time.time())
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    asyncio.run(main())
    print("done", flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server")
def test_three_processes_share_one_token_rate_within_ten_percent(
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Three processes, each running map calls at concurrency 2 against the fake OpenAI server
    through the server's model registry (Redis budget): the tokens the fake server receives per
    second (each request's characters / 4 + the stated 400 output tokens) stay within ±10% of
    ``tokens_per_minute / 60``."""
    from summarizer.ratelimit import RedisRateLimiter

    pytest.importorskip("langchain_openai")
    tpm = 240_000.0  # 4000 tokens a second; a call here is ~860 tokens
    with FakeOpenAI(max_words=5).running() as fake:
        redis_server_url = redis_server.url
        subprocess.run(  # a clean budget (the default prefix), then empty it below
            [sys.executable, "-c", f"import redis; redis.Redis.from_url({redis_server_url!r}).flushdb()"],
            check=True,
        )
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    WORKER,
                    redis_server_url,
                    fake.url,
                    str(tpm),
                    str(tmp_path / f"d{i}"),
                    str(i),
                ],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(3)
        ]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        drain = RedisRateLimiter(redis_server_url, None, tokens_per_minute=tpm)
        assert drain.acquire_tokens(tpm, blocking=False)  # the minute's burst is used: steady state
        drain.close()
        start = time.time() + 0.3
        stop = start + 16.0
        mono_offset = time.monotonic() - time.time()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(f"{start!r} {stop!r}\n")
            p.stdin.flush()
        for p in procs:
            out, _ = p.communicate(timeout=90)
            assert out.strip().endswith("done")
        requests = list(fake.requests)
    assert {r.max_tokens for r in requests} == {None}  # no max_tokens: the stated estimate applies
    lo, hi = start + 2.0 + mono_offset, stop - 0.5 + mono_offset
    window = [r for r in requests if lo <= r.at < hi]
    tokens = sum(math.ceil(r.chars / 4) + DEFAULT_OUTPUT_TOKENS for r in window)
    rate = tokens / (hi - lo)
    setting = tpm / 60
    print(
        "TOKENRATE",
        json.dumps({"setting_per_s": setting, "measured_per_s": round(rate, 1), "requests": len(window)}),
    )

    assert setting * 0.9 <= rate <= setting * 1.1
    who = [r.prompt.split("Process ", 1)[1][:1] for r in requests if "Process " in r.prompt]
    print("TOKENRATE per process", {p: who.count(p) for p in sorted(set(who))})
    assert set(who) == {"0", "1", "2"}  # all three took part (first come, first served)


async def test_cancel_while_waiting_for_tokens_is_prompt() -> None:
    """A call waiting for the budget is cancelled at once (the wait is an asyncio sleep)."""
    bucket = LocalTokenBucket(60)  # 1 token a second
    bucket.acquire_tokens(60)
    model = limit_tokens(EchoModel(words=3), bucket, output_tokens=10)
    task = asyncio.create_task(model.ainvoke([HumanMessage(content="hello")]))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("shared", [False, True], ids=["local", "redis"])
async def test_a_large_take_is_not_overtaken_by_small_ones(shared: bool, redis_server: RedisServer) -> None:  # noqa: F811
    """First come, first served: a reduce-sized take waits its turn, then goes before the map-sized
    takes that asked after it, though each of those would fit sooner (they used to sneak in)."""
    from summarizer.ratelimit import RedisRateLimiter

    bucket: Any = (
        RedisRateLimiter(redis_server.url, None, tokens_per_minute=6000, prefix=f"fifo{time.monotonic_ns()}:")
        if shared
        else LocalTokenBucket(6000)  # 100 tokens a second
    )
    try:
        assert bucket.acquire_tokens(6000, blocking=False)  # the minute's budget is used up
        done: list[str] = []

        async def take(name: str, tokens: float) -> None:
            await bucket.aacquire_tokens(tokens)
            done.append(name)

        large = asyncio.create_task(take("large", 40))  # fits in 0.4 s
        await asyncio.sleep(0.05)
        small = [asyncio.create_task(take(f"small{i}", 5)) for i in range(4)]  # each would fit in 0.05 s
        started = time.monotonic()
        await asyncio.gather(large, *small)
        # (the four small ones ask at once: with Redis, their threads reach it in any order)
        assert done[0] == "large" and sorted(done[1:]) == ["small0", "small1", "small2", "small3"], done
        assert time.monotonic() - started < 2.0
        # A waiter that is cancelled gives its place back: the next take is not delayed by it.
        waiter = asyncio.create_task(take("cancelled", 3000))  # 30 s
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        begun = time.monotonic()
        await take("after", 5)
        assert time.monotonic() - begun < 1.0
    finally:
        if shared:
            bucket.close()
