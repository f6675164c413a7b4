"""Before/after on the user path: an older checkout against this one, alternating, one model server.

``python -m bench.before_after OLD_TREE [REPEATS]`` where ``OLD_TREE`` is a checkout
of the older commit (e.g. ``git archive a76d2b2 | tar -x -C /tmp/old``, with this
``bench/`` package copied into it, since its client must match its server). For
each repeat and tree, in its own interpreter (``PYTHONPATH`` = the tree): start
its server (``openai:latency`` at :mod:`bench.model_server`), run
``tracemonkey.pdf`` at concurrency 4 twice (the first job of the fresh server,
then a warm one), and print the first chunk token and total times as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any

from .common import ROOT, Context, server_process

__all__ = ["main"]


def _one(base_url: str) -> dict[str, Any]:
    from . import user_path

    ctx = Context(quick=True)
    path = ctx.pdf("tracemonkey.pdf")
    with server_process("app", "--openai-base-url", base_url, "--max-jobs", "64") as server:
        time.sleep(0.5)
        fresh = asyncio.run(user_path.run_ours(server.url, path, 4))
        warm = asyncio.run(user_path.run_ours(server.url, path, 4))
    return {
        "first_fresh_s": fresh["first_chunk_token_s"],
        "total_fresh_s": fresh["wall_s"],
        "first_warm_s": warm["first_chunk_token_s"],
        "total_warm_s": warm["wall_s"],
        "chunks": len(warm["chunk_pages"]),
        "error": fresh["error"] or warm["error"],
    }


def main(argv: list[str] | None = None) -> int:
    """Alternate the two trees; print one JSON line per run and the whole at the end."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "--one":
        print(json.dumps(_one(args[1])))
        return 0
    trees = {"before": args[0], "after": str(ROOT)}
    repeats = int(args[1]) if len(args) > 1 else 3
    ctx = Context(quick=True)
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
    with server_process("", *ctx.model_args(), module="bench.model_server") as model:
        for _ in range(repeats):
            for name, tree in trees.items():
                done = subprocess.run(
                    [sys.executable, "-m", "bench.before_after", "--one", model.url],
                    cwd=tree,
                    env=dict(os.environ, PYTHONPATH=tree),
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                lines = done.stdout.strip().splitlines()
                row = json.loads(lines[-1]) if lines else {"error": done.stderr[-500:]}
                row["loadavg"] = round(os.getloadavg()[0], 2)
                out[name].append(row)
                print(name, json.dumps(row), flush=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
