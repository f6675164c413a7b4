"""A full disk is not silent data loss: a real SQLite that is really full (``PRAGMA
max_page_count``, so SQLite answers SQLITE_FULL "database or disk is full"), no mocks.

Old code: the event writer logged the failed commit and delivered the events anyway, so
the job "finished" with a summary whose events the store never had.

The last test needs a store that refuses even the one small ``storage_error`` event, which
a real full SQLite does only by chance (a page may still have room for it): there the
refusal (SQLite's own exception) is injected at the store's ``append_events``.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from summarizer.jobs import JobManager
from summarizer.storage import Storage

from .fakes import EchoModel
from .test_jobs import TEXT, collect, make_spec


def fill_up(store: Any, extra_pages: int) -> None:
    """Let the database grow by ``extra_pages`` pages more: then a transaction that needs one fails."""
    with store._lock:
        pages = store.db.execute("PRAGMA page_count").fetchone()[0] + extra_pages
        assert store.db.execute(f"PRAGMA max_page_count = {pages}").fetchone()[0] == pages


def make_room(store: Any) -> None:
    """The operator freed disk space."""
    with store._lock:
        store.db.execute("PRAGMA max_page_count = 1073741823")


async def run_text(mgr: JobManager, text: str) -> Any:
    job = mgr.create(make_spec())
    job.run()
    for i in range(0, len(text), 400):
        await job.feed_text(text[i : i + 400])
    await job.end(hashlib.sha256(text.encode()).hexdigest())
    return job


async def test_a_full_database_fails_the_job_with_storage_error_and_no_reader_sees_a_gap(
    tmp_path: Path,
) -> None:
    store = Storage(tmp_path / "data")
    # Each map call waits 0.2 s: the map of 40-odd chunks outlasts the moment the disk fills.
    mgr = JobManager(store, lambda name: EchoModel(words=12, delay_s=0.2))
    try:
        job = mgr.create(make_spec())
        follower = asyncio.create_task(collect(job, timeout=60))
        await asyncio.sleep(0.05)  # the follower has 'accepted'
        job.run()
        text = TEXT * 60  # far more events than the free room in the database's pages
        for i in range(0, len(text), 400):
            await job.feed_text(text[i : i + 400])
        await job.end(hashlib.sha256(text.encode()).hexdigest())
        # The disk fills mid-map: once the first chunk summary is stored, not one page more.
        async with asyncio.timeout(30):
            while not any(row.type == "chunk.summary" for row in store.events(job.job_id)):
                await asyncio.sleep(0.01)
        fill_up(store, extra_pages=0)
        events = await follower
        # A reader that dropped half-way and resumes from the last seq it had.
        half = events[len(events) // 2].seq
        resumed = await collect(job, after=half)
        await job.wait()

        # The job ended with the specific code, in-band, as its terminal event.
        last = events[-1].event
        assert last.type == "error" and last.code == "storage_error" and last.retryable, last
        assert job.state.value == "failed"
        # Every seq exactly once, no gap, for the follower and for the resuming reader.
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert [e.seq for e in resumed] == list(range(half + 1, len(events) + 1))
        assert [e.body for e in resumed] == [e.body for e in events[half:]]
        # Nothing was delivered as if it were stored: every event a reader got is in the
        # store, byte for byte (the terminal error may be the one sent from memory).
        stored = {row.seq: row.body for row in store.events(job.job_id)}
        delivered = {e.seq: e.body for e in events}
        unstored = set(delivered) - set(stored)
        assert unstored <= {events[-1].seq}, sorted(unstored)
        assert all(stored[seq] == body for seq, body in delivered.items() if seq in stored)
        assert set(stored) <= set(delivered)
        assert not any(e.type == "summary" for e in events)
        assert any(e.type == "chunk.summary" for e in events)  # it failed mid-map, not at once
        if not unstored:  # the usual case: the one small error event fitted
            await asyncio.sleep(0.1)  # the job records its final state, then leaves memory
            reopened = mgr.get(job.job_id)
            assert reopened is not None and reopened.state.value == "failed"
            replay = await collect(reopened, after=half)
            assert [e.body for e in replay] == [e.body for e in events[half:]]

        # The server keeps serving: once there is room again, another job completes.
        make_room(store)
        other = await run_text(mgr, TEXT * 4)
        done = await collect(other)
        assert done[-1].type == "summary"
        assert [e.seq for e in done] == list(range(1, len(done) + 1))
        assert [row.seq for row in store.events(other.job_id)] == [e.seq for e in done]
    finally:
        await mgr.shutdown()
        store.close()


async def test_a_storage_error_that_cannot_be_stored_either_is_delivered_from_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store refuses every event from some point on, even the job's terminal
    ``storage_error``: that one event is still delivered (from memory), so readers learn the
    job ended; the events before it are the stored ones, every ``seq`` once, no gap."""
    store = Storage(tmp_path / "data")
    mgr = JobManager(store, lambda name: EchoModel(words=12, delay_s=0.01))
    refused: list[int] = []
    real = store.append_events

    def full(rows: Any) -> None:
        if broken.is_set():
            refused.extend(row.seq for row in rows)
            raise sqlite3.OperationalError("database or disk is full")
        real(rows)

    broken = threading.Event()
    monkeypatch.setattr(store, "append_events", full)
    try:
        job = mgr.create(make_spec())
        follower = asyncio.create_task(collect(job, timeout=60))
        job.run()
        text = TEXT * 20
        for i in range(0, len(text), 400):
            await job.feed_text(text[i : i + 400])
        await job.end(hashlib.sha256(text.encode()).hexdigest())
        for _ in range(500):  # mid-map: some chunk summaries are stored
            if any(row.type == "chunk.summary" for row in store.events(job.job_id)):
                break
            await asyncio.sleep(0.01)
        broken.set()  # from now on nothing can be stored
        events = await follower
        await asyncio.wait_for(job.wait(), 10)

        last = events[-1].event
        assert last.type == "error" and last.code == "storage_error" and last.retryable, last
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert refused and last.seq in refused  # the store refused the error event too ...
        stored = [row.seq for row in store.events(job.job_id)]
        assert stored == list(range(1, last.seq)), (stored[-3:], last.seq)  # ... and kept all before it
        assert job.state.value == "failed"
        # A reader resuming just before the end gets the same end, from memory.
        again = await collect(job, after=last.seq - 2)
        assert [e.body for e in again] == [e.body for e in events[-2:]]
        assert not any(e.type == "summary" for e in events)
    finally:
        broken.clear()
        await mgr.shutdown()
        store.close()
