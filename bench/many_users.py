"""Benchmark 7: many concurrent users on one server.

``sessions`` clients (100) connect at once to one server (our app under uvicorn
in its own process, with the latency model) and each uploads a small text
document (one chunk, so one map call and the reduce call). The model stamps
``time.time()`` into every token; the client computes, for each ``chunk.token``
and ``summary.token`` it receives, the delivery delay = arrival - stamp, i.e. the
time from the model producing a token in the server to the client having
parsed it. The server measures its event-loop lag (a 10 ms sleep, oversleep
recorded while jobs run) and reports its peak RSS. The client measures its own
event-loop lag the same way, so that delay caused by the client (one process
parsing every session's events) can be told apart from the server's.

The server's ``max_jobs`` (default 32: more is refused with close code 1013) is
raised to the number of sessions, since all must run at once here.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from summarizer.client import SummarizerClient
from summarizer.protocol import StartOptions

from .common import Context, document_text, percentile, proc_cpu_s, server_process
from .latency_model import parse_stamp

__all__ = ["run"]

DOCUMENT_CHARS = 2_000
"""Characters per user's document (less than one chunk)."""


class _ClientLag:
    """Oversleep of a 10 ms sleep in this process while sessions run."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.running = True

    async def run(self) -> None:
        while self.running and len(self.samples) < 1_000_000:
            began = time.perf_counter()
            await asyncio.sleep(0.01)
            self.samples.append(time.perf_counter() - began - 0.01)


async def _session(url: str, text: str, delays: list[float]) -> dict[str, Any]:
    client = SummarizerClient(url, reconnect_attempts=0, open_timeout=60)
    began = time.perf_counter()
    terminal = "none"
    tokens = 0
    async for event in client.summarize_text([text], options=StartOptions(model="latency")):
        if event.type in ("chunk.token", "summary.token"):
            stamp = parse_stamp(event.text)
            if stamp is not None:
                delays.append(time.time() - stamp)
                tokens += 1
        elif event.type in ("summary", "error", "cancelled"):
            terminal = event.type
    return {"terminal": terminal, "seconds": time.perf_counter() - began, "tokens": tokens}


async def _all(url: str, texts: list[str]) -> tuple[list[Any], list[float], list[float], float]:
    delays: list[float] = []
    lag = _ClientLag()
    probing = asyncio.create_task(lag.run())
    began = time.perf_counter()
    results = await asyncio.gather(
        *(asyncio.wait_for(_session(url, text, delays), timeout=300) for text in texts),
        return_exceptions=True,
    )
    wall = time.perf_counter() - began
    lag.running = False
    await probing
    return results, delays, lag.samples, wall


def run(ctx: Context) -> dict[str, Any]:
    """Run the sessions at once and summarize completion, delays, lag and memory."""
    sessions = 100
    text = document_text(ctx.chunks("freeculture.pdf"))
    step = max(1, (len(text) - DOCUMENT_CHARS) // sessions)
    texts = [text[i * step : i * step + DOCUMENT_CHARS] for i in range(sessions)]
    ctx.log(f"many users: {sessions} sessions of {DOCUMENT_CHARS} characters")
    flags = [*ctx.model_args(), "--stamp", "--probe", "--max-jobs", str(sessions)]
    with server_process("app", *flags) as server:
        cpu = proc_cpu_s(server.pid)
        results, delays, client_lag, wall = asyncio.run(_all(server.url, texts))
        server_cpu = proc_cpu_s(server.pid) - cpu
    completed = [r for r in results if isinstance(r, dict) and r["terminal"] == "summary"]
    failures = [repr(r) if not isinstance(r, dict) else r["terminal"] for r in results if r not in completed]
    seconds = [r["seconds"] for r in completed]
    ideal = 2 * (ctx.first_token_s + (ctx.tokens - 1) * ctx.token_delay_s)
    delays_ms = [1000 * d for d in delays]
    lag_ms = [1000 * s for s in client_lag]
    server.result["cpu_s"] = server_cpu
    return {
        "sessions": sessions,
        "document_chars": DOCUMENT_CHARS,
        "completed": len(completed),
        "failures": failures[:10],
        "wall_s": wall,
        "session_s": {"p50": percentile(seconds, 50), "p99": percentile(seconds, 99), "max": max(seconds)}
        if seconds
        else {},
        "ideal_session_s": ideal,
        "tokens": len(delays),
        "delivery_ms": {
            "p50": percentile(delays_ms, 50),
            "p99": percentile(delays_ms, 99),
            "max": max(delays_ms) if delays_ms else None,
        },
        "client_lag_ms": {"p50": percentile(lag_ms, 50), "p99": percentile(lag_ms, 99)},
        "server": server.result,
        "passed": len(completed) == sessions,
    }
