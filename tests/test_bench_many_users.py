"""bench.many_users' stall attribution: the server loop's CPU vs run-queue wait (schedstat)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bench.many_users import _lag_attribution
from bench.server_proc import _LagProbe, _open_schedstat, _schedstat_ns, _StallTracer

from .fakes import burn


def test_attribution_names_the_larger_share() -> None:
    own = {"stalls": 3, "stall_s": 1.0, "stall_cpu_share": 0.8, "stall_runq_share": 0.1}
    starved = {"stalls": 3, "stall_s": 1.0, "stall_cpu_share": 0.2, "stall_runq_share": 0.7}
    assert _lag_attribution(own)["limited_by"].startswith("own CPU")
    assert _lag_attribution(starved)["limited_by"].startswith("run-queue wait")
    assert "80% own CPU, 10% run-queue wait, 10% blocked" in _lag_attribution(own)["statement"]
    assert _lag_attribution({"stalls": 0})["limited_by"] == "no stalls"


@pytest.mark.skipif(not Path("/proc/thread-self/schedstat").exists(), reason="Linux schedstat only")
def test_probe_charges_a_blocking_callback_to_the_loops_own_cpu() -> None:
    """A callback spinning 120 ms of CPU on the loop is a stall made of the loop thread's own CPU."""
    fd = _open_schedstat()
    assert fd is not None
    assert _schedstat_ns(fd)[0] > 0  # nanoseconds on a CPU so far
    os.close(fd)

    async def main() -> dict[str, object]:
        probe = _LagProbe(lambda: True)
        tracer = _StallTracer(probe)
        tracer.start()
        task = asyncio.create_task(probe.run())
        await asyncio.sleep(0.05)
        burn(0.12)  # 120 ms of own CPU on the loop: no await
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        tracer.stop()
        return {"probe": probe.summary(), "tracer": tracer.summary()}

    out = asyncio.run(main())
    lag = out["probe"]
    assert isinstance(lag, dict)
    assert lag["stalls"] >= 1
    # Spinning is never blocked: the stall is on a CPU or waiting for one (the machine may be loaded).
    assert lag["stall_cpu_share"] + lag["stall_runq_share"] > 0.7
    assert lag["stall_cpu_share"] * lag["stall_s"] > 0.1  # the 120 ms spun, in seconds
    assert lag["loop_cpu_per_s"] > 0
    tracer = out["tracer"]
    assert isinstance(tracer, dict)
    assert any("test_bench_many_users.py:main" in stack for _, stack in tracer["stacks"])
