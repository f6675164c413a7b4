"""Benchmark 2: our pipeline against LangChain's and LangGraph's map-reduce, same model, same chunks.

Three systems summarize the same chunks with the same latency model, the same
prompts (ours: map, collapse, reduce) and the same budget:

* **ours**: :func:`summarizer.pipeline.summarize_chunks`, ``concurrency=c``,
  ``reduce_budget_chars`` = 12,000 characters.
* **langchain-classic**: ``load_summarize_chain(chain_type="map_reduce")`` with
  ``token_max`` = 12,000 / 4 tokens, its length function being the model's
  ``get_num_tokens`` (characters // 4 here); run with ``astream_events(version="v2")``
  (how its users see tokens) and ``{"max_concurrency": c}``.
* **langgraph**: the map-reduce summarization recipe of the LangChain docs
  (``Send`` fan-out to ``generate_summary``, ``split_list_of_docs`` /
  ``acollapse_docs`` in ``collapse_summaries``, ``should_collapse`` on ``token_max``),
  run with ``astream(stream_mode="messages")`` and ``{"max_concurrency": c}``.

The model is capped at ``c`` calls in flight (``LatencyModel.max_concurrent``),
like a provider's concurrency limit: ``load_summarize_chain``'s map step calls
``agenerate`` on all chunks at once and ignores ``max_concurrency``, so without
the cap it would run with concurrency = number of chunks. One extra row shows
it uncapped. Figures: total wall time; time to the first token of a per-chunk
summary (all chunk texts exist at time 0); time to the first token of the final
summary; model calls; peak calls in flight. Short cases run three times with
the systems interleaved, and each system's best run is kept (the machine is
shared and noisy).
"""

from __future__ import annotations

import asyncio
import operator
import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypedDict

from langchain_classic.chains.combine_documents.reduce import acollapse_docs, split_list_of_docs
from langchain_classic.chains.summarize import load_summarize_chain
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from summarizer.ingest import Chunk
from summarizer.pipeline import PipelineConfig
from summarizer.prompts import COLLAPSE_PROMPT, MAP_PROMPT, REDUCE_PROMPT

from .common import Context
from .latency_model import LatencyModel
from .overhead import run_pipeline

__all__ = ["FIRST_TOKEN_GOAL", "run", "run_classic", "run_langgraph"]

FIRST_TOKEN_GOAL = 1.1
"""First per-chunk token at most this many times the model's first-token latency."""

TOTAL_GOAL = 1.0
NOISE = 0.01
"""Ours / best peer counts as "no worse" up to ``TOTAL_GOAL + NOISE``: without a
collapse every system sits on the critical-path limit, and repeated runs of one
system on this shared machine differ by about this much."""

BUDGET_CHARS = PipelineConfig().reduce_budget_chars
TOKEN_MAX = BUDGET_CHARS // 4
"""The peers' ``token_max``: our character budget at 4 characters per token."""


def _prompts() -> tuple[ChatPromptTemplate, ChatPromptTemplate, ChatPromptTemplate]:
    """Our map, collapse and reduce prompts with only ``text`` left to fill."""
    config = PipelineConfig()
    return (
        MAP_PROMPT.partial(words=str(config.map_words), pages="a part"),
        COLLAPSE_PROMPT.partial(words=str(config.summary_words)),
        REDUCE_PROMPT.partial(words=str(config.summary_words)),
    )


def _prefix(prompt: ChatPromptTemplate) -> str:
    """The first characters of the prompt's last (human) message, with empty text."""
    message = prompt.format_messages(text="")[-1]
    return str(message.content)[:40]


def _kinds() -> dict[str, str]:
    """Prefix of each of our prompts' human message -> ``map``, ``collapse`` or ``reduce``."""
    map_prompt, collapse_prompt, reduce_prompt = _prompts()
    return {
        _prefix(map_prompt): "map",
        _prefix(collapse_prompt): "collapse",
        _prefix(reduce_prompt): "reduce",
    }


def _kind(prompt: str, kinds: dict[str, str]) -> str:
    """``map``, ``collapse`` or ``reduce``: which of our prompts ``prompt`` was made from."""
    for prefix, kind in kinds.items():
        if prompt.startswith(prefix):
            return kind
    return "other"


