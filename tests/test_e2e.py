"""End to end against a real uvicorn on 127.0.0.1 (random port), with the Python client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from summarizer.client import SummarizerClient
from summarizer.errors import TransportError
from summarizer.protocol import StartOptions

from .conftest import SAMPLES, corpus_file

pytestmark = pytest.mark.e2e


async def run(client: SummarizerClient, path: Any, **options: Any) -> list[Any]:
    return [e async for e in client.summarize_file(path, options=StartOptions(**options))]


async def test_tracemonkey_pdf(live_server: str) -> None:
    events = await run(
        SummarizerClient(live_server, frame_bytes=64 * 1024), corpus_file("pdf", "tracemonkey.pdf")
    )
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    (document,) = [e for e in events if e.type == "document"]
    assert document.pages == 14
    summaries = {e.index: e for e in events if e.type == "chunk.summary"}
    assert sorted(summaries) == list(range(document.chunks))
    assert all(s.text.strip() for s in summaries.values())
    # The last chunk ends where the skipped back matter begins (tracemonkey: the
    # acknowledgements start part-way down page 13, the references follow), else on page 14.
    last_page = summaries[document.chunks - 1].pages[1]
    if document.skipped:
        back = min(r.first for r in document.skipped if r.first > 1)
        assert back - 1 <= last_page <= back
    else:
        assert last_page == 14
    final = events[-1]
    assert final.type == "summary" and len(final.text.split()) > 50
    assert final.calls["map"] == document.chunks
    # The ack window was honoured: acks arrived for every frame.
    acks = [e for e in events if e.type == "ack"]
    assert acks[-1].received == corpus_file("pdf", "tracemonkey.pdf").stat().st_size


async def test_bad_file_does_not_disturb_a_concurrent_job(live_server: str) -> None:
    client = SummarizerClient(live_server)
    good, bad = await asyncio.gather(
        run(client, corpus_file("pdf", "Seige_of_Vicksburg_Sample_OCR.pdf")),
        run(SummarizerClient(live_server), corpus_file("bad", "not_a_pdf.pdf")),
    )
    assert good[-1].type == "summary"
    assert bad[-1].type == "error" and bad[-1].code == "not_a_pdf"


async def test_text_stream_is_summarized_before_upload_ends(live_server: str) -> None:
    text = (SAMPLES / "documents" / "zen-of-python.md").read_text()
    release = asyncio.Event()

    async def pieces() -> Any:
        for _ in range(40):
            yield text + "\n\n"
        await release.wait()
        yield text

    client = SummarizerClient(live_server)
    seen: list[str] = []
    async for event in client.summarize_text(
        pieces(), filename="zen.md", options=StartOptions(chunk_size=800, chunk_overlap=0)
    ):
        seen.append(event.type)
        if event.type == "chunk.summary":
            release.set()
    assert seen[-1] == "summary"


async def test_raw_protocol_errors_over_a_real_socket(live_server: str) -> None:
    async with websockets.connect(live_server) as ws:
        await ws.send("{oops")
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and error["code"] == "bad_json"
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1002


async def test_oversized_frame_is_closed_by_the_server(live_server: str) -> None:
    with pytest.raises(websockets.ConnectionClosed) as info:
        async with websockets.connect(live_server, max_size=None) as ws:
            await ws.send(json.dumps({"type": "start", "protocol": 1, "filename": "a.txt"}))
            accepted = json.loads(await ws.recv())
            await ws.send(b"x" * (accepted["limits"]["max_frame_bytes"] + 1))
            while True:
                await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009


async def test_unreachable_server_is_a_transport_error() -> None:
    client = SummarizerClient("ws://127.0.0.1:9/ws", open_timeout=2)
    with pytest.raises(TransportError, match="Cannot connect"):
        await run(client, SAMPLES / "documents" / "zen-of-python.md")
