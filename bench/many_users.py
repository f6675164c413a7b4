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

The model is :mod:`bench.model_server` (an OpenAI-compatible API on loopback,
own process) reached through langchain-openai, as in production. The
reference is the same model calls made **bare** in the same run: every session's
map and reduce call (same prompts' lengths, one after the other) streamed with
``httpx`` straight to the model server, 100 at once, tokens' delays measured the
same way. Goals: our p99 delivery delay - bare p99 <= 100 ms, our p99 session time
<= 1.2 x bare, server event-loop lag p99 <= 20 ms. A second, profiled run
(cProfile of the server's event-loop thread) splits the server's CPU per token
by layer: provider client + LangChain, pipeline, event log and store, socket
(uvicorn, websockets, starlette, protocol), the asyncio event loop, other. The
profiler times that thread with its CPU clock (``time.thread_time``: waiting in
epoll or for the GIL is charged to nothing); library code all layers call
(builtins, pydantic, json...) is charged to its callers' layers; the profiler's
own slow-down is taken out by scaling the shares to the event-loop thread's CPU
in the unprofiled run. One event may carry several tokens (coalescing, at most
25 ms): every token's delay is counted, from its own stamp.
"""

from __future__ import annotations

import asyncio
import json
import math
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from summarizer.client import SummarizerClient
from summarizer.protocol import StartOptions

from .common import Context, document_text, percentile, proc_cpu_s, server_process
from .latency_model import parse_stamp, parse_stamps

DELAY_GOAL_MS = 100.0
SESSION_GOAL = 1.2
LAG_GOAL_MS = 20.0

_LAYERS = (
    (
        "provider client + LangChain",
        (
            "langchain",
            "langsmith",
            "openai",
            "httpx",
            "aiohttp",
            "aiohappyeyeballs",
            "multidict",
            "yarl",
            "propcache",
            "frozenlist",
            "aiosignal",
            "httpcore",
            "h11",
            "anyio",
            "sniffio",
            "summarizer/models/streaming",
        ),
    ),
    ("pipeline", ("summarizer/pipeline", "summarizer/prompts", "summarizer/models", "summarizer/recovery")),
    ("event log + store", ("summarizer/jobs", "summarizer/store", "summarizer/storage", "sqlite3")),
    (
        "socket + protocol",
        ("uvicorn", "websockets", "starlette", "summarizer/session", "summarizer/protocol"),
    ),
    ("ingestion", ("summarizer/ingest",)),
    ("asyncio event loop", ("asyncio/", "selectors.py", "uvloop")),
)
"""Layers of the server by the files of their code (the first match wins)."""

_NEUTRAL = (
    "~",
    "pydantic",
    "typing",
    "json/",
    "enum.py",
    "functools.py",
    "contextlib.py",
    "abc.py",
    "copy.py",
    "re/",
    "dataclasses.py",
    "inspect.py",
    "weakref.py",
    "collections/",
    "threading.py",
    "queue.py",
    "<frozen",
    "<string>",
    "email/",
    "logging/",
    "socket.py",
    "_weakrefset.py",
    "ipaddress.py",
    "pathlib.py",
    "string.py",
    "urllib/",
    "uuid.py",
    "concurrent/",
)
"""Library code any layer calls (builtins, pydantic, typing, json...): charged to its callers' layers."""

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


async def _session(url: str, text: str, delays: list[float], model: str | None = None) -> dict[str, Any]:
    client = SummarizerClient(url, reconnect_attempts=0, open_timeout=60)
    began = time.perf_counter()
    terminal = "none"
    tokens = events = 0
    async for event in client.summarize_text([text], options=StartOptions(model=model)):
        if event.type in ("chunk.token", "summary.token"):
            # One event may carry several tokens (coalescing): each token's delay counts.
            stamps = parse_stamps(event.text)
            if stamps:
                now = time.time()
                delays.extend(now - stamp for stamp in stamps)
                tokens += len(stamps)
                events += 1
        elif event.type in ("summary", "error", "cancelled"):
            terminal = event.type
    return {"terminal": terminal, "seconds": time.perf_counter() - began, "tokens": tokens, "events": events}


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


async def _bare_session(client: httpx.AsyncClient, url: str, text: str, delays: list[float]) -> float:
    """The session's two calls (map, then reduce) made bare; returns its seconds."""
    began = time.perf_counter()
    for content in (f"<document>\n{text}\n</document>", f"<document>\n{text[:600]}\n</document>"):
        body = {"model": "latency", "stream": True, "messages": [{"role": "user", "content": content}]}
        async with client.stream("POST", f"{url}/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: {") and '"content":"' in line:
                    token = json.loads(line[6:])["choices"][0]["delta"].get("content", "")
                    stamp = parse_stamp(token)
                    if stamp is not None:
                        delays.append(time.time() - stamp)
    return time.perf_counter() - began


async def _bare_all(url: str, texts: list[str]) -> tuple[list[float], list[float]]:
    delays: list[float] = []
    limits = httpx.Limits(max_connections=len(texts) + 8, max_keepalive_connections=len(texts) + 8)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        seconds = await asyncio.gather(*(_bare_session(client, url, text, delays) for text in texts))
    return list(seconds), delays


def _layer_of(filename: str) -> str | None:
    """The layer owning code in ``filename``, or ``None`` for library code charged to its callers."""
    for name, needles in _LAYERS:
        if any(needle in filename for needle in needles):
            return name
    if any(needle in filename for needle in _NEUTRAL):
        return None
    return "other"


def _layers(profile: Path, tokens: int, loop_cpu_s: float | None = None) -> dict[str, Any]:
    """Event-loop CPU of the profiled run by layer, in microseconds per token delivered.

    The profile times the event-loop thread with its CPU clock. Each function's
    own time goes to the layer of its file; library code every layer uses
    (builtins, pydantic, typing, json, ...) goes to the layers of its callers, in
    proportion to the time it spent for each of them (recursively). Profiling
    slows every call down, so the shares are then scaled to ``loop_cpu_s``, the
    event-loop thread's CPU in the unprofiled run, when given.

    Args:
        profile: The cProfile statistics file.
        tokens: Tokens delivered in the profiled run.
        loop_cpu_s: Event-loop thread CPU seconds of the unprofiled run, for the same tokens.
    """
    stats: dict[Any, Any] = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    memo: dict[Any, dict[str, float]] = {}

    def share(func: Any, depth: int = 0) -> dict[str, float]:
        """How ``func``'s own time divides among layers (fractions summing to 1)."""
        if func in memo:
            return memo[func]
        owner = _layer_of(func[0])
        if owner is not None:
            memo[func] = {owner: 1.0}
            return memo[func]
        callers = stats.get(func, (0, 0, 0.0, 0.0, {}))[4]
        weights = {caller: row[2] for caller, row in callers.items() if caller != func}
        total = sum(weights.values())
        if depth > 20 or not weights or total <= 0:
            memo[func] = {"other": 1.0}
            return memo[func]
        memo[func] = {"other": 1.0}  # a provisional answer breaks call cycles
        out: dict[str, float] = {}
        for caller, weight in weights.items():
            for layer, fraction in share(caller, depth + 1).items():
                out[layer] = out.get(layer, 0.0) + fraction * weight / total
        memo[func] = out
        return out

    totals: dict[str, float] = {}
    for func, row in stats.items():
        for layer, fraction in share(func).items():
            totals[layer] = totals.get(layer, 0.0) + fraction * row[2]
    total = sum(totals.values())
    scale = loop_cpu_s / total if loop_cpu_s and total > 0 else 1.0
    ordered = sorted(totals.items(), key=lambda kv: -kv[1])
    return {
        "tokens": tokens,
        "cpu_s": total,
        "loop_cpu_s": loop_cpu_s,
        "scaled": scale != 1.0,
        "us_per_token": {k: 1e6 * v * scale / max(tokens, 1) for k, v in ordered},
        "profiled_us_per_token": {k: 1e6 * v / max(tokens, 1) for k, v in ordered},
    }


def _summary(values: list[float]) -> dict[str, float]:
    top = max(values) if values else math.nan
    return {"p50": percentile(values, 50), "p99": percentile(values, 99), "max": top}


def _lag_attribution(lag: dict[str, Any]) -> dict[str, Any]:
    """What the server's event-loop stalls were: its own CPU, or waiting for a CPU (starvation).

    ``lag`` is the server probe's summary (:class:`bench.server_proc._LagProbe`):
    the loop thread's CPU and run-queue wait (``/proc`` ``schedstat``) per second
    while jobs ran, and the same split of the sleeps late by more than 50 ms.
    The rest of a stall (neither on a CPU nor runnable) is time blocked, e.g.
    waiting for the GIL held by another thread.
    """
    cpu, runq = lag.get("stall_cpu_share"), lag.get("stall_runq_share")
    out: dict[str, Any] = {
        "loop_cpu_per_s": lag.get("loop_cpu_per_s"),
        "loop_runq_wait_per_s": lag.get("loop_runq_wait_per_s"),
        "stalls": lag.get("stalls"),
        "stall_s": lag.get("stall_s"),
        "stall_cpu_share": cpu,
        "stall_runq_share": runq,
    }
    if not lag.get("stalls") or cpu is None or runq is None or cpu + runq <= 0:
        out["limited_by"] = "no stalls" if lag.get("stalls") == 0 else "unknown (no schedstat)"
        out["statement"] = out["limited_by"]
        return out
    blocked = max(0.0, 1.0 - cpu - runq)
    shares = {
        "own CPU (the loop thread running)": cpu,
        "run-queue wait (starved of a CPU)": runq,
        "blocked": blocked,
    }
    out["limited_by"] = max(shares, key=lambda k: shares[k])
    out["statement"] = (
        f"{lag['stalls']} stalls > 50 ms, {lag['stall_s']:.2f} s: {100 * cpu:.0f}% own CPU, "
        f"{100 * runq:.0f}% run-queue wait, {100 * blocked:.0f}% blocked; loop thread "
        f"{lag.get('loop_cpu_per_s', 0):.2f} CPU-s/s, "
        f"{lag.get('loop_runq_wait_per_s', 0):.2f} s/s waiting for a CPU"
    )
    return out


def run(ctx: Context) -> dict[str, Any]:
    """Run the sessions at once (ours, bare, ours profiled) and summarize delays, lag and memory."""
    sessions = 100
    text = document_text(ctx.chunks("freeculture.pdf"))
    step = max(1, (len(text) - DOCUMENT_CHARS) // sessions)
    texts = [text[i * step : i * step + DOCUMENT_CHARS] for i in range(sessions)]
    out: dict[str, Any] = {"sessions": sessions, "document_chars": DOCUMENT_CHARS}
    with server_process("", *ctx.model_args(), "--stamp", module="bench.model_server") as model:
        ctx.log(f"many users: {sessions} bare sessions (httpx to the model server)")
        bare_seconds, bare_delays = asyncio.run(_bare_all(model.url, texts))
        flags = ["--openai-base-url", model.url, "--probe", "--max-jobs", str(sessions)]
        ctx.log(f"many users: {sessions} sessions through our server")
        with server_process("app", *flags) as server:
            cpu = proc_cpu_s(server.pid)
            results, delays, client_lag, wall = asyncio.run(_all(server.url, texts))
            server_cpu = proc_cpu_s(server.pid) - cpu
        with tempfile.TemporaryDirectory(prefix="bench-profile-") as folder:
            profile = Path(folder) / "server.prof"
            ctx.log(f"many users: {sessions} sessions, server profiled")
            with server_process("app", *flags, "--profile", str(profile)) as profiled:
                _, profiled_delays, _, _ = asyncio.run(_all(profiled.url, texts))
            out["profile"] = {}
            if profile.exists():
                # The unprofiled run's event-loop CPU, for as many tokens as the profiled run's.
                loop_cpu = server.result.get("loop_cpu_s")
                scaled = loop_cpu * len(profiled_delays) / max(len(delays), 1) if loop_cpu else None
                out["profile"] = _layers(profile, len(profiled_delays), scaled)
    completed = [r for r in results if isinstance(r, dict) and r["terminal"] == "summary"]
    failures = [repr(r) if not isinstance(r, dict) else r["terminal"] for r in results if r not in completed]
    seconds = [r["seconds"] for r in completed]
    ours_ms = _summary([1000 * d for d in delays])
    bare_ms = _summary([1000 * d for d in bare_delays])
    ours_s, bare_s = _summary(seconds), _summary(bare_seconds)
    lag = server.result.get("lag_ms", {})
    server.result["cpu_s"] = server_cpu
    out.update(
        completed=len(completed),
        failures=failures[:10],
        wall_s=wall,
        session_s=ours_s,
        bare_session_s=bare_s,
        tokens=len(delays),
        token_events=sum(r["events"] for r in completed),
        bare_tokens=len(bare_delays),
        delivery_ms=ours_ms,
        bare_delivery_ms=bare_ms,
        added_p99_ms=ours_ms["p99"] - bare_ms["p99"],
        session_ratio_p99=ours_s["p99"] / bare_s["p99"] if seconds else math.nan,
        client_lag_ms=_summary([1000 * s for s in client_lag]),
        server=server.result,
        model_server=model.result,
    )
    out["lag_attribution"] = _lag_attribution(lag)
    ctx.log(f"many users: server loop stalls: {out['lag_attribution']['statement']}")
    out["passed_delay"] = out["added_p99_ms"] <= DELAY_GOAL_MS
    out["passed_session"] = out["session_ratio_p99"] <= SESSION_GOAL
    out["passed_lag"] = (lag.get("p99") or math.inf) <= LAG_GOAL_MS
    out["passed"] = len(completed) == sessions
    return out
