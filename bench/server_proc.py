"""A benchmark server in its own process: our app under uvicorn, or a bare ``websockets`` server.

Run by :func:`bench.common.server_process`; it prints ``PORT <n>`` on stdout once
it listens on ``127.0.0.1:<n>``, serves until its stdin closes (or
``--max-seconds`` pass), then writes a JSON result file:

* ``app``: :func:`summarizer.server.create_app` with a preloaded
  :class:`~bench.latency_model.LatencyModel` named ``latency`` and a private
  temporary data directory (:class:`~summarizer.storage.Storage` ``(None)``), under
  ``uvicorn.Server`` with the server's WebSocket options
  (:func:`summarizer.ws_protocol.uvicorn_options`), on uvloop when it is installed
  (the loop ``uvicorn.run`` picks, so the loop ``summarizer serve`` runs on). With ``--probe``, a
  task sleeps 10 ms in a loop and records how much longer each sleep took
  (event-loop lag), counted only while at least one job runs.
* ``bare``: a ``websockets`` server (``compression=None``) that answers ``start``
  with an ``accepted``-shaped JSON, every binary frame with an ``ack``-shaped JSON
  and ``cancel``/``end`` with ``cancelled``: the upload reference.

The result has ``peak_rss_mib`` (``ru_maxrss`` of this process),
``start_rss_mib`` (RSS once listening) and, with ``--probe``, ``lag_ms``.
``--profile PATH`` writes cProfile statistics of the serving thread (from the
moment it listens) to ``PATH``, to find what limits a figure; it times that thread's
CPU (``time.thread_time``), so idle waits are charged to nothing. ``app`` also
reports ``loop_cpu_s``, the serving thread's CPU seconds from listening to stopping.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import secrets
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _rss_mib() -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    return sock


def _loop_factory() -> Any:
    """``uvloop.new_event_loop`` when uvloop is installed (uvicorn's ``loop="auto"``), else ``None``."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _stop_on_stdin_eof(callback: Any) -> None:
    """Call ``callback()`` (from a daemon thread) once stdin reaches end of file."""

    def watch() -> None:
        with contextlib.suppress(Exception):
            sys.stdin.read()
        callback()

    threading.Thread(target=watch, daemon=True, name="stdin-watch").start()


def _start_profile(path: str | None) -> Any:
    """A running ``cProfile.Profile`` of this (event-loop) thread if ``path`` is set."""
    if path is None:
        return None
    import cProfile

    # CPU time of this thread, not the wall clock: time spent idle in epoll (or waiting
    # for the GIL) is not charged to whatever function happened to be running.
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    return profiler


def _stop_profile(profiler: Any, path: str | None) -> None:
    if profiler is not None and path is not None:
        profiler.disable()
        profiler.dump_stats(path)


def _schedstat_ns(fd: int | None) -> tuple[int, int]:
    """(CPU ns, run-queue wait ns) of a thread from its open ``/proc/.../schedstat`` ``fd``.

    The kernel's ``schedstat`` line is ``<ns on CPU> <ns runnable but waiting for a
    CPU> <timeslices>``; ``(0, 0)`` when ``fd`` is ``None`` or cannot be read.
    """
    if fd is None:
        return (0, 0)
    try:
        fields = os.pread(fd, 128, 0).split()
        return (int(fields[0]), int(fields[1]))
    except (OSError, ValueError, IndexError):
        return (0, 0)


def _open_schedstat() -> int | None:
    """An fd on this thread's ``/proc/thread-self/schedstat``, or ``None`` (not Linux, no schedstats)."""
    try:
        fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        return None
    if _schedstat_ns(fd) == (0, 0):
        os.close(fd)
        return None
    return fd


STALL_S = 0.05
"""A sleep this much (seconds) later than asked is a stall: attributed and, with a tracer, sampled."""


class _LagProbe:
    """Oversleep of a 10 ms sleep, sampled while ``busy()`` is true.

    On Linux it also reads the event-loop thread's ``schedstat`` around every
    sleep, so that lag is split into the loop thread's own CPU, its run-queue
    wait (runnable, but every core busy with other threads or processes) and
    the rest (off CPU and not runnable: blocked, e.g. waiting for the GIL).
    """

    def __init__(self, busy: Any, period: float = 0.01) -> None:
        self.busy = busy
        self.period = period
        self.samples: list[float] = []
        self.times: list[float] = []
        """When each sample's sleep began (seconds, ``perf_counter``)."""
        self.heartbeat = time.perf_counter()
        """When the loop last ran the probe (seconds, ``perf_counter``): the stall tracer's clock."""
        self.busy_s = 0.0
        self.cpu_ns = self.runq_ns = 0
        self.stalls = 0
        self.stall_s = 0.0
        self.stall_cpu_ns = self.stall_runq_ns = 0

    async def run(self) -> None:
        fd = _open_schedstat()
        try:
            while len(self.samples) < 1_000_000:
                began = time.perf_counter()
                cpu0, runq0 = _schedstat_ns(fd)
                await asyncio.sleep(self.period)
                now = time.perf_counter()
                self.heartbeat = now
                cpu1, runq1 = _schedstat_ns(fd)
                late = now - began - self.period
                if self.busy():
                    self.samples.append(late)
                    self.times.append(began)
                    self.busy_s += now - began
                    self.cpu_ns += cpu1 - cpu0
                    self.runq_ns += runq1 - runq0
                    if late > STALL_S:
                        self.stalls += 1
                        self.stall_s += now - began
                        self.stall_cpu_ns += cpu1 - cpu0
                        self.stall_runq_ns += runq1 - runq0
        finally:
            if fd is not None:
                os.close(fd)

    def summary(self) -> dict[str, Any]:
        from bench.common import percentile

        ms = [1000 * s for s in self.samples]
        busy = max(self.busy_s, 1e-9)
        stall = max(self.stall_s, 1e-9)
        return {
            "samples": len(ms),
            "p50": percentile(ms, 50),
            "p99": percentile(ms, 99),
            "max": max(ms) if ms else None,
            # The five worst sleeps: (seconds from the first sample, ms late).
            "worst": sorted(
                ((t - self.times[0], m) for t, m in zip(self.times, ms, strict=True)), key=lambda x: -x[1]
            )[:5],
            # The loop thread while jobs ran, per second of wall time (schedstat; 0 if unavailable).
            "loop_cpu_per_s": self.cpu_ns / 1e9 / busy,
            "loop_runq_wait_per_s": self.runq_ns / 1e9 / busy,
            # Sleeps late by more than STALL_S: their wall time split into CPU / run-queue wait / other.
            "stalls": self.stalls,
            "stall_s": self.stall_s,
            "stall_cpu_share": self.stall_cpu_ns / 1e9 / stall,
            "stall_runq_share": self.stall_runq_ns / 1e9 / stall,
        }


class _StallTracer:
    """A daemon thread sampling the event-loop thread's Python stack while the loop is stalled.

    Every ``interval`` seconds it checks the probe's heartbeat; once the loop has
    not run the probe for ``STALL_S`` + the probe's period, it records the loop
    thread's stack (``sys._current_frames``, innermost ``depth`` frames) and
    counts identical stacks. A thread holding the GIL in C code cannot be
    sampled until it lets go, so samples under-count such stalls.
    """

    def __init__(self, probe: _LagProbe, interval: float = 0.005, depth: int = 14) -> None:
        self.probe = probe
        self.interval = interval
        self.depth = depth
        self.loop_ident = threading.get_ident()
        self.stacks: dict[str, int] = {}
        self.samples = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True, name="stall-tracer")
        self.gc_pauses: dict[int, list[float]] = {}
        self._gc_began = 0.0
        self.tasks0 = self._tasks()

    @staticmethod
    def _tasks() -> dict[str, tuple[str, int, int]]:
        """This process's threads: tid -> (name, CPU ns, run-queue wait ns) from ``/proc/self/task``."""
        out: dict[str, tuple[str, int, int]] = {}
        with contextlib.suppress(OSError):
            for tid in os.listdir("/proc/self/task"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    name = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
                    fields = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()
                    out[tid] = (name, int(fields[0]), int(fields[1]))
        return out

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_began = time.perf_counter()
        else:
            pause = time.perf_counter() - self._gc_began
            self.gc_pauses.setdefault(int(info.get("generation", -1)), []).append(pause)

    def start(self) -> None:
        import gc

        gc.callbacks.append(self._gc)
        self.thread.start()

    def stop(self) -> None:
        import gc

        self.running = False
        self.thread.join(timeout=1)
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._gc)

    def _run(self) -> None:
        import traceback

        limit = STALL_S + self.probe.period
        while self.running:
            time.sleep(self.interval)
            if time.perf_counter() - self.probe.heartbeat < limit or not self.probe.busy():
                continue
            frame = sys._current_frames().get(self.loop_ident)
            if frame is None:
                continue
            stack = traceback.extract_stack(frame)[-self.depth :]
            key = " <- ".join(
                f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.name}:{f.lineno}"
                for f in reversed(stack)
            )
            self.stacks[key] = self.stacks.get(key, 0) + 1
            self.samples += 1

    def summary(self, top: int = 25) -> dict[str, Any]:
        ordered = sorted(self.stacks.items(), key=lambda kv: -kv[1])[:top]
        threads = []
        for tid, (name, cpu, runq) in self._tasks().items():
            _, cpu0, runq0 = self.tasks0.get(tid, (name, 0, 0))
            threads.append(
                {"tid": tid, "name": name, "cpu_s": (cpu - cpu0) / 1e9, "runq_s": (runq - runq0) / 1e9}
            )
        gc_ms = {
            str(gen): {"count": len(p), "total_ms": 1000 * sum(p), "max_ms": 1000 * max(p)}
            for gen, p in sorted(self.gc_pauses.items())
        }
        return {
            "samples": self.samples,
            "interval_s": self.interval,
            "gc": gc_ms,
            "threads": sorted(threads, key=lambda t: -t["cpu_s"]),
            "stacks": [[n, k] for k, n in ordered],
        }


