"""The map-reduce pipeline with a fake model: order, concurrency, collapse, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from summarizer.errors import ErrorCode, ModelError, NoTextError
from summarizer.ingest.types import Chunk
from summarizer.pipeline import Piece, PipelineConfig, group_pieces, summarize_chunks

from .fakes import EchoModel


def make_chunks(n: int, words: int = 30) -> list[Chunk]:
    out = []
    offset = 0
    for i in range(n):
        text = " ".join(f"w{i}x{j}" for j in range(words))
        out.append(
            Chunk(index=i, text=text, start=offset, end=offset + len(text), first_page=i + 1, last_page=i + 2)
        )
        offset += len(text)
    return out


async def aiter_chunks(chunks: list[Chunk], gap_s: float = 0.0) -> AsyncIterator[Chunk]:
    for chunk in chunks:
        if gap_s:
            await asyncio.sleep(gap_s)
        yield chunk


async def collect(chunks: list[Chunk], model: Any, **config: Any) -> list[Any]:
    return [e async for e in summarize_chunks(aiter_chunks(chunks), model, config=PipelineConfig(**config))]


def test_group_pieces_respects_budget_and_order() -> None:
    pieces = [Piece(i, i, "x" * n) for i, n in enumerate([10, 10, 10, 50, 5, 5])]
    groups = group_pieces(pieces, budget=30)
    assert [p for g in groups for p in g] == pieces
    for group in groups:
        assert len(group) == 1 or sum(len(p.text) for p in group) + 2 * (len(group) - 1) <= 30
    # The 50-character piece is alone: over the budget but still grouped.
    assert [len(g) for g in groups] == [2, 1, 1, 2]


async def test_map_then_reduce_events_and_token_joins() -> None:
    model = EchoModel(words=4)
    events = await collect(make_chunks(6), model, concurrency=2)
    types = [e.type for e in events]
    assert types[-1] == "summary"
    assert types.count("chunk.summary") == 6
    assert types.count("chunk.started") == 6
    assert "collapse" not in types
    for index in range(6):
        tokens = "".join(e.text for e in events if e.type == "chunk.token" and e.index == index)
        (summary,) = [e for e in events if e.type == "chunk.summary" and e.index == index]
        assert tokens == summary.text
        assert summary.pages == (index + 1, index + 2)
        assert summary.text == f"w{index}x0 w{index}x1 w{index}x2 w{index}x3"
    final = events[-1]
    assert "".join(e.text for e in events if e.type == "summary.token") == final.text
    assert final.calls == {"map": 6, "collapse": 0, "reduce": 1}
    # Every chunk summary precedes the first summary token.
    last_chunk = max(i for i, t in enumerate(types) if t == "chunk.summary")
    assert last_chunk < types.index("summary.token")
    # The reduce saw the chunk summaries in document order.
    reduce_prompt = model.prompts[-1]
    positions = [reduce_prompt.index(f"w{i}x0") for i in range(6)]
    assert positions == sorted(positions)


async def test_concurrency_never_exceeds_limit() -> None:
    model = EchoModel(words=3, delay_s=0.01)
    await collect(make_chunks(20), model, concurrency=3)
    assert model.peak == 3


async def test_map_starts_before_chunks_end() -> None:
    model = EchoModel(words=3)
    gate = asyncio.Event()
    chunks = make_chunks(3)

    async def source() -> AsyncIterator[Chunk]:
        yield chunks[0]
        await gate.wait()
        yield chunks[1]
        yield chunks[2]

    seen: list[str] = []
    async for event in summarize_chunks(source(), model):
        seen.append(event.type)
        if event.type == "chunk.summary":
            gate.set()
    assert seen.index("chunk.summary") < len(seen) - 1
    progress_totals = [e for e in seen if e == "progress"]
    assert progress_totals


async def test_collapse_when_budget_exceeded() -> None:
    model = EchoModel(words=40)
    # 12 chunk summaries of ~40 words (~280 chars each) exceed a 1,000-char budget.
    events = await collect(
        make_chunks(12, words=60), model, concurrency=4, reduce_budget_chars=1000, summary_words=20
    )
    collapses = [e for e in events if e.type == "collapse"]
    assert collapses and collapses[0].level == 1 and collapses[0].groups >= 3
    level1 = [e for e in events if e.type == "collapse.summary" and e.level == 1]
    assert len(level1) == collapses[0].groups
    for e in level1:
        tokens = "".join(
            t.text for t in events if t.type == "collapse.token" and t.level == 1 and t.group == e.group
        )
        assert tokens == e.text
    # Groups cover the pages in order.
    assert level1[0].pages[0] == 1 and level1[-1].pages[1] == 13
    final = events[-1]
    assert final.type == "summary"
    assert final.calls["collapse"] >= collapses[0].groups
    # The reduce input fits the budget.
    reduce_doc = model.prompts[-1].split("<document>\n", 1)[1].rsplit("\n</document>", 1)[0]
    assert len(reduce_doc) <= 1000


async def test_collapse_that_does_not_shrink_fails_cleanly() -> None:
    model = EchoModel(words=1000)  # echoes everything: collapse cannot shorten
    with pytest.raises(ModelError, match="did not shorten"):
        await collect(make_chunks(10, words=60), model, reduce_budget_chars=500)


async def test_model_failure_is_a_model_error_in_strict_mode() -> None:
    model = EchoModel(fail_on="w3x0")
    with pytest.raises(ModelError, match="scripted failure"):
        await collect(make_chunks(6), model, strict=True)


async def test_failed_chunk_is_reported_and_left_out() -> None:
    model = EchoModel(fail_on="w3x0")
    events = await collect(make_chunks(6), model)
    (failed,) = [e for e in events if e.type == "chunk.failed"]
    assert failed.index == 3 and failed.pages == (4, 5) and failed.code == ErrorCode.MODEL_ERROR
    assert "scripted failure" in failed.message
    final = events[-1]
    assert final.type == "summary" and final.missing_pages == [(4, 5)]
    assert final.calls == {"map": 5, "collapse": 0, "reduce": 1}
    # The reduce prompt names the gap; the failed chunk's text is not in it.
    assert "pp. 4–5 could not be made" in model.prompts[-1] and "w3x0" not in model.prompts[-1]
    progress = [e for e in events if e.type == "progress" and e.stage == "map"]
    assert progress[-1].done == progress[-1].total == 6


async def test_every_chunk_failing_fails_the_job() -> None:
    model = EchoModel(fail_on="w")
    with pytest.raises(ModelError, match="No chunk could be summarized"):
        await collect(make_chunks(3), model)


async def test_empty_source_is_no_text() -> None:
    with pytest.raises(NoTextError) as info:
        await collect([], EchoModel())
    assert info.value.code is ErrorCode.EMPTY_DOCUMENT


async def test_source_error_propagates_unwrapped() -> None:
    async def broken() -> AsyncIterator[Chunk]:
        yield make_chunks(1)[0]
        raise NoTextError("scanned", code=ErrorCode.NO_TEXT)

    with pytest.raises(NoTextError, match="scanned"):
        async for _ in summarize_chunks(broken(), EchoModel()):
            pass


async def test_closing_the_iterator_cancels_model_calls() -> None:
    model = EchoModel(words=3, delay_s=10)
    stream = summarize_chunks(aiter_chunks(make_chunks(4)), model)
    first = await stream.__anext__()
    assert first.type in ("chunk.started", "progress")
    await asyncio.wait_for(stream.aclose(), timeout=2)
    await asyncio.sleep(0)
    assert model.active == 0


async def test_prior_results_are_reused_without_model_calls_or_events() -> None:
    from summarizer.pipeline import PriorResults

    model = EchoModel(words=3)
    prior = PriorResults(
        maps={0: "earlier summary of chunk zero."}, failed={1: ("provider_unavailable", "down")}
    )
    events = [
        e
        async for e in summarize_chunks(
            aiter_chunks(make_chunks(4)), model, config=PipelineConfig(), prior=prior
        )
    ]
    indexes = {e.index for e in events if e.type.startswith("chunk.")}
    assert indexes == {2, 3}
    assert len(model.prompts) == 3  # chunks 2 and 3, then the reduce
    assert "earlier summary of chunk zero." in model.prompts[-1]
    assert events[-1].type == "summary" and events[-1].missing_pages == [(2, 3)]


async def test_the_reduce_takes_the_title_of_the_last_chunk_and_the_map_that_of_the_first() -> None:
    """A cover's OCR completes the title late (last chunk): the reduce sees it, every map the same one."""
    import dataclasses

    chunks = [dataclasses.replace(chunk, title="Free Culture") for chunk in make_chunks(4)]
    chunks[-1] = dataclasses.replace(chunks[-1], title="Free Culture: How Big Media Uses Technology")
    model = EchoModel(words=4)
    await collect(chunks, model, concurrency=1)
    maps, reduce = model.prompts[:-1], model.prompts[-1]
    assert len(maps) == 4
    assert all("Document title: Free Culture\n" in prompt for prompt in maps), maps
    assert "Document title: Free Culture: How Big Media Uses Technology\n" in reduce
