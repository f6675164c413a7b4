"""Frames that arrive together: one commit per run, each frame counted and acknowledged as alone.

A real :class:`~summarizer.store.sqlite.SqliteStore` (spied on) under a real
:class:`~summarizer.jobs.upload.Upload`; ingestion is played by a consumer of
:meth:`Upload.stream`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from summarizer.errors import ProtocolError
from summarizer.jobs.upload import Upload
from summarizer.protocol import Ack
from summarizer.store import UploadRecord
from summarizer.store.sqlite import SqliteStore

FRAME = 64 * 1024


class _SpiedStore(SqliteStore):
    """The SQLite store, recording each ``append_uploads`` call and the queue it met."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: list[int] = []
        self.upload: Upload | None = None
        self.queued_after: list[int] = []

    def append_uploads(
        self, job_id: str, records: Sequence[UploadRecord], *, owner: str | None = None
    ) -> None:
        super().append_uploads(job_id, records, owner=owner)
        self.calls.append(len(records))
        if self.upload is not None:  # what the queue will hold once this run is queued
            self.queued_after.append(self.upload._queued_bytes + sum(map(len, records)))  # type: ignore[arg-type]


def _upload(store: _SpiedStore, *, window: int, size: int | None = None) -> tuple[Upload, list[Ack]]:
    store.create_job("j", {}, "uploading")
    acks: list[Ack] = []
    upload = Upload(
        "j",
        store,
        max_document_bytes=1 << 30,
        ack_window_bytes=window,
        declared_size=size,
        on_ack=acks.append,
    )
    store.upload = upload
    return upload, acks


def _frames(n: int) -> list[bytes]:
    return [i.to_bytes(4, "big") * (FRAME // 4) for i in range(n)]


async def test_a_run_of_frames_is_one_commit_and_counts_every_frame(tmp_path: Path) -> None:
    store = _SpiedStore(tmp_path / "db")
    frames = _frames(6)
    upload, acks = _upload(store, window=8 * 1024 * 1024, size=6 * FRAME)
    await upload.feed_many(frames)
    assert store.calls == [6]
    assert (upload.received, upload.messages) == (6 * FRAME, 6)
    assert list(store.upload_records("j")) == frames
    await upload.end(None)
    taken = [record async for record in upload.stream()]
    assert taken == frames
    # Acknowledged as if each frame had come alone: every 256 KiB, and the last byte.
    assert [(a.received, a.messages) for a in acks] == [(4 * FRAME, 4), (6 * FRAME, 6)]
    store.close()


async def test_a_refused_frame_keeps_the_ones_before_it(tmp_path: Path) -> None:
    store = _SpiedStore(tmp_path / "db")
    frames = _frames(4)
    upload, _ = _upload(store, window=8 * 1024 * 1024, size=2 * FRAME + 10)
    with pytest.raises(ProtocolError, match="more than the") as refused:
        await upload.feed_many(frames)
    assert refused.value.code == "size_mismatch"
    assert store.calls == [2] and list(store.upload_records("j")) == frames[:2]
    assert (upload.received, upload.messages) == (2 * FRAME, 2)
    store.close()


async def test_a_run_larger_than_the_window_is_committed_as_room_frees(tmp_path: Path) -> None:
    """The queue bound (the ack window) holds for a run too: it is split into commits that fit."""
    store = _SpiedStore(tmp_path / "db")
    window = 2 * FRAME + FRAME // 2
    frames = _frames(9)
    upload, _ = _upload(store, window=window)
    taken: list[UploadRecord] = []

    async def ingestion() -> None:
        async for record in upload.stream():
            taken.append(record)
            await asyncio.sleep(0.005)  # a slow parser

    consumer = asyncio.create_task(ingestion())
    await asyncio.wait_for(upload.feed_many(frames), 10)
    await upload.end(None)
    await asyncio.wait_for(consumer, 10)
    assert taken == frames and list(store.upload_records("j")) == frames
    assert sum(store.calls) == 9 and max(store.calls) <= 2 and len(store.calls) > 1
    assert max(store.queued_after) <= window
    store.close()
