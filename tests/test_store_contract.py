"""One contract for every :class:`~summarizer.store.JobStore`: SQLite and Redis behave the same.

Each test runs against both stores (``store`` is parametrized); the Redis one
uses a real ``redis-server`` (``tests/redis_fixtures.py``) and is skipped when it
is not installed.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from summarizer.store import EventRow, JobStore, SqliteStore

from .redis_fixtures import RedisServer, redis_server  # noqa: F401  (fixture)

Tear = Callable[[str, bytes], None]


def _tear_sqlite(store: SqliteStore) -> Tear:
    def tear(job_id: str, payload: bytes) -> None:
        store.close_upload(job_id)
        # Killed mid-record: 3 bytes of its payload written, 2 of its 5-byte index entry.
        with (store.uploads / f"{job_id}.data").open("ab") as f:
            f.write(payload[:3])
        with (store.uploads / f"{job_id}.idx").open("ab") as f:
            f.write(b"B" + (1000).to_bytes(4, "big")[:1])

    return tear


def _tear_redis(server: RedisServer, prefix: str) -> Tear:
    """A client that dies between MULTI and EXEC while appending (what a killed replica does)."""

    def tear(job_id: str, payload: bytes) -> None:
        key = f"{prefix}{{up}}:{job_id}".encode()
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            cmd = [b"RPUSH", key, b"B" + payload]
            wire = b"*1\r\n$5\r\nMULTI\r\n" + b"*%d\r\n" % len(cmd)
            wire += b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in cmd)
            s.sendall(wire)
            s.recv(64)

    return tear


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[JobStore, Tear]]:
    if request.param == "sqlite":
        sqlite = SqliteStore(tmp_path / "data")
        yield sqlite, _tear_sqlite(sqlite)
        sqlite.close()
        return
    from summarizer.store.redis import RedisStore

    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    redis_store = RedisStore(server.url, prefix=prefix)
    yield redis_store, _tear_redis(server, prefix)
    redis_store.close()


@pytest.fixture
def store(backend: tuple[JobStore, Tear]) -> JobStore:
    return backend[0]


def _rows(job_id: str, seqs: range) -> list[EventRow]:
    return [EventRow(job_id, s, "progress", f'{{"seq":{s},"type":"progress"}}') for s in seqs]


def test_create_get_state(store: JobStore) -> None:
    assert isinstance(store, JobStore)
    assert store.job("nope") is None
    store.create_job("a", {"k": [1, "x"]}, "uploading")
    with pytest.raises(KeyError):
        store.create_job("a", {}, "uploading")
    rec = store.job("a")
    assert rec is not None and rec.id == "a" and rec.state == "uploading" and rec.spec == {"k": [1, "x"]}
    assert rec.created == rec.updated and abs(rec.created - time.time()) < 60
    time.sleep(0.01)
    store.set_state("a", "processing")
    after = store.job("a")
    assert after is not None and after.state == "processing" and after.updated > rec.updated
    store.set_state("unknown", "done")  # no effect, no error
    assert store.job("unknown") is None
    store.create_job("b", {}, "done")
    store.create_job("c", {}, "processing")
    assert [r.id for r in store.jobs_in_states(("uploading", "processing"))] == ["a", "c"]
    assert [r.id for r in store.jobs_in_states(("done",))] == ["b"]


def test_events_replay_after_seq_exactly_once_in_order(store: JobStore) -> None:
    store.create_job("j", {}, "processing")
    store.create_job("k", {}, "processing")
    assert store.last_seq("j") == 0 and store.events("j") == []
    store.append_events(_rows("j", range(1, 4)) + _rows("k", range(1, 3)))
    store.append_events(_rows("j", range(4, 2600)))
    assert store.last_seq("j") == 2599 and store.last_seq("k") == 2
    every = store.events("j")
    assert [r.seq for r in every] == list(range(1, 2600))
    assert every[0] == EventRow("j", 1, "progress", '{"seq":1,"type":"progress"}')
    assert [r.seq for r in store.events("j", 10, 5)] == [11, 12, 13, 14, 15]
    pages: list[int] = []
    last = 0
    while rows := store.events("j", last, 700):
        pages += [r.seq for r in rows]
        last = rows[-1].seq
    assert pages == list(range(1, 2600))
    assert store.events("j", 2599) == []
    assert [r.seq for r in store.events("k")] == [1, 2]


def test_batch_is_atomic(store: JobStore) -> None:
    store.create_job("j", {}, "processing")
    store.create_job("k", {}, "processing")
    store.append_events(_rows("j", range(1, 3)))
    with pytest.raises(Exception):  # noqa: B017  (each store raises its own kind)
        store.append_events(_rows("k", range(1, 3)) + _rows("j", range(2, 4)))  # j seq 2 again
    assert [r.seq for r in store.events("j")] == [1, 2]
    assert store.events("k") == []
    store.append_events(_rows("k", range(1, 3)) + _rows("j", range(3, 4)))
    assert store.last_seq("j") == 3 and store.last_seq("k") == 2


def test_upload_records_and_torn_record(backend: tuple[JobStore, Tear]) -> None:
    store, tear = backend
    store.create_job("u", {}, "uploading")
    assert list(store.upload_records("u")) == [] and store.truncate_upload("u") == (0, 0)
    records: list[bytes | str] = [
        b"\x00\x01" * 10,
        "héllo \ud800 wörld",
        b"",
        *[bytes([i]) * 50 for i in range(150)],
    ]
    for record in records:
        store.append_upload("u", record)
    assert list(store.upload_records("u")) == records
    assert list(store.upload_records("u", 100)) == records[100:]
    size = sum(len(r.encode("utf-8", "surrogatepass") if isinstance(r, str) else r) for r in records)
    tear("u", b"partial-record-payload")
    assert list(store.upload_records("u")) == records
    assert store.truncate_upload("u") == (size, len(records))
    store.append_upload("u", b"after")
    assert list(store.upload_records("u"))[-1] == b"after"
    assert store.truncate_upload("u") == (size + 5, len(records) + 1)
    store.close_upload("u")
    assert len(list(store.upload_records("u"))) == len(records) + 1


def test_append_uploads_keeps_order_and_counts_each_record(backend: tuple[JobStore, Tear]) -> None:
    """Several records in one call (frames a transport read at once) are the same records, in
    the same order, as one call each; a torn tail after them is dropped as after single appends."""
    store, tear = backend
    store.create_job("m", {}, "uploading")
    store.append_upload("m", b"first")
    frames = [bytes([i]) * (1000 + i) for i in range(40)]
    store.append_uploads("m", frames)
    store.append_uploads("m", [b"last"])
    expected = [b"first", *frames, b"last"]
    assert list(store.upload_records("m")) == expected
    assert list(store.upload_records("m", 30)) == expected[30:]
    tear("m", b"torn")
    assert store.truncate_upload("m") == (sum(map(len, expected)), len(expected))
    assert list(store.upload_records("m")) == expected


def test_upload_path_holds_the_payloads_back_to_back_or_is_none(store: JobStore) -> None:
    """A store that keeps the upload in a local file names it, and its first bytes are every
    appended payload in order (what a PDF's workers read); a shared store has no such file."""
    from summarizer.jobs.lease import is_shared

    store.create_job("f", {}, "uploading")
    frames = [bytes([i]) * (4096 + i) for i in range(1, 9)]
    store.append_upload("f", frames[0])
    store.append_uploads("f", frames[1:])
    path = store.upload_path("f")
    if is_shared(store):
        assert path is None
        return
    assert path is not None
    expected = b"".join(frames)
    assert path.read_bytes()[: len(expected)] == expected


def test_append_uploads_is_fenced_as_a_whole(store: JobStore) -> None:
    """A replica without the lease appends none of a batch (a shared store); SQLite has no fence."""
    from summarizer.jobs.lease import is_shared
    from summarizer.store import LeaseLost

    store.create_job("g", {}, "uploading")
    assert store.acquire_lease("g", "r2", 30)
    if not is_shared(store):
        pytest.skip("one process: no fence")
    with pytest.raises(LeaseLost, match="r1"):
        store.append_uploads("g", [b"a", b"b", b"c"], owner="r1")
    assert list(store.upload_records("g")) == [] and store.truncate_upload("g") == (0, 0)
    store.append_uploads("g", [b"a", b"b"], owner="r2")
    assert store.truncate_upload("g") == (2, 2)


def test_purge(store: JobStore) -> None:
    for job_id, state in [("old", "done"), ("run", "processing"), ("new", "failed")]:
        store.create_job(job_id, {}, state)
        store.append_events(_rows(job_id, range(1, 3)))
        store.append_upload(job_id, b"data")
    cut = time.time() + 0.001
    time.sleep(0.01)
    store.set_state("new", "failed")
    assert store.purge(("done", "failed", "cancelled"), cut) == ["old"]
    assert store.job("old") is None and store.events("old") == [] and list(store.upload_records("old")) == []
    assert store.last_seq("run") == 2 and store.job("new") is not None
    assert [r.id for r in store.jobs_in_states(("done", "failed", "processing"))] == ["run", "new"]
    store.create_job("old", {}, "uploading")  # the id is free again, with an empty log and upload
    assert store.events("old") == [] and list(store.upload_records("old")) == []


def test_leases(store: JobStore) -> None:
    assert store.acquire_lease("j", "r1", 30)
    assert not store.acquire_lease("j", "r2", 30)
    assert store.acquire_lease("j", "r1", 30)  # the owner again: renewed
    assert store.renew_lease("j", "r1", 30)
    assert not store.renew_lease("j", "r2", 30)
    store.release_lease("j", "r2")  # not r2's: no effect
    assert not store.acquire_lease("j", "r2", 30)
    store.release_lease("j", "r1")
    assert store.acquire_lease("j", "r2", 0.3)
    assert store.acquire_lease("other", "r1", 30)  # leases are per job
    time.sleep(1.0)  # r2's lease lapses
    assert store.acquire_lease("j", "r3", 30)
    assert not store.renew_lease("j", "r2", 30)  # r2 lapsed and r3 took it


def test_upload_writes_are_fenced_by_the_lease_on_a_shared_store(store: JobStore) -> None:
    """A replica that lost a job's lease cannot append to its upload (a zombie after a long
    pause): nothing is written, ``LeaseLost`` says so. One process (SQLite) has no fence."""
    from summarizer.jobs.lease import is_shared
    from summarizer.store import LeaseLost

    store.create_job("f", {}, "uploading")
    assert store.acquire_lease("f", "r1", 0.3)
    store.append_upload("f", b"one", owner="r1")
    time.sleep(1.0)  # r1's lease lapses (it was paused), r2 takes the job over
    assert store.acquire_lease("f", "r2", 30)
    if is_shared(store):
        with pytest.raises(LeaseLost, match="r1"):
            store.append_upload("f", b"zombie", owner="r1")
    else:
        store.append_upload("f", b"zombie", owner="r1")
    store.append_upload("f", b"two", owner="r2")
    expected = [b"one", b"two"] if is_shared(store) else [b"one", b"zombie", b"two"]
    assert list(store.upload_records("f")) == expected
    assert store.truncate_upload("f") == (sum(map(len, expected)), len(expected))
