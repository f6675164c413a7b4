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
