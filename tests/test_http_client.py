"""``SummarizerClient.summarize_file(..., transport="http")``: the same events as over the WebSocket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from summarizer.cli import running_server
from summarizer.client import SummarizerClient
from summarizer.http_client import http_base_url
from summarizer.protocol import StartOptions
from summarizer.settings import Settings

from .conftest import SAMPLES
from .fakes import EchoModel
from .proxy import CuttableProxy

pytestmark = pytest.mark.e2e

PDF = SAMPLES / "documents" / "short-history-of-summarization.pdf"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    models = {"slow": EchoModel(words=4, delay_s=0.1)}
    with running_server(Settings(chunk_size=600, chunk_overlap=50, concurrency=1), models=models) as u:
        yield u


def test_http_base_url() -> None:
    assert http_base_url("ws://127.0.0.1:8000/ws") == "http://127.0.0.1:8000"
    assert http_base_url("wss://example.org/ws") == "https://example.org"
    assert http_base_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"


async def collect(client: SummarizerClient, **kwargs: Any) -> list[Any]:
    return [event async for event in client.summarize_file(PDF, **kwargs)]


async def test_same_events_over_http_and_websocket(url: str) -> None:
    over_ws = await collect(SummarizerClient(url))
    client = SummarizerClient(url)
    over_http = await collect(client, transport="http")
    assert [e.seq for e in over_http] == list(range(1, len(over_http) + 1))
    assert client.job_id == over_http[0].job_id
    assert over_http[-1].type == over_ws[-1].type == "summary"
    assert over_http[-1].text == over_ws[-1].text
    # Acks depend on how the bytes were sliced, progress snapshots and token
    # coalescing on timing, and where `document` falls among the chunks' events on
    # when parsing ends; every other event is the same, each chunk's events come in
    # the same order, and the streamed text is the same.
    timing = {"ack", "progress", "chunk.token", "summary.token"}
    kinds = sorted(e.type for e in over_http if e.type not in timing)
    assert kinds == sorted(e.type for e in over_ws if e.type not in timing)

    def per_chunk(events: list[Any]) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for e in events:
            if e.type.startswith("chunk.") and e.type != "chunk.token":
                out.setdefault(e.index, []).append(e.type)
        return out

    assert per_chunk(over_http) == per_chunk(over_ws)

    def streamed(events: list[Any]) -> dict[object, str]:
        text: dict[object, str] = {}
        for e in events:
            if e.type in ("chunk.token", "summary.token"):
                key = getattr(e, "index", "summary")
                text[key] = text.get(key, "") + e.text
        return text

    assert streamed(over_http) == streamed(over_ws)


async def test_refusal_is_one_error_event(url: str) -> None:
    events = await collect(SummarizerClient(url), options=StartOptions(model="nope"), transport="http")
    assert len(events) == 1 and events[0].type == "error" and events[0].code == "unknown_model"


async def test_token_over_http() -> None:
    with running_server(Settings(token="t0ken")) as u:
        denied = await collect(SummarizerClient(u), transport="http")
        assert denied[-1].type == "error" and denied[-1].code == "unauthorized"
        allowed = await collect(SummarizerClient(u, token="t0ken"), transport="http")
        assert allowed[-1].type == "summary"


async def test_dropped_event_stream_resumes_exactly_once(url: str) -> None:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    async with CuttableProxy(port) as proxy:
        client = SummarizerClient(proxy.url(), backoff_base_s=0.05, backoff_max_s=0.2)
        events = []
        async for event in client.summarize_file(PDF, options=StartOptions(model="slow"), transport="http"):
            events.append(event)
            if event.type == "chunk.summary" and proxy.cuts < 2:
                proxy.cut()
        assert proxy.cuts == 2
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].type == "summary"


async def test_cancel_over_http(url: str) -> None:
    client = SummarizerClient(url)
    events = []
    async for event in client.summarize_file(PDF, options=StartOptions(model="slow"), transport="http"):
        events.append(event)
        if event.type == "chunk.started":
            await client.cancel()
    assert events[-1].type == "cancelled"
