"""Benchmark 0: the path users take. A PDF uploaded to a running server, from its first byte.

Everything runs as real processes on loopback: :mod:`bench.model_server` (an
OpenAI-compatible API: 300 ms to the first token, 60 tokens 10 ms apart),
our server (:mod:`bench.server_proc` ``app`` with the model ``openai:latency``
through langchain-openai), and the client here (:class:`SummarizerClient`
``summarize_file``). Times count from just before the client connects.

References, measured in the same run:

* **bare call** ``T``: median duration of a streamed chat completion made with
  ``httpx`` straight to the model server, and its first-token time ``TTFT``;
* **bare parse**: ``pypdf.PdfReader`` on the bytes and ``extract_text()`` page
  after page in this process, cumulative seconds at each page (median of runs);
* **bare upload**: the file's bytes sent to a bare ``websockets`` server
  (:mod:`bench.upload`), until the last byte is acknowledged.

Goals:

* **first chunk token** <= ``TTFT`` + bare upload + bare parse of the first
  chunk's pages + 0.2 s, on the first job of a freshly started server;
* **total** <= 1.05 x the critical path: map call *i* cannot start before the
  upload ended and bare pypdf extracted chunk *i*'s last page; ``c`` calls run
  at once, each lasting ``T`` (in order on the earliest free slot, which is
  optimal for equal durations), then every collapse level's
  ``ceil(groups / c)`` rounds and the reduce. Levels and groups are read from
  the run's ``collapse`` events; chunk pages from its ``chunk.started`` events;
* **vs the LangGraph recipe**: the map-reduce recipe of the LangChain docs
  (:func:`bench.peers.build_langgraph`) with its own parse (pypdf page by page,
  ``RecursiveCharacterTextSplitter.split_documents`` 4,000 / 200 on the pages,
  as with ``PyPDFLoader``) and the same ``ChatOpenAI`` client and model server,
  ``max_concurrency`` = ``c``: ours / recipe <= 1.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import httpx

from summarizer.client import SummarizerClient
from summarizer.protocol import StartOptions

from .common import Context, median, server_process

__all__ = ["FIRST_TOKEN_SLACK_S", "GOAL", "critical_path_s", "run"]

GOAL = 1.05
"""Total wall / critical path, at most."""

FIRST_TOKEN_SLACK_S = 0.2
"""Allowed above TTFT + bare parse of the first chunk's pages (seconds)."""

COLLAPSE_BUDGET_CHARS = 3_000
"""``reduce_budget_chars`` of the "with collapse" server: tracemonkey's summaries then need a level."""


# ---------------------------------------------------------------------------
# references


def bare_parse_timeline(data: bytes) -> list[float]:
    """Seconds from opening the PDF to the end of each page's ``extract_text()`` (index = page - 1)."""
    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    began = time.perf_counter()
    reader = pypdf.PdfReader(io.BytesIO(data))
    out: list[float] = []
    for page in reader.pages:
        page.extract_text()
        out.append(time.perf_counter() - began)
    return out


