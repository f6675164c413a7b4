"""The store contract: every :class:`~summarizer.store.JobStore` implementation passes these.

Today the SQLite store; the shared (Redis) store of the next step joins the
``store`` fixture's parameters and must pass the same tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from summarizer.store import EventRow, JobStore, SqliteStore


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    s = SqliteStore(tmp_path / "data")
    yield s
    s.close()


def test_it_is_a_job_store(store: JobStore) -> None:
    assert isinstance(store, JobStore)


def test_jobs_and_states(store: JobStore) -> None:
    store.create_job("a" * 32, {"x": 1}, "uploading")
    store.create_job("b" * 32, {"x": 2}, "processing")
    with pytest.raises(KeyError):
        store.create_job("a" * 32, {}, "uploading")
    record = store.job("a" * 32)
    assert record is not None and record.spec == {"x": 1} and record.state == "uploading"
    store.set_state("a" * 32, "done")
    assert [r.id for r in store.jobs_in_states(("uploading", "processing"))] == ["b" * 32]
    assert store.job("c" * 32) is None


def test_event_batches_replay_by_seq_in_pages(store: JobStore) -> None:
    job = "a" * 32
    store.create_job(job, {}, "uploading")
    store.append_events([EventRow(job, seq, "ack", f'{{"seq":{seq}}}') for seq in range(1, 501)])
    assert store.last_seq(job) == 500
    page = store.events(job, 100, 50)
    assert [r.seq for r in page] == list(range(101, 151))
    assert [r.seq for r in store.events(job, 490)] == list(range(491, 501))
    with pytest.raises(KeyError):  # a repeated seq is refused, and the batch with it
        store.append_events([EventRow(job, 501, "ack", "{}"), EventRow(job, 500, "ack", "{}")])
    assert store.last_seq(job) == 500


def test_concurrent_batches_from_threads(store: JobStore) -> None:
    jobs = [f"{i:032x}" for i in range(4)]
    for job in jobs:
        store.create_job(job, {}, "processing")

    def write(job: str) -> None:
        for start in range(1, 201, 20):
            store.append_events([EventRow(job, s, "ack", "{}") for s in range(start, start + 20)])

    threads = [threading.Thread(target=write, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(store.last_seq(job) == 200 for job in jobs)


def test_upload_records_survive_and_a_torn_one_is_dropped(store: JobStore, tmp_path: Path) -> None:
    job = "a" * 32
    store.create_job(job, {}, "uploading")
    store.append_upload(job, b"\x00\x01binary")
    store.append_upload(job, b"more")
    assert list(store.upload_records(job)) == [b"\x00\x01binary", b"more"]
    assert list(store.upload_records(job, 1)) == [b"more"]
    store.close_upload(job)
    if isinstance(store, SqliteStore):  # tear the last record as a crash mid-write would
        path = store.uploads / f"{job}.data"
        path.write_bytes(path.read_bytes()[:-2])
    assert store.truncate_upload(job) == (len(b"\x00\x01binary"), 1)
    store.append_upload(job, "text after")
    assert list(store.upload_records(job)) == [b"\x00\x01binary", "text after"]


def test_purge_deletes_old_finished_jobs_with_everything(store: JobStore) -> None:
    old, new = "a" * 32, "b" * 32
    for job in (old, new):
        store.create_job(job, {}, "done")
        store.append_events([EventRow(job, 1, "summary", "{}")])
        store.append_upload(job, b"x")
    cutoff = time.time() + 1
    store.set_state(new, "processing")
    assert store.purge(("done",), cutoff) == [old]
    assert store.job(old) is None and store.events(old) == [] and list(store.upload_records(old)) == []
    assert store.job(new) is not None


def test_leases_grant_one_owner_at_a_time(store: JobStore) -> None:
    job = "a" * 32
    assert store.acquire_lease(job, "replica-1", 0.3)
    assert not store.acquire_lease(job, "replica-2", 0.3)
    assert store.renew_lease(job, "replica-1", 0.3)
    time.sleep(0.4)  # lapsed: another replica may claim it
    assert store.acquire_lease(job, "replica-2", 5)
    assert not store.renew_lease(job, "replica-1", 5)
    store.release_lease(job, "replica-2")
    assert store.acquire_lease(job, "replica-1", 5)


def test_a_short_upload_write_is_completed_and_the_record_reads_back_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``write`` may write less than asked (a signal, a disk filling up): the rest follows."""
    import os

    store = SqliteStore(tmp_path)
    store.create_job("j", {}, "uploading")
    real = os.write
    short: list[int] = []

    def write(fd: int, data: bytes) -> int:
        written = real(fd, bytes(data)[: max(1, len(data) // 3)])
        short.append(written)
        return written

    monkeypatch.setattr(os, "write", write)
    payloads = [bytes(range(256)) * 400, b"x" * 7]
    for payload in payloads:
        store.append_upload("j", payload)
    store.close_upload("j")
    assert len(short) > 2 * len(payloads), "no write was short"
    assert list(store.upload_records("j")) == payloads


def _commit_for(store: SqliteStore, seconds: float, pause_s: float, first: int = 1) -> tuple[int, int]:
    """Commit one event at a time for ``seconds``; returns (last seq, largest WAL file in bytes)."""
    wal = store.root / "jobs.sqlite3-wal"
    largest, seq, began = 0, first - 1, time.monotonic()
    while time.monotonic() - began < seconds:
        seq += 1
        store.append_events([EventRow("w", seq, "progress", '{"x": "' + "y" * 200 + '"}')])
        largest = max(largest, wal.stat().st_size)
        time.sleep(pause_s)
    return seq, largest


def test_the_wal_is_checkpointed_off_the_commit_path_and_stays_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits never run SQLite's automatic checkpoint (its fsync waited for upload writeback:
    400 ms commits). The checkpointer thread copies the WAL back; when commits keep coming
    during its checkpoints, the WAL cannot start over, and past its limit a checkpoint that
    waits for the writer truncates it."""
    import summarizer.store.sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "CHECKPOINT_INTERVAL_S", 0.05)
    monkeypatch.setattr(sqlite_store, "WAL_LIMIT_PAGES", 256)  # 1 MiB
    store = SqliteStore(tmp_path)
    try:
        assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
        store.create_job("w", {}, "processing")
        # About 1,000 commits a second (a busy server), each at least one 4 KiB WAL page:
        # unchecked, the WAL would pass 4 MiB within the second.
        seq, largest = _commit_for(store, 1.0, 0.0005)
        assert store._checkpointer.checkpoints > 0 and store._checkpointer.restarts > 0
        assert largest < 3 * 1024 * 1024, (seq, largest)
        assert [row.seq for row in store.events("w")] == list(range(1, seq + 1))
    finally:
        store.close()
    assert not (tmp_path / "jobs.sqlite3-wal").exists()  # the last close folds the WAL in