async def _serve_app(args: argparse.Namespace) -> dict[str, Any]:
    import uvicorn

    from bench.latency_model import LatencyModel
    from summarizer.server import create_app
    from summarizer.settings import Settings
    from summarizer.storage import Storage
    from summarizer.ws_protocol import uvicorn_options

    overrides: dict[str, Any] = {}
    if args.max_jobs is not None:
        overrides["max_jobs"] = args.max_jobs
    if args.max_messages_per_second is not None:
        overrides["max_messages_per_second"] = args.max_messages_per_second
    if args.reduce_budget_chars is not None:
        overrides["reduce_budget_chars"] = args.reduce_budget_chars
    if args.concurrency is not None:
        overrides["concurrency"] = args.concurrency
    model = LatencyModel(
        first_token_s=args.first_token_s,
        token_delay_s=args.token_delay_s,
        tokens=args.tokens,
        stamp=args.stamp,
    )
    models: dict[str, Any] = {"latency": model}
    if args.openai_base_url:
        # The real provider path: langchain-openai over HTTP to bench.model_server.
        overrides["model"] = "openai:latency"
        overrides["base_url"] = args.openai_base_url
        models = {}
    settings = Settings(**overrides)
    # A private temporary data directory, removed when the app shuts down.
    app = create_app(settings, models=models or None, storage=Storage(None))
    config = uvicorn.Config(
        app,
        log_level="warning",
        **uvicorn_options(settings),
        lifespan="on",
    )
    server = uvicorn.Server(config)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        server.should_exit = True

    _stop_on_stdin_eof(lambda: loop.call_soon_threadsafe(stop))
    loop.call_later(args.max_seconds, stop)
    sock = _listen()
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(3000):
        if server.started or serving.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        await serving
        raise RuntimeError("uvicorn did not start")
    start_rss = _rss_mib()
    probe = _LagProbe(lambda: app.state.jobs.running() > 0) if args.probe else None
    probing = asyncio.create_task(probe.run()) if probe is not None else None
    tracer = _StallTracer(probe) if probe is not None and args.stall_trace else None
    if tracer is not None:
        tracer.start()
    profiler = _start_profile(args.profile)
    loop_cpu = time.thread_time()
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    try:
        await serving
    finally:
        loop_cpu = time.thread_time() - loop_cpu
        _stop_profile(profiler, args.profile)
        if tracer is not None:
            tracer.stop()
            Path(args.stall_trace).write_text(json.dumps(tracer.summary(), indent=1))
        if probing is not None:
            probing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probing
    ws_class = getattr(config, "ws_protocol_class", None)
    result: dict[str, Any] = {
        "start_rss_mib": start_rss,
        "uvicorn_ws": f"{ws_class.__module__}.{ws_class.__name__}" if ws_class else str(config.ws),
        "model_calls": model.calls,
        "model_peak_in_flight": model.peak_in_flight,
        "max_jobs": settings.max_jobs,
        "max_messages_per_second": settings.max_messages_per_second,
        "loop_cpu_s": loop_cpu,
    }
    if probe is not None:
        result["lag_ms"] = probe.summary()
    return result


