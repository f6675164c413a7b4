"""Benchmark 3: summaries start while a text upload is still arriving.

A client sends the beginning of *Free Culture* as ``text`` messages that trickle
in over several seconds (a sleep between pieces) to the real server (our app
under uvicorn, in its own process, with the latency model). We record, from the
moment the first piece is sent: when the first ``chunk.started`` and the first
``chunk.token`` arrive, how many characters had been sent by then, and when the
upload ended. The map must start before the upload ends: first token / upload
duration < 1. The first chunk can only be cut once ``chunk_size`` characters
(plus the chunker's lookahead) have arrived, so the floor is "time that many
characters took to send" + the model's first-token latency. We also report when
``chunk_size + chunk_overlap`` characters had been sent (``lookahead_sent_s``):
the earliest a chunker with one overlap of lookahead could cut the first chunk.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from summarizer.client import SummarizerClient
from summarizer.protocol import StartOptions
from summarizer.settings import Settings

from .common import Context, document_text, server_process

__all__ = ["run"]


class _Trickle:
    """Text pieces with a pause before each but the first; records when each was handed over."""

    def __init__(self, text: str, pieces: int, interval_s: float) -> None:
        size = -(-len(text) // pieces)
        self.pieces = [text[i : i + size] for i in range(0, len(text), size)]
        self.interval_s = interval_s
        self.sent: list[tuple[float, int]] = []
        """(perf_counter, characters sent so far) after each piece."""

    async def __call__(self) -> AsyncIterator[str]:
        total = 0
        for index, piece in enumerate(self.pieces):
            if index:
                await asyncio.sleep(self.interval_s)
            total += len(piece)
            self.sent.append((time.perf_counter(), total))
            yield piece

    def time_to_send(self, characters: int) -> float:
        """Seconds from the first piece until ``characters`` had been handed over (NaN if never)."""
        for when, chars in self.sent:
            if chars >= characters:
                return when - self.sent[0][0]
        return float("nan")

    def chars_sent_at(self, moment: float) -> int:
        """Characters handed to the client at or before ``moment``."""
        return max((chars for when, chars in self.sent if when <= moment), default=0)


async def _session(url: str, trickle: _Trickle, lookahead_chars: int) -> dict[str, Any]:
    client = SummarizerClient(url)
    marks: dict[str, float] = {}
    tokens_before_end = 0
    async for event in client.summarize_text(trickle(), options=StartOptions(model="latency")):
        now = time.perf_counter()
        kind = event.type
        if kind in ("chunk.started", "chunk.token", "summary.token") and kind not in marks:
            marks[kind] = now
        if kind == "chunk.token" and len(trickle.sent) < len(trickle.pieces):
            tokens_before_end += 1
        if kind in ("summary", "error", "cancelled"):
            marks["end"] = now
            marks["terminal_" + kind] = now
    first = trickle.sent[0][0]
    upload_end = trickle.sent[-1][0]
    started = marks.get("chunk.started", float("nan"))
    token = marks.get("chunk.token", float("nan"))
    return {
        "characters": trickle.sent[-1][1],
        "pieces": len(trickle.pieces),
        "interval_s": trickle.interval_s,
        "upload_s": upload_end - first,
        "first_chunk_started_s": started - first,
        "first_chunk_token_s": token - first,
        "chars_sent_at_first_started": trickle.chars_sent_at(started),
        "model_first_token_s": token - started,
        "lookahead_chars": lookahead_chars,
        "lookahead_sent_s": trickle.time_to_send(lookahead_chars),
        "tokens_before_upload_end": tokens_before_end,
        "first_summary_token_s": marks.get("summary.token", float("nan")) - first,
        "total_s": marks.get("end", float("nan")) - first,
        "completed": "terminal_summary" in marks,
    }


def run(ctx: Context) -> dict[str, Any]:
    """Trickle a text upload to the real server and time the first chunk token."""
    text = document_text(ctx.chunks("freeculture.pdf"))
    characters, pieces, interval = (24_000, 12, 0.25) if ctx.quick else (60_000, 30, 0.2)
    trickle = _Trickle(text[:characters], pieces, interval)
    ctx.log(f"pipelining: {characters} characters in {pieces} pieces, {interval} s apart")
    settings = Settings()
    lookahead = settings.chunk_size + settings.chunk_overlap
    with server_process("app", *ctx.model_args()) as server:
        result = asyncio.run(asyncio.wait_for(_session(server.url, trickle, lookahead), timeout=300))
    ratio = result["first_chunk_token_s"] / result["upload_s"]
    return {
        **result,
        "first_token_s": ctx.first_token_s,
        "ratio_first_token_to_upload": ratio,
        "chunk_size": settings.chunk_size,
        "passed": result["completed"] and ratio < 1.0,
        "server": server.result,
    }
