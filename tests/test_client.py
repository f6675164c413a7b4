"""The Python client against a real uvicorn server: cancellation, reconnects, frame limits, leniency.

Where a fault must be injected the client talks to the real server through a
proxy: :class:`~tests.proxy.CuttableProxy` (drops TCP connections) or
:class:`Relay` below (a WebSocket relay that can rewrite or cut what the server
sends). Each test asserts what the server received (bytes acknowledged, the
whole document), not only that a summary came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from summarizer.cli import running_server
from summarizer.client import SummarizerClient
from summarizer.errors import TransportError
from summarizer.protocol import StartOptions, Text, dump
from summarizer.settings import Settings

from .conftest import SAMPLES
from .proxy import CuttableProxy

pytestmark = pytest.mark.e2e

TEXT = (SAMPLES / "documents" / "short-history-of-summarization.txt").read_text(encoding="utf-8")


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


Rewrite = Callable[[int, dict[str, Any]], list[dict[str, Any]] | None]
"""(connection number from 1, server event) -> events to pass on, or ``None`` to cut the connection."""


class Relay:
    """A WebSocket relay in front of a real server that rewrites (or cuts after) server events."""

    def __init__(self, upstream: str, rewrite: Rewrite) -> None:
        self.upstream = upstream
        self.rewrite = rewrite
        self.connections = 0
        self.sent: list[dict[str, Any]] = []
        """The client's JSON messages, in order."""
        self.url = ""
        self._server: Server | None = None

    async def __aenter__(self) -> Relay:
        self._server = await serve(self._handle, "127.0.0.1", 0, max_size=None, compression=None)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ws"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, client: ServerConnection) -> None:
        self.connections += 1
        number = self.connections
        async with connect(self.upstream, max_size=None, compression=None) as up:

            async def down() -> None:
                async for raw in up:
                    out = self.rewrite(number, json.loads(raw))
                    if out is None:
                        client.transport.abort()
                        return
                    for event in out:
                        await client.send(json.dumps(event))

            async def upward() -> None:
                async for raw in client:
                    if isinstance(raw, str):
                        self.sent.append(json.loads(raw))
                    await up.send(raw)

            tasks = [asyncio.create_task(down()), asyncio.create_task(upward())]
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, OSError):
                    await task


def last_received(events: list[Any]) -> int:
    return max(e.received for e in events if e.type == "ack")


# -- the caller's iterator is never finalized by a reconnect ---------------------------------


async def test_drop_while_the_source_is_awaited_resumes_the_whole_document() -> None:
    """Old code: the cut cancelled ``anext()``, finalized the generator, and sent ``end`` early."""
    pieces = [TEXT[i : i + 500] for i in range(0, len(TEXT), 500)]
    reconnects: list[str] = []
    finished = False
    with running_server(Settings()) as url:
        async with CuttableProxy(port_of(url)) as proxy:

            async def source() -> AsyncIterator[str]:
                nonlocal finished
                for number, piece in enumerate(pieces):
                    if number == len(pieces) // 2:
                        proxy.cut()  # the client is awaiting this very anext()
                        await asyncio.sleep(0.5)
                    yield piece
                finished = True

            client = SummarizerClient(
                proxy.url(),
                backoff_base_s=0.05,
                on_reconnect=lambda attempt, delay, reason: reconnects.append(reason),
            )
            events = [
                e
                async for e in client.summarize_text(
                    source(), options=StartOptions(chunk_size=1000, chunk_overlap=0)
                )
            ]
    assert reconnects, "the proxy cut did not cause a reconnect"
    assert finished, "the caller's generator was finalized before its end"
    assert events[-1].type == "summary", events[-1]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    # The server committed every byte of the document (the old client sent ``end`` after half).
    assert last_received(events) == len(TEXT.encode("utf-8"))


async def test_source_exception_is_raised_to_the_caller(live_server: str) -> None:
    """Old code: the exception died in the upload task and ``summarize_text`` hung."""

    async def source() -> AsyncIterator[str]:
        yield TEXT[:1000]
        await asyncio.sleep(0.05)
        raise ValueError("the source broke")

    client = SummarizerClient(live_server)

    async def consume() -> list[Any]:
        return [e async for e in client.summarize_text(source())]

    started = asyncio.get_running_loop().time()
    with pytest.raises(ValueError, match="the source broke"):
        await asyncio.wait_for(consume(), timeout=20)
    # Raised at once, not when the wait above gave up (the old client hung until cancelled).
    assert asyncio.get_running_loop().time() - started < 10


async def test_invalid_piece_is_raised_to_the_caller(live_server: str) -> None:
    client = SummarizerClient(live_server)

    async def consume() -> list[Any]:
        return [e async for e in client.summarize_text(["fine text ", 42])]  # type: ignore[list-item]

    started = asyncio.get_running_loop().time()
    with pytest.raises(TypeError):
        await asyncio.wait_for(consume(), timeout=20)
    assert asyncio.get_running_loop().time() - started < 10


# -- frame limits and bounded reconnects ----------------------------------------------------------


def test_split_text_fits_frames_and_keeps_characters() -> None:
    from summarizer.client import _split_text

    text = ('ab"\\\n\x01é€😀 ' * 3000) + "x" * 10_000
    for limit in (1024, 4096, 65536):
        pieces = _split_text(text, limit)
        assert "".join(pieces) == text
        assert all(len(dump(Text(text=p)).encode("utf-8")) <= limit for p in pieces)
        assert all(pieces)
    assert _split_text("short", 1024) == ["short"]