async def _serve_bare(args: argparse.Namespace) -> dict[str, Any]:
    from websockets.asyncio.server import ServerConnection, serve

    from summarizer.settings import Settings

    settings = Settings()
    limits = {
        "max_document_bytes": settings.max_document_bytes,
        "max_frame_bytes": settings.max_frame_bytes,
        "ack_window_bytes": settings.ack_window_bytes,
        "max_text_chars": settings.max_text_chars,
        "max_concurrency": max(settings.concurrency, 16),
    }

    def dumps(data: dict[str, Any]) -> str:
        return json.dumps(data, separators=(",", ":"))

    async def handler(ws: ServerConnection) -> None:
        job_id = secrets.token_hex(16)
        seq = received = messages = 0
        async for message in ws:
            if isinstance(message, bytes):
                received += len(message)
                messages += 1
                seq += 1
                await ws.send(
                    dumps(
                        {
                            "job_id": job_id,
                            "seq": seq,
                            "type": "ack",
                            "received": received,
                            "messages": messages,
                        }
                    )
                )
                continue
            kind = json.loads(message).get("type")
            seq += 1
            if kind == "start":
                await ws.send(
                    dumps(
                        {
                            "job_id": job_id,
                            "seq": seq,
                            "type": "accepted",
                            "protocol": 1,
                            "limits": limits,
                            "model": "none",
                            "models": ["none"],
                            "chunk_size": settings.chunk_size,
                            "chunk_overlap": settings.chunk_overlap,
                            "concurrency": settings.concurrency,
                        }
                    )
                )
            elif kind in ("cancel", "end"):
                await ws.send(dumps({"job_id": job_id, "seq": seq, "type": "cancelled", "elapsed_s": 0.0}))

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    _stop_on_stdin_eof(lambda: loop.call_soon_threadsafe(done.set))
    loop.call_later(args.max_seconds, done.set)
    sock = _listen()
    async with serve(handler, sock=sock, compression=None, max_size=None):
        start_rss = _rss_mib()
        profiler = _start_profile(args.profile)
        print(f"PORT {sock.getsockname()[1]}", flush=True)
        await done.wait()
        _stop_profile(profiler, args.profile)
    return {"start_rss_mib": start_rss}