class _Timeline:
    """First-token times by call kind, from a common start."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: dict[str, float] = {}

    def token(self, kind: str) -> None:
        if kind not in self.first:
            self.first[kind] = time.perf_counter() - self.started

    def result(self, model: LatencyModel, **extra: Any) -> dict[str, Any]:
        return {
            "wall_s": time.perf_counter() - self.started,
            "first_chunk_token_s": self.first.get("map"),
            "first_summary_token_s": self.first.get("reduce"),
            "calls": model.calls,
            "peak_in_flight": model.peak_in_flight,
            **extra,
        }


# ---------------------------------------------------------------------------
# langchain-classic


async def run_classic(chunks: Sequence[Chunk], model: LatencyModel, concurrency: int) -> dict[str, Any]:
    """``load_summarize_chain(chain_type="map_reduce")`` streamed with ``astream_events``."""
    map_prompt, collapse_prompt, reduce_prompt = _prompts()
    chain = load_summarize_chain(
        model,
        chain_type="map_reduce",
        map_prompt=map_prompt,
        combine_prompt=reduce_prompt,
        collapse_prompt=collapse_prompt,
        token_max=TOKEN_MAX,
    )
    docs = [Document(page_content=chunk.text) for chunk in chunks]
    prefixes = _kinds()
    kinds: dict[str, str] = {}
    output = ""
    model.reset_stats()
    timeline = _Timeline()
    async for event in chain.astream_events(
        {"input_documents": docs}, config={"max_concurrency": concurrency}, version="v2"
    ):
        name = event["event"]
        if name == "on_chat_model_start":
            messages = event["data"]["input"]["messages"]
            batch = messages[0] if messages and isinstance(messages[0], list) else messages
            kinds[event["run_id"]] = _kind(str(batch[-1].content) if batch else "", prefixes)
        elif name == "on_chat_model_stream":
            if event["data"]["chunk"].content:
                timeline.token(kinds.get(event["run_id"], "other"))
        elif name == "on_chain_end" and event.get("parent_ids") == []:
            data: dict[str, Any] = dict(event["data"])
            output = str((data.get("output") or {}).get("output_text", ""))
    return timeline.result(model, summary_chars=len(output))


# ---------------------------------------------------------------------------
# LangGraph: the map-reduce summarization recipe


class OverallState(TypedDict):
    """The recipe's graph state."""

    contents: list[str]
    summaries: Annotated[list[str], operator.add]
    collapsed_summaries: list[Document]
    final_summary: str


class SummaryState(TypedDict):
    """State sent to each ``generate_summary`` task."""

    content: str


def build_langgraph(model: LatencyModel, token_max: int = TOKEN_MAX) -> Any:
    """Compile the recipe's graph with our prompts and ``model``.

    The recipe, unchanged but for the prompts: one ``Send`` per document to
    ``generate_summary``; ``collect_summaries``; ``should_collapse`` compares the
    summed ``get_num_tokens`` with ``token_max``; ``collapse_summaries`` splits
    with ``split_list_of_docs`` and collapses each group with ``acollapse_docs``,
    one group after the other, as the recipe does.
    """
    map_prompt, collapse_prompt, reduce_prompt = _prompts()
    map_chain = map_prompt | model | StrOutputParser()
    collapse_chain = collapse_prompt | model | StrOutputParser()
    reduce_chain = reduce_prompt | model | StrOutputParser()

    def length_function(documents: list[Document]) -> int:
        return sum(model.get_num_tokens(doc.page_content) for doc in documents)

    def joined(documents: list[Document]) -> dict[str, str]:
        return {"text": "\n\n".join(doc.page_content for doc in documents)}

    async def collapse(docs: list[Document], **_: Any) -> str:
        return await collapse_chain.ainvoke(joined(docs))

    async def generate_summary(state: SummaryState) -> dict[str, Any]:
        response = await map_chain.ainvoke({"text": state["content"]})
        return {"summaries": [response]}

    def map_summaries(state: OverallState) -> list[Send]:
        return [Send("generate_summary", {"content": content}) for content in state["contents"]]

    def collect_summaries(state: OverallState) -> dict[str, Any]:
        return {"collapsed_summaries": [Document(summary) for summary in state["summaries"]]}

    async def collapse_summaries(state: OverallState) -> dict[str, Any]:
        doc_lists = split_list_of_docs(state["collapsed_summaries"], length_function, token_max)
        results = []
        for doc_list in doc_lists:
            results.append(await acollapse_docs(doc_list, collapse))
        return {"collapsed_summaries": results}

    def should_collapse(state: OverallState) -> Literal["collapse_summaries", "generate_final_summary"]:
        if length_function(state["collapsed_summaries"]) > token_max:
            return "collapse_summaries"
        return "generate_final_summary"

    async def generate_final_summary(state: OverallState) -> dict[str, Any]:
        response = await reduce_chain.ainvoke(joined(state["collapsed_summaries"]))
        return {"final_summary": response}

    graph = StateGraph(OverallState)
    graph.add_node("generate_summary", generate_summary)
    graph.add_node("collect_summaries", collect_summaries)
    graph.add_node("collapse_summaries", collapse_summaries)
    graph.add_node("generate_final_summary", generate_final_summary)
    graph.add_conditional_edges(START, map_summaries, ["generate_summary"])
    graph.add_edge("generate_summary", "collect_summaries")
    graph.add_conditional_edges("collect_summaries", should_collapse)
    graph.add_conditional_edges("collapse_summaries", should_collapse)
    graph.add_edge("generate_final_summary", END)
    return graph.compile()


