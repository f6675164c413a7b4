"""The shared rate limit: three processes on one Redis get the setting together, not three times it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .redis_fixtures import RedisServer, redis_server  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent

WORKER = textwrap.dedent(
    """
    import json, sys, time
    from summarizer.ratelimit import RedisRateLimiter
    url, prefix, rps = sys.argv[1], sys.argv[2], float(sys.argv[3])
    limiter = RedisRateLimiter(url, rps, prefix=prefix)
    print("ready", flush=True)
    start, stop = (float(a) for a in sys.stdin.readline().split())
    while time.time() < start:
        time.sleep(0.01)
    stamps = []
    while time.time() < stop:
        limiter.acquire()
        stamps.append(time.time())
    print(json.dumps(stamps), flush=True)
    """
)


@pytest.mark.slow
def test_three_processes_share_one_request_rate_within_ten_percent(redis_server: RedisServer) -> None:  # noqa: F811
    rps = 20.0
    prefix = f"rl{time.monotonic_ns()}:"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, redis_server.url, prefix, str(rps)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for p in procs:  # every worker imported and connected (slow on a loaded machine)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    start = time.time() + 0.5
    stop = start + 6.0
    for p in procs:  # all three get the window before any is waited for
        assert p.stdin is not None
        p.stdin.write(f"{start!r} {stop!r}\n")
        p.stdin.flush()
    outputs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(len(out) > 10 for out in outputs), [len(out) for out in outputs]  # all three took part
    stamps = sorted(t for out in outputs for t in out)
    window = [t for t in stamps if start + 1.0 <= t < stop - 0.5]  # steady state
    rate = len(window) / (stop - 1.5 - start)
    print(f"RATELIMIT setting={rps} measured={rate:.2f}/s over 3 processes")
    assert rps * 0.9 <= rate <= rps * 1.1
    # No bursts: no half second holds much more than half a second's worth (margin for jitter).
    busiest = max(sum(1 for u in window if t <= u < t + 0.5) for t in window)
    assert busiest <= 0.5 * rps + 3, busiest


def test_tokens_per_minute_budget_is_shared(redis_server: RedisServer) -> None:  # noqa: F811
    from summarizer.ratelimit import RedisRateLimiter

    prefix = f"tpm{time.monotonic_ns()}:"
    a = RedisRateLimiter(redis_server.url, None, tokens_per_minute=6000, prefix=prefix)
    b = RedisRateLimiter(redis_server.url, None, tokens_per_minute=6000, prefix=prefix)
    assert a.acquire() and b.acquire()  # no request limit
    assert a.acquire_tokens(4000, blocking=False)
    assert b.acquire_tokens(2000, blocking=False)  # the minute's budget is used up, by both together
    assert not a.acquire_tokens(500, blocking=False)
    assert not b.acquire_tokens(500, blocking=False)
    time.sleep(6.0)  # 100 tokens a second come back
    assert b.acquire_tokens(300, blocking=False)
    a.close()
    b.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_three_serving_replicas_share_one_request_rate_within_ten_percent(tmp_path: Path) -> None:
    """Three ``summarizer serve`` replicas on one Redis, each summarizing its own document
    through an OpenAI-compatible server on loopback: the model requests they make together
    stay within ±10% of ``SUMMARIZER_REQUESTS_PER_SECOND``, not three times it."""
    import asyncio

    from summarizer.client import SummarizerClient
    from summarizer.protocol import StartOptions

    from .fake_openai import FakeOpenAI
    from .redis_fixtures import REDIS_SERVER
    from .serverproc import ServerProc, free_port

    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    pytest.importorskip("redis")
    rps = 8.0
    redis = RedisServer(free_port(), tmp_path / "redis")
    redis.dir.mkdir()
    redis.start()
    replicas = [
        ServerProc(
            "summarizer",
            ["serve", "--port", "{port}"],
            env={
                "SUMMARIZER_REDIS_URL": redis.url,
                "SUMMARIZER_REPLICA_ID": f"r{i}",
                "SUMMARIZER_DATA_DIR": str(tmp_path / f"data{i}"),
                "SUMMARIZER_MODEL": "openai:fake-ok",
                "SUMMARIZER_REQUESTS_PER_SECOND": str(rps),
                "SUMMARIZER_CONCURRENCY": "8",
                "SUMMARIZER_LOG_LEVEL": "warning",
                "OPENAI_API_KEY": f"sk-replica-{i}",  # tells the replicas apart at the model server
            },
        )
        for i in range(3)
    ]
    fake = FakeOpenAI(max_words=6)
    try:
        with fake.running():
            for r in replicas:
                r.env["SUMMARIZER_BASE_URL"] = fake.url
                r.spawn()
            for r in replicas:
                r.wait_healthy()
            text = "".join(
                f"Item {n}. The board reviewed part {n} of the plan and agreed on its budget. " * 6 + "\n\n"
                for n in range(40)
            )
            options = StartOptions(chunk_size=500, chunk_overlap=0)

            async def one(r: ServerProc) -> str:
                events = [e async for e in SummarizerClient(r.url).summarize_text([text], options=options)]
                return events[-1].type

            ends = await asyncio.wait_for(asyncio.gather(*(one(r) for r in replicas)), 240)
            assert ends == ["summary"] * 3
            calls = sorted(fake.requests, key=lambda c: c.at)
    finally:
        for r in replicas:
            r.stop()
        redis.stop()
    by_replica = {c.authorization for c in calls}
    assert len(by_replica) == 3, by_replica  # all three called the model
    # Steady state: while all three still had map calls to make (skip the first second).
    last_first_end = min(max(c.at for c in calls if c.authorization == key) for key in by_replica)
    window = [c.at for c in calls if calls[0].at + 1.0 <= c.at <= last_first_end]
    assert len(window) >= 20, len(window)
    rate = (len(window) - 1) / (window[-1] - window[0])
    print(f"RATELIMIT replicas=3 setting={rps} measured={rate:.2f}/s over {len(window)} requests")
    assert rps * 0.9 <= rate <= rps * 1.1, rate
