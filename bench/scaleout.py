"""Scale-out on Redis: one replica on Redis vs one on SQLite (job time), and takeover after SIGKILL.

``python -m bench.scaleout [REPEATS]`` (needs ``redis-server`` and the ``redis`` extra) prints
one JSON object; :func:`run` returns it for ``python -m bench`` (section "Scale-out", ``--only
scaleout``; ``--quick``: 2 runs each and one takeover).

* **Job time**: the same PDF summarized by ``summarizer serve`` with the embedded model,
  ``repeats`` times each on SQLite and on Redis (a local ``redis-server``, AOF on,
  ``appendfsync everysec``); the median of each and their ratio.
* **Takeover**: two replicas (``tests/slow_server.py``: the extractive model slowed down) on
  one Redis with ``SUMMARIZER_LEASE_S`` = ``lease_s``; a job starts on the first; after
  ``kill_after`` chunk summaries it is SIGKILLed; the time until the other replica
  holds the lease, and until it commits the job's next event, is measured (goal:
  lease + 2 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PDF = ROOT.parent / "shared" / "corpus" / "pdf" / "tracemonkey.pdf"
if not PDF.exists():
    PDF = Path("/work/shared/corpus/pdf/tracemonkey.pdf")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def _redis(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    proc = subprocess.Popen(
        [
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp), "--save", ""),
            *("--appendonly", "yes", "--appendfsync", "everysec"),
        ],
        stdout=subprocess.DEVNULL,
    )
    _wait_port(port)
    time.sleep(0.2)
    return proc, f"redis://127.0.0.1:{port}/0"


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), **extra)


async def _summarize(url: str) -> float:
    from summarizer.client import SummarizerClient

    start = time.perf_counter()
    last = None
    async for event in SummarizerClient(url).summarize_file(PDF):
        last = event
    assert last is not None and last.type == "summary", last
    return time.perf_counter() - start


def _serve(kind: str, flags: list[str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "summarizer", "serve", "--port", str(port), "--log-level", "warning", *flags],
        cwd=ROOT,
        env=_env(SUMMARIZER_REPLICA_ID=f"bench-{kind}"),
    )
    _wait_port(port)
    return proc, f"ws://127.0.0.1:{port}/ws"


def job_times(tmp: Path, redis_url: str, repeats: int) -> dict[str, Any]:
    """Median job time of one ``summarizer serve`` on SQLite and one on Redis, both running,
    the runs alternating (SQLite, Redis, SQLite, ...) so that load changes hit both alike."""
    servers = {
        "sqlite": _serve("sqlite", ["--data-dir", str(tmp / "sqlite")]),
        "redis": _serve("redis", ["--redis-url", redis_url]),
    }
    times: dict[str, list[float]] = {kind: [] for kind in servers}
    try:
        for _, url in servers.values():
            asyncio.run(_summarize(url))  # warm-up
        for _ in range(repeats):
            for kind, (_, url) in servers.items():
                times[kind].append(asyncio.run(_summarize(url)))
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    out: dict[str, Any] = {
        kind: {"median_s": round(statistics.median(t), 3), "runs_s": [round(x, 3) for x in t]}
        for kind, t in times.items()
    }
    out["ratio_redis_over_sqlite"] = round(out["redis"]["median_s"] / out["sqlite"]["median_s"], 3)
    out["pairwise_ratios"] = [round(r / q, 3) for q, r in zip(times["sqlite"], times["redis"], strict=True)]
    return out


def takeover(tmp: Path, redis_url: str, lease_s: float, kill_after: int = 3) -> dict[str, Any]:
    """Seconds from SIGKILL of a job's owner to the other replica's lease and its next event."""
    from summarizer.client import SummarizerClient
    from summarizer.store.redis import RedisStore

    ports = [_port(), _port()]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.slow_server", str(p), str(tmp / f"d{i}"), str(tmp / "calls.txt")],
            cwd=ROOT,
            env=_env(
                SUMMARIZER_REDIS_URL=redis_url, SUMMARIZER_REPLICA_ID=f"r{i}", SUMMARIZER_LEASE_S=str(lease_s)
            ),
        )
        for i, p in enumerate(ports)
    ]
    for i in range(2):
        (tmp / f"d{i}").mkdir(parents=True, exist_ok=True)
    store = RedisStore(redis_url)
    try:
        for p in ports:
            _wait_port(p)

        async def until_kill() -> tuple[str, int]:
            seen = 0
            async for event in SummarizerClient(
                f"ws://127.0.0.1:{ports[0]}/ws", reconnect_attempts=0
            ).summarize_file(PDF):
                seen += event.type == "chunk.summary"
                if seen == kill_after:
                    return event.job_id, event.seq
            raise RuntimeError("the job ended before the kill")

        job_id, _ = asyncio.run(until_kill())
        os.kill(procs[0].pid, signal.SIGKILL)
        killed = time.monotonic()
        procs[0].wait()
        last = store.last_seq(job_id)
        claimed_s = resumed_s = None
        deadline = killed + lease_s * 4 + 30
        while time.monotonic() < deadline and resumed_s is None:
            if claimed_s is None and store.lease_owner(job_id) == "r1":
                claimed_s = time.monotonic() - killed
            if claimed_s is not None and store.last_seq(job_id) > last:
                resumed_s = time.monotonic() - killed
            time.sleep(0.02)
        return {
            "lease_s": lease_s,
            "claimed_after_s": None if claimed_s is None else round(claimed_s, 2),
            "next_event_after_s": None if resumed_s is None else round(resumed_s, 2),
            "goal_s": lease_s + 2,
        }
    finally:
        store.close()
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)


def run(ctx: Any = None, *, repeats: int | None = None, lease_s: float = 3.0) -> dict[str, Any]:
    """Both measurements (``ctx.quick``: 2 alternating runs each and one takeover, else 5 and 3)."""
    quick = bool(getattr(ctx, "quick", False))
    n = repeats or (2 if quick else 5)
    with tempfile.TemporaryDirectory(prefix="bench-scaleout-") as name:
        tmp = Path(name)
        (tmp / "redis").mkdir()
        redis_proc, url = _redis(tmp / "redis")
        try:
            # Each repeat in its own Redis database: the job a previous repeat left unfinished
            # (its replicas are stopped mid-job) is not resumed by the next repeat's replicas.
            base = url.rsplit("/", 1)[0]
            repeats_takeover = 1 if quick else 3
            takeovers = [takeover(tmp / f"t{i}", f"{base}/{i + 1}", lease_s) for i in range(repeats_takeover)]
            resumed = [t["next_event_after_s"] for t in takeovers]
            return {
                "document": PDF.name,
                "job_time": job_times(tmp, url, n),
                "takeover": takeovers,
                "goal_s": lease_s + 2,
                "passed": all(t is not None and t <= lease_s + 2 for t in resumed),
            }
        finally:
            redis_proc.terminate()
            redis_proc.wait(timeout=30)


if __name__ == "__main__":
    print(json.dumps(run(repeats=int(sys.argv[1]) if len(sys.argv) > 1 else 3), indent=2))