_NODE_KIND = {"generate_summary": "map", "collapse_summaries": "collapse", "generate_final_summary": "reduce"}


async def run_langgraph(chunks: Sequence[Chunk], model: LatencyModel, concurrency: int) -> dict[str, Any]:
    """The recipe's graph streamed with ``stream_mode="messages"``."""
    app = build_langgraph(model)
    model.reset_stats()
    timeline = _Timeline()
    async for message, metadata in app.astream(
        {"contents": [chunk.text for chunk in chunks]},
        config={"max_concurrency": concurrency, "recursion_limit": 100},
        stream_mode="messages",
    ):
        if getattr(message, "content", ""):
            timeline.token(_NODE_KIND.get(metadata.get("langgraph_node", ""), "other"))
    return timeline.result(model)


async def _run_ours(chunks: Sequence[Chunk], model: LatencyModel, concurrency: int) -> dict[str, Any]:
    model.reset_stats()
    result = await run_pipeline(chunks, model, PipelineConfig(concurrency=concurrency))
    return {
        **result,
        "calls": sum(result["calls"].values()),
        "peak_in_flight": model.peak_in_flight,
    }


def run(ctx: Context) -> dict[str, Any]:
    """Run the three systems on each document and concurrency of this mode."""
    cases = [("tracemonkey.pdf", 4), ("tracemonkey.pdf", 16)]
    if not ctx.quick:
        cases += [("freeculture.pdf", 4), ("freeculture.pdf", 16)]
    systems = {"ours": _run_ours, "langchain-classic": run_classic, "langgraph": run_langgraph}
    rows: list[dict[str, Any]] = []
    for name, concurrency in cases:
        chunks = ctx.chunks(name)
        capped = LatencyModel(
            first_token_s=ctx.first_token_s,
            token_delay_s=ctx.token_delay_s,
            tokens=ctx.tokens,
            max_concurrent=concurrency,
        )
        uncapped = LatencyModel(
            first_token_s=ctx.first_token_s, token_delay_s=ctx.token_delay_s, tokens=ctx.tokens
        )
        runs: dict[str, list[dict[str, Any]]] = {
            system: [] for system in [*systems, "langchain-classic-uncapped"]
        }
        repeats = ctx.repeats(3) if len(chunks) < 100 else 1
        for attempt in range(repeats):
            for system, runner in systems.items():
                ctx.log(f"peers: {system} on {name}, concurrency {concurrency} ({attempt + 1}/{repeats})")
                runs[system].append(asyncio.run(runner(chunks, capped, concurrency)))
            ctx.log(f"peers: langchain-classic (model uncapped) on {name}, concurrency {concurrency}")
            runs["langchain-classic-uncapped"].append(asyncio.run(run_classic(chunks, uncapped, concurrency)))
        case: dict[str, Any] = {
            "document": name,
            "chunks": len(chunks),
            "concurrency": concurrency,
            "repeats": repeats,
            "walls_s": {system: [r["wall_s"] for r in attempts] for system, attempts in runs.items()},
        }
        for system, attempts in runs.items():
            case[system] = min(attempts, key=lambda r: r["wall_s"])
        best_peer = min(case["langchain-classic"]["wall_s"], case["langgraph"]["wall_s"])
        case["ours_vs_best_peer"] = case["ours"]["wall_s"] / best_peer
        case["ours_first_token_ratio"] = case["ours"]["first_chunk_token_s"] / ctx.first_token_s
        rows.append(case)
    worst_total = max(row["ours_vs_best_peer"] for row in rows)
    worst_first = max(row["ours_first_token_ratio"] for row in rows)
    return {
        "repeats": max(row["repeats"] for row in rows),
        "token_max": TOKEN_MAX,
        "budget_chars": BUDGET_CHARS,
        "first_token_s": ctx.first_token_s,
        "rows": rows,
        "worst_total_ratio": worst_total,
        "worst_first_token_ratio": worst_first,
        "noise": NOISE,
        "passed_total": worst_total <= TOTAL_GOAL + NOISE,
        "passed_first_token": worst_first <= FIRST_TOKEN_GOAL,
    }