async def test_text_piece_above_max_frame_bytes_is_cut() -> None:
    """Old code: one oversized piece -> 1009 -> reconnect -> 1009 ... forever."""
    text = (TEXT + "\n\nÉtude ünïcode “quotes” 😀\n\n") * 4  # ~36 KB, multi-byte characters
    settings = Settings(max_frame_bytes=4096, ack_window_bytes=16 * 1024)
    with running_server(settings) as url:
        client = SummarizerClient(url, reconnect_attempts=2, backoff_base_s=0.01)

        async def consume() -> list[Any]:
            return [
                e
                async for e in client.summarize_text(
                    [text], options=StartOptions(chunk_size=4000, chunk_overlap=0)
                )
            ]

        events = await asyncio.wait_for(consume(), timeout=120)
    assert events[-1].type == "summary", events[-1]
    assert last_received(events) == len(text.encode("utf-8"))


async def test_reconnect_attempts_are_bounded_across_resumes() -> None:
    """A server that answers every ``resume`` and then drops: attempts must not reset on ``resumed``."""

    def rewrite(number: int, event: dict[str, Any]) -> list[dict[str, Any]] | None:
        if number == 1:
            return None if event["type"] == "ack" else [event]  # drop mid-upload
        return [event] if event["type"] == "resumed" else None  # resumed, then drop, every time

    async def source() -> AsyncIterator[str]:
        for i in range(0, len(TEXT), 200):
            yield TEXT[i : i + 200]
            await asyncio.sleep(0.01)

    reconnects: list[int] = []
    with running_server(Settings()) as url:
        async with Relay(url, rewrite) as relay:
            client = SummarizerClient(
                relay.url,
                reconnect_attempts=3,
                backoff_base_s=0.01,
                backoff_max_s=0.05,
                on_reconnect=lambda attempt, delay, reason: reconnects.append(attempt),
            )

            async def consume() -> list[Any]:
                return [e async for e in client.summarize_text(source())]

            with pytest.raises(TransportError, match="Gave up after 3"):
                await asyncio.wait_for(consume(), timeout=60)
    assert reconnects == [1, 2, 3]
    assert relay.connections == 4


# -- leniency: a newer server ----------------------------------------------------------------------


async def test_unknown_fields_and_event_types_are_skipped(live_server: str) -> None:
    """Old code: the first extra field raised ``ValidationError``."""
    injected = 0

    def rewrite(number: int, event: dict[str, Any]) -> list[dict[str, Any]]:
        nonlocal injected
        event["added_in_v1_5"] = {"anything": [1, 2]}
        if event["type"] == "accepted":
            event["limits"]["max_future_bytes"] = 7
        if event["type"] == "summary" and event.get("usage"):
            event["usage"]["cached_tokens"] = 3
        out = [event]
        if event["type"] in ("accepted", "document"):
            injected += 1
            out.append({"type": "future.event", "job_id": event["job_id"], "seq": 0, "level": 9})
            out.append(
                {
                    "type": "progress",
                    "job_id": event["job_id"],
                    "seq": 0,
                    "stage": "telepathy",
                    "done": 1,
                    "elapsed_s": 0.1,
                }
            )
        return out

    async with Relay(live_server, rewrite) as relay:
        client = SummarizerClient(relay.url)
        events = [
            e async for e in client.summarize_bytes(TEXT.encode(), filename="h.txt", options=StartOptions())
        ]
    assert injected == 2
    assert events[-1].type == "summary" and events[-1].text
    assert "future.event" not in {e.type for e in events}
    assert "telepathy" not in {getattr(e, "stage", None) for e in events}
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert last_received(events) == len(TEXT.encode())
    assert events[-1].text == "".join(e.text for e in events if e.type == "summary.token")


async def test_drop_before_accepted_reattaches_to_the_same_job(live_server: str) -> None:
    """Old code: 'closed before the job was accepted' (and the first job was orphaned)."""

    def rewrite(number: int, event: dict[str, Any]) -> list[dict[str, Any]] | None:
        if number == 1 and event["type"] == "accepted":
            return None  # the job exists, but the client never hears of it
        return [event]

    async with Relay(live_server, rewrite) as relay:
        client = SummarizerClient(relay.url, backoff_base_s=0.01)
        events = [e async for e in client.summarize_bytes(TEXT.encode(), filename="h.txt")]
    starts = [m for m in relay.sent if m["type"] == "start"]
    assert relay.connections == 2 and len(starts) == 2
    assert starts[0]["job_id"] == starts[1]["job_id"] == events[0].job_id  # one job, re-attached
    assert events[0].type == "accepted" and events[-1].type == "summary"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert last_received(events) == len(TEXT.encode())


def test_unknown_error_code_still_ends_the_job() -> None:
    from summarizer.client import parse_event

    event = parse_event(
        json.dumps(
            {"type": "error", "job_id": "a" * 32, "seq": 9, "code": "quota_exceeded", "message": "m", "x": 1}
        )
    )
    assert event is not None and event.type == "error"
    assert event.code == "internal_error" and event.message == "m" and event.seq == 9
    assert parse_event('{"type": "progress", "stage": "new", "done": 1, "elapsed_s": 0}') is None
    with pytest.raises(ValueError):
        parse_event('{"type": "ack", "received": "lots"}')  # a known field with a wrong value stays an error
