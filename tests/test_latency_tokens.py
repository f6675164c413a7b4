"""Token coalescing: a call's pieces within 25 ms go out as one event; the first at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from summarizer.ingest.types import Chunk
from summarizer.pipeline import PipelineConfig, summarize_chunks

from .fakes import EchoModel


def _chunk(words: int = 60) -> Chunk:
    text = " ".join(f"w{i}" for i in range(words))
    return Chunk(index=0, text=text, start=0, end=len(text), first_page=1, last_page=1)


async def _events(model: EchoModel, **config: float) -> list[tuple[float, object]]:
    async def source() -> AsyncIterator[Chunk]:
        yield _chunk()

    began = time.perf_counter()
    return [
        (time.perf_counter() - began, event)
        async for event in summarize_chunks(source(), model=model, config=PipelineConfig(**config))
    ]


async def test_fast_pieces_are_coalesced_and_join_to_the_summary() -> None:
    events = await _events(EchoModel(words=40), token_coalesce_s=0.025)
    tokens = [e for _, e in events if getattr(e, "type", "") == "chunk.token"]
    (summary,) = [e for _, e in events if getattr(e, "type", "") == "chunk.summary"]
    assert "".join(t.text for t in tokens) == summary.text  # type: ignore[attr-defined]
    assert len(tokens) < 10, "40 pieces streamed back to back become a few events"
    order = [getattr(e, "type", "") for _, e in events]
    assert order.index("chunk.summary") > max(i for i, kind in enumerate(order) if kind == "chunk.token")


async def test_without_coalescing_every_piece_is_an_event() -> None:
    events = await _events(EchoModel(words=40), token_coalesce_s=0.0)
    assert sum(getattr(e, "type", "") == "chunk.token" for _, e in events) == 40


async def test_the_first_piece_is_not_held() -> None:
    class Slow(EchoModel):
        async def _astream(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
            async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
                yield chunk
                await asyncio.sleep(0.3)

    events = await _events(Slow(words=2), token_coalesce_s=0.025)
    first = next(at for at, e in events if getattr(e, "type", "") == "chunk.token")
    started = next(at for at, e in events if getattr(e, "type", "") == "chunk.started")
    assert first - started < 0.2  # the window holds later pieces, never the first one
    tokens = [e for _, e in events if getattr(e, "type", "") == "chunk.token"]
    assert len(tokens) == 2  # pieces 300 ms apart are never merged


async def test_a_steady_stream_becomes_one_event_per_window_and_no_piece_waits_longer() -> None:
    """Pieces 10 ms apart: about one event per 25 ms window (not two per three pieces), none held > 25 ms."""
    yielded: dict[str, float] = {}

    class Steady(EchoModel):
        async def _astream(self, messages, stop=None, run_manager=None, **kwargs):  # type: ignore[no-untyped-def]
            async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
                await asyncio.sleep(0.01)
                yielded[str(chunk.message.content).strip()] = time.perf_counter()
                yield chunk

    began = time.perf_counter()
    events = await _events(Steady(words=40), token_coalesce_s=0.025)
    tokens = [(at + began, e) for at, e in events if getattr(e, "type", "") == "chunk.token"]
    assert "".join(e.text for _, e in tokens).split() == [f"w{i}" for i in range(40)]  # type: ignore[attr-defined]
    assert len(tokens) <= 0.55 * 40, f"{len(tokens)} events for 40 pieces"
    held = [at - yielded[word] for at, e in tokens for word in e.text.split()]  # type: ignore[attr-defined]
    assert max(held) < 0.025 + 0.05  # the window, and some slack for a loaded machine
