"""``python -m bench``: run every benchmark, write ``docs/benchmarks.md`` and ``bench/results/latest.json``.

Usage, from the repository root (the peers need the ``bench`` extra)::

    python -m bench                 # full run, about 15 minutes
    python -m bench --quick         # short run, about 3 minutes
    python -m bench --only user_path,packing

Benchmarks, in order (one module each): ``user_path`` (a PDF uploaded to the
real server with an OpenAI-compatible model server on loopback: first chunk
token, total vs critical path, vs the LangGraph recipe with its parse),
``packing`` (chunks vs the ideal count), ``worker_start`` (time before the first
PDF page: worker start vs bare pypdf), ``overhead`` (pure pipeline on chunks
already in memory vs critical path), ``peers`` (LangChain / LangGraph map-reduce), ``pipelining`` (map starts
during a text upload), ``upload`` (throughput vs a bare websockets server),
``ingestion`` (PDF path vs bare pypdf), ``memory`` (the book's process-tree
peak RSS at 1x / 2x / 4x and wall vs a bare pypdf loop), ``embedded`` (CLI end to end, linear
cost), ``many_users`` (100 sessions on one server) and ``quality`` (ROUGE vs
lead-k, :mod:`bench.quality`) and ``ocr`` (a scanned PDF: pages/s with 1 and 2
workers, CER, memory), ``scaleout`` (one replica on Redis vs one on SQLite, takeover
after SIGKILL; needs ``redis-server``). A benchmark that fails is reported as failed;
the others still run. Only 127.0.0.1 is used; every loop and process is bounded.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .common import ROOT, Context, machine_info, versions

BENCHMARKS = (
    "user_path",
    "packing",
    "worker_start",
    "overhead",
    "peers",
    "pipelining",
    "upload",
    "ingestion",
    "memory",
    "embedded",
    "many_users",
    "quality",
    "ocr",
    "scaleout",
)
"""Benchmark names in running order (each ``bench/<name>.py`` has ``run(ctx)``; quality is below)."""


def _quality(ctx: Context) -> dict[str, Any]:
    """ROUGE of the embedded model vs lead-k and sumy (:func:`bench.quality.run_benchmark`)."""
    from .quality import run_benchmark

    return run_benchmark(quick=ctx.quick)


def _runner(name: str) -> Callable[[Context], dict[str, Any]]:
    if name == "quality":
        return _quality
    module = importlib.import_module(f"bench.{name}")
    runner: Callable[[Context], dict[str, Any]] = module.run
    return runner


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes' if dirty else ''}" if head else "unknown"


def _clean(value: Any) -> Any:
    """NaN and infinities as ``None`` (JSON has no NaN)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; returns 0 if all ran (goals missed are reported, not an error)."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (smaller inputs, fewer repeats)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other benchmarks' figures from the existing JSON (with --only: update some sections)",
    )
    args = parser.parse_args(argv)
    chosen = [b.strip() for b in args.only.split(",") if b.strip()] or list(BENCHMARKS)
    unknown = [b for b in chosen if b not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")

    ctx = Context(quick=args.quick)
    command = " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])])
    started = time.perf_counter()
    meta: dict[str, Any] = {
        "command": command.strip(),
        "mode": "quick" if args.quick else "full",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "machine": machine_info(),
        "versions": versions(),
        "latency_model": {
            "first_token_s": ctx.first_token_s,
            "token_delay_s": ctx.token_delay_s,
            "tokens": ctx.tokens,
            "call_s": ctx.first_token_s + (ctx.tokens - 1) * ctx.token_delay_s,
        },
    }
    results: dict[str, Any] = {"meta": meta, "benchmarks": {}}
    if args.merge and args.json.exists():
        previous = json.loads(args.json.read_text(encoding="utf-8"))
        results["benchmarks"] = dict(previous.get("benchmarks", {}))
        fallback = {k: previous.get("meta", {}).get(k) for k in ("date", "commit")}
        for result in results["benchmarks"].values():
            result.setdefault("generated", fallback)  # files of earlier versions: the file's own run
        meta["kept"] = {
            name: result["generated"] for name, result in results["benchmarks"].items() if name not in chosen
        }
    failed = False
    for name in (b for b in BENCHMARKS if b in chosen):
        ctx.log(f"=== {name} (load average {os.getloadavg()[0]:.2f})")
        began = time.perf_counter()
        try:
            result = _runner(name)(ctx)
        except Exception as exc:  # one failed benchmark must not stop the others
            failed = True
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result["run_s"] = time.perf_counter() - began
        result["loadavg"] = [round(x, 2) for x in os.getloadavg()]
        result["generated"] = {"date": meta["date"], "commit": meta["commit"]}
        results["benchmarks"][name] = result
        ctx.log(f"=== {name} done in {result['run_s']:.0f} s")
    meta["seconds"] = time.perf_counter() - started
    meta["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]

    from .report import render

    results = _clean(results)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(render(results), encoding="utf-8")
    ctx.log(f"wrote {args.json} and {args.markdown} in {meta['seconds'] / 60:.1f} min")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