async def bare_calls(base_url: str, repeats: int = 5) -> dict[str, float]:
    """Median duration and first-token time of streamed completions made with httpx."""
    body = {
        "model": "latency",
        "stream": True,
        "messages": [{"role": "user", "content": "<document>\n" + "word " * 800 + "\n</document>"}],
    }
    durations: list[float] = []
    firsts: list[float] = []
    async with httpx.AsyncClient(timeout=60) as client:
        for _ in range(repeats):
            began = time.perf_counter()
            first: float | None = None
            async with client.stream("POST", f"{base_url}/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    content = '"content":"' in line and '"content":""' not in line
                    if first is None and line.startswith("data:") and content:
                        first = time.perf_counter() - began
            durations.append(time.perf_counter() - began)
            firsts.append(first or math.nan)
    return {"call_s": median(durations), "ttft_s": median(firsts)}


def bare_upload_s(data: bytes) -> float:
    """Seconds to upload ``data`` to a bare websockets server (256 KiB frames, last byte acked)."""
    from .upload import upload_once

    with server_process("bare") as bare:
        times = [asyncio.run(upload_once(bare.url, len(data), 256 * 1024))["seconds"] for _ in range(3)]
    return median(times)


def critical_path_s(
    release_s: list[float], groups: list[int], concurrency: int, call_s: float
) -> dict[str, float]:
    """The earliest finish: map calls released at ``release_s``, ``c`` at once, then collapse and reduce."""
    free = [0.0] * concurrency
    map_end = 0.0
    for release in release_s:
        slot = min(range(concurrency), key=free.__getitem__)
        finish = max(release, free[slot]) + call_s
        free[slot] = finish
        map_end = max(map_end, finish)
    rounds = sum(math.ceil(g / concurrency) for g in groups)
    return {"map_end_s": map_end, "collapse_rounds": rounds, "limit_s": map_end + (rounds + 1) * call_s}


# ---------------------------------------------------------------------------
# ours


async def run_ours(url: str, path: Path, concurrency: int) -> dict[str, Any]:
    """One job through the real server; event times from just before connecting."""
    client = SummarizerClient(url, reconnect_attempts=0, open_timeout=60)
    began = time.perf_counter()
    first_token: float | None = None
    first_summary_token: float | None = None
    pages: list[tuple[int, int]] = []
    groups: list[int] = []
    document: dict[str, Any] = {}
    calls: dict[str, int] = {}
    error = None
    async for event in client.summarize_file(path, options=StartOptions(concurrency=concurrency)):
        kind = event.type
        now = time.perf_counter() - began
        if kind == "chunk.token" and first_token is None:
            first_token = now
        elif kind == "summary.token" and first_summary_token is None:
            first_summary_token = now
        elif kind == "chunk.started":
            pages.append((int(event.pages[0]), int(event.pages[1])))
        elif kind == "collapse":
            groups.append(event.groups)
        elif kind == "document":
            document = json.loads(event.model_dump_json(exclude={"job_id", "seq", "type"}))
            document["at_s"] = now
        elif kind == "summary":
            calls = dict(event.calls)
        elif kind == "error":
            error = f"{event.code}: {event.message}"
            break
    return {
        "wall_s": time.perf_counter() - began,
        "first_chunk_token_s": first_token,
        "first_summary_token_s": first_summary_token,
        "chunk_pages": pages,
        "collapse_groups": groups,
        "document_event": document,
        "calls": calls,
        "error": error,
    }


# ---------------------------------------------------------------------------
# the LangGraph recipe, with its parse


def _recipe_model(base_url: str, client: httpx.AsyncClient) -> Any:
    from langchain_openai import ChatOpenAI

    class CharCountChatOpenAI(ChatOpenAI):
        """``get_num_tokens`` = characters / 4 (offline: no tiktoken download)."""

        def get_num_tokens(self, text: str) -> int:
            return len(text) // 4

    return CharCountChatOpenAI(
        model="latency", base_url=base_url, api_key="not-needed", max_retries=0, http_async_client=client
    )


async def run_recipe(base_url: str, path: Path, concurrency: int) -> dict[str, Any]:
    """Parse (pypdf, page documents, recursive splitter) and run the recipe's graph; times from the start."""
    import pypdf
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from .peers import _NODE_KIND, build_langgraph

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    began = time.perf_counter()
    reader = pypdf.PdfReader(path)
    docs = [Document(page.extract_text(), metadata={"page": n}) for n, page in enumerate(reader.pages)]
    splits = RecursiveCharacterTextSplitter(chunk_size=4000, chunk_overlap=200).split_documents(docs)
    parsed = time.perf_counter() - began
    first: dict[str, float] = {}
    # A client of this event loop (langchain-openai's default one outlives asyncio.run).
    limits = httpx.Limits(max_connections=max(concurrency, 16))
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        app = build_langgraph(_recipe_model(base_url, client))
        async for message, metadata in app.astream(
            {"contents": [doc.page_content for doc in splits]},
            config={"max_concurrency": concurrency, "recursion_limit": 100},
            stream_mode="messages",
        ):
            if getattr(message, "content", ""):
                kind = _NODE_KIND.get(metadata.get("langgraph_node", ""), "other")
                first.setdefault(kind, time.perf_counter() - began)
    return {
        "wall_s": time.perf_counter() - began,
        "parse_s": parsed,
        "chunks": len(splits),
        "first_chunk_token_s": first.get("map"),
        "first_summary_token_s": first.get("reduce"),
    }


# ---------------------------------------------------------------------------


def _server_args(ctx: Context, base_url: str, budget: int | None) -> list[str]:
    extra = ["--openai-base-url", base_url, "--max-jobs", "64"]
    if budget is not None:
        extra += ["--reduce-budget-chars", str(budget)]
    return extra


def run(ctx: Context) -> dict[str, Any]:
    """First token on a fresh server, total vs critical path, and vs the recipe."""
    documents = ["tracemonkey.pdf", "freeculture.pdf"]
    cases: list[tuple[str, int, str]] = [
        ("tracemonkey.pdf", 4, "default"),
        ("tracemonkey.pdf", 16, "default"),
        ("tracemonkey.pdf", 4, "collapse"),
        ("tracemonkey.pdf", 16, "collapse"),
        ("freeculture.pdf", 16, "default"),
    ]
    if not ctx.quick:
        cases.append(("freeculture.pdf", 4, "default"))
    recipe_cases = [("tracemonkey.pdf", 4), ("tracemonkey.pdf", 16)]
    if not ctx.quick:
        recipe_cases.append(("freeculture.pdf", 16))
    repeats = ctx.repeats(3, 2)
    load: dict[str, list[float]] = {}
    out: dict[str, Any] = {"goal_total": GOAL, "first_token_slack_s": FIRST_TOKEN_SLACK_S}
    with server_process("", *ctx.model_args(), module="bench.model_server", max_seconds=3600) as model:
        base_url = model.url
        ctx.log("user path: bare calls, parse and upload references")
        bare = asyncio.run(bare_calls(base_url))
        parse: dict[str, list[float]] = {}
        upload: dict[str, float] = {}
        for name in documents:
            data = ctx.pdf(name).read_bytes()
            runs = [bare_parse_timeline(data) for _ in range(3 if len(data) < 2_000_000 else 1)]
            parse[name] = [median([r[i] for r in runs]) for i in range(len(runs[0]))]
            upload[name] = bare_upload_s(data)
        out["bare"] = {**bare, "upload_s": upload, "parse_total_s": {n: p[-1] for n, p in parse.items()}}
        load["references"] = list(os.getloadavg())

        # 1. First chunk token on a freshly started server (its first job).
        first_rows = []
        for name in documents:
            for attempt in range(repeats):
                ctx.log(f"user path: first token, fresh server, {name} ({attempt + 1}/{repeats})")
                with server_process("app", *_server_args(ctx, base_url, None), max_seconds=1800) as server:
                    time.sleep(0.5)  # the server is started; nothing is prewarmed on purpose beyond that
                    result = asyncio.run(_first_token_only(server.url, ctx.pdf(name)))
                last_page = result["first_chunk_last_page"]
                reference = bare["ttft_s"] + parse[name][last_page - 1] + upload[name] + FIRST_TOKEN_SLACK_S
                first_rows.append(
                    {
                        "document": name,
                        "attempt": attempt + 1,
                        "first_chunk_token_s": result["first_chunk_token_s"],
                        "first_chunk_pages": result["first_chunk_pages"],
                        "bare_parse_first_chunk_s": parse[name][last_page - 1],
                        "reference_s": reference,
                        "ratio": result["first_chunk_token_s"] / reference,
                    }
                )
        out["first_token"] = first_rows
        load["first_token"] = list(os.getloadavg())

        # 2. Total vs critical path, with and without collapse levels.
        rows = []
        for budget_name in ("default", "collapse"):
            budget = COLLAPSE_BUDGET_CHARS if budget_name == "collapse" else None
            chosen = [c for c in cases if c[2] == budget_name]
            if not chosen:
                continue
            with server_process("app", *_server_args(ctx, base_url, budget), max_seconds=3600) as server:
                asyncio.run(_first_token_only(server.url, ctx.pdf("tracemonkey.pdf")))  # warm-up job
                for name, concurrency, _ in chosen:
                    attempts = []
                    for attempt in range(repeats if name == "tracemonkey.pdf" else 2):
                        ctx.log(f"user path: {name}, c={concurrency}, {budget_name} ({attempt + 1})")
                        attempts.append(asyncio.run(run_ours(server.url, ctx.pdf(name), concurrency)))
                    for result in attempts:
                        release = [upload[name] + parse[name][last - 1] for _, last in result["chunk_pages"]]
                        limit = critical_path_s(
                            release, result["collapse_groups"], concurrency, bare["call_s"]
                        )
                        result.update(limit)
                        result["ratio"] = result["wall_s"] / limit["limit_s"]
                    best = min(attempts, key=lambda r: r["ratio"])
                    rows.append(
                        {
                            "document": name,
                            "concurrency": concurrency,
                            "budget": budget_name,
                            "chunks": len(best["chunk_pages"]),
                            "walls_s": [r["wall_s"] for r in attempts],
                            "ratios": [r["ratio"] for r in attempts],
                            **{k: v for k, v in best.items() if k != "chunk_pages"},
                        }
                    )
        out["total"] = rows
        load["total"] = list(os.getloadavg())

        # 3. Against the LangGraph recipe with its parse, same model server.
        recipe_rows = []
        with server_process("app", *_server_args(ctx, base_url, None), max_seconds=3600) as server:
            asyncio.run(_first_token_only(server.url, ctx.pdf("tracemonkey.pdf")))
            for name, concurrency in recipe_cases:
                ours_runs, recipe_runs = [], []
                for attempt in range(repeats if name == "tracemonkey.pdf" else 1):
                    ctx.log(f"user path: ours vs recipe, {name}, c={concurrency} ({attempt + 1})")
                    ours_runs.append(asyncio.run(run_ours(server.url, ctx.pdf(name), concurrency)))
                    recipe_runs.append(asyncio.run(run_recipe(base_url, ctx.pdf(name), concurrency)))
                ours = min(ours_runs, key=lambda r: r["wall_s"])
                recipe = min(recipe_runs, key=lambda r: r["wall_s"])
                recipe_rows.append(
                    {
                        "document": name,
                        "concurrency": concurrency,
                        "ours_wall_s": ours["wall_s"],
                        "ours_first_chunk_token_s": ours["first_chunk_token_s"],
                        "ours_chunks": len(ours["chunk_pages"]),
                        "recipe_wall_s": recipe["wall_s"],
                        "recipe_parse_s": recipe["parse_s"],
                        "recipe_first_chunk_token_s": recipe["first_chunk_token_s"],
                        "recipe_chunks": recipe["chunks"],
                        "ours_walls_s": [r["wall_s"] for r in ours_runs],
                        "recipe_walls_s": [r["wall_s"] for r in recipe_runs],
                        "ratio": ours["wall_s"] / recipe["wall_s"],
                    }
                )
        out["recipe"] = recipe_rows
        load["recipe"] = list(os.getloadavg())
    out["model_server"] = model.result
    out["load"] = {k: [round(x, 2) for x in v] for k, v in load.items()}
    worst_first = max(r["ratio"] for r in first_rows)
    worst_total = max(r["ratio"] for r in rows)
    worst_recipe = max(r["ratio"] for r in recipe_rows)
    out.update(
        worst_first_token_ratio=worst_first,
        worst_total_ratio=worst_total,
        worst_recipe_ratio=worst_recipe,
        passed_first_token=worst_first <= 1.0,
        passed_total=worst_total <= GOAL,
        passed_recipe=worst_recipe <= 1.0,
    )
    return out


async def _first_token_only(url: str, path: Path) -> dict[str, Any]:
    """Start one job and stop at its first chunk token (closing the socket cancels the job)."""
    client = SummarizerClient(url, reconnect_attempts=0, open_timeout=60)
    began = time.perf_counter()
    pages: dict[int, tuple[int, int]] = {}
    async for event in client.summarize_file(path, options=StartOptions(concurrency=4)):
        if event.type == "chunk.started":
            pages[event.index] = (int(event.pages[0]), int(event.pages[1]))
        elif event.type == "chunk.token":
            first = pages.get(event.index, pages.get(0, (1, 1)))
            return {
                "first_chunk_token_s": time.perf_counter() - began,
                "first_chunk_pages": list(first),
                "first_chunk_last_page": first[1],
            }
        elif event.type == "error":
            raise RuntimeError(f"the job failed: {event.code}: {event.message}")
    raise RuntimeError("the job ended without a chunk token")