def main(argv: list[str] | None = None) -> int:
    """Serve until stdin closes, then write the result JSON; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("mode", choices=["app", "bare"])
    parser.add_argument("--result", required=True, help="where to write the result JSON")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--probe", action="store_true", help="measure event-loop lag")
    parser.add_argument("--stamp", action="store_true", help="stamp wall-clock time into tokens")
    parser.add_argument("--first-token-s", type=float, default=0.3)
    parser.add_argument("--token-delay-s", type=float, default=0.01)
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--profile", default=None, help="write cProfile stats of the serving loop here")
    parser.add_argument(
        "--stall-trace", default=None, help="app, with --probe: write the loop's stacks during stalls here"
    )
    parser.add_argument("--max-jobs", type=int, default=None, help="app: Settings.max_jobs")
    parser.add_argument(
        "--max-messages-per-second", type=float, default=None, help="app: Settings.max_messages_per_second"
    )
    parser.add_argument(
        "--openai-base-url", default=None, help="app: use 'openai:latency' at this OpenAI-compatible URL"
    )
    parser.add_argument("--concurrency", type=int, default=None, help="app: Settings.concurrency")
    parser.add_argument(
        "--reduce-budget-chars", type=int, default=None, help="app: Settings.reduce_budget_chars"
    )
    args = parser.parse_args(argv)
    serve = _serve_app if args.mode == "app" else _serve_bare
    # The event loop uvicorn.run picks (loop="auto"): uvloop when installed, as `summarizer serve` runs.
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        result = runner.run(serve(args))
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.result).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
