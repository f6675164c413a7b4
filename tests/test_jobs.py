"""The job core without a transport: lifecycle races, lifetimes, upload flow control, the event log.

Tests go through the public job API (``JobManager.create/get``, ``Job.feed_text``,
``end``, ``fail``, ``events``) so that each can run against the old job core too.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from summarizer.errors import ErrorCode, SummarizerError
from summarizer.ingest.types import IngestOptions
from summarizer.jobs import Job, JobLimits, JobManager, JobSpec, JobState
from summarizer.pipeline import PipelineConfig
from summarizer.protocol import Start
from summarizer.storage import Storage

from .fakes import EchoModel

TEXT = (
    "The committee met on Tuesday to review the budget. Costs rose by ten percent over the year. "
    "Members agreed to cut travel and to delay the new building. The chair thanked the staff.\n\n"
)


def make_spec(*, window: int = 64 * 1024, **start: Any) -> JobSpec:
    return JobSpec(
        start=Start(filename="minutes.txt", media_type="text/plain", **start),
        model="echo",
        models=["echo"],
        pipeline=PipelineConfig(model_name="echo"),
        ingest=IngestOptions(chunk_size=300, chunk_overlap=20),
        limits=JobLimits(
            max_document_bytes=10**8,
            max_frame_bytes=1 << 20,
            ack_window_bytes=window,
            max_text_chars=10**8,
            max_concurrency=16,
        ),
    )


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Storage(tmp_path / "data")
    yield s
    s.close()


def manager(store: Any, **kwargs: Any) -> JobManager:
    model = EchoModel(words=4)
    return JobManager(store, lambda name: model, **kwargs)


def kind_of(event: Any) -> str:
    return str(event.type)


def parsed(event: Any) -> Any:
    """The protocol model of an event from ``Job.events`` (new: a stored event; old: the model)."""
    return getattr(event, "event", event)


async def collect(job: Job, after: int = 0, timeout: float = 20.0) -> list[Any]:
    async def run() -> list[Any]:
        return [e async for e in job.events(after)]

    return await asyncio.wait_for(run(), timeout)


async def finish(mgr: JobManager, text: str = TEXT * 6) -> Job:
    job = mgr.create(make_spec())
    job.run()
    await job.feed_text(text)
    await job.end(hashlib.sha256(text.encode()).hexdigest())
    await collect(job)
    for _ in range(100):  # the terminal state is recorded once its event is durable
        if mgr.storage.job(job.id).state == "done":
            break
        await asyncio.sleep(0.02)
    return job


async def test_end_does_not_revive_a_job_that_failed_during_the_checksum(store: Any) -> None:
    mgr = manager(store)
    job = mgr.create(make_spec())
    job.run()
    await job.feed_text(TEXT)
    ending = asyncio.create_task(job.end(hashlib.sha256(TEXT.encode()).hexdigest()))
    await asyncio.sleep(0)  # end() now waits for the SHA-256 thread
    job.fail(SummarizerError("the client broke a limit", code=ErrorCode.TOO_MANY_MESSAGES))
    await ending
    await asyncio.sleep(0.1)
    assert job.state is JobState.FAILED
    assert job.finished and mgr.running() == 0
    events = await collect(job)
    assert [kind_of(e) for e in events if kind_of(e) in ("summary", "error", "cancelled")] == ["error"]


async def test_finished_jobs_leave_memory(store: Any) -> None:
    mgr = manager(store)
    jobs = [await finish(mgr) for _ in range(5)]
    await asyncio.sleep(0.1)
    assert all(job.finished for job in jobs)
    assert mgr._jobs == {}  # nobody attached: released, still in the store
    again = mgr.get(jobs[0].id)
    assert again is not None and again.state is JobState.DONE
    events = await collect(again)
    assert [parsed(e).seq for e in events] == list(range(1, len(events) + 1))
    assert kind_of(events[-1]) == "summary"


async def test_a_job_past_its_ttl_cannot_be_resumed(store: Any) -> None:
    mgr = manager(store, ttl_s=0.3)
    job = await finish(mgr)  # finished with no connection attached
    await asyncio.sleep(0.5)
    mgr.purge_expired()
    assert mgr.get(job.id) is None
    assert store.job(job.id) is None


async def test_reopening_a_finished_job_reads_none_of_its_upload(store: Any) -> None:
    mgr = manager(store)
    job = await finish(mgr, TEXT * 40)
    await asyncio.sleep(0.1)
    mgr.release(job)
    reads: list[str] = []
    original = store.upload_records

    def counting(job_id: str, *args: Any) -> Any:
        reads.append(job_id)
        return original(job_id, *args)

    store.upload_records = counting
    again = mgr.get(job.id)
    assert again is not None
    events = await collect(again)
    assert kind_of(events[-1]) == "summary"
    assert reads == []


async def test_ack_waits_for_ingestion_and_the_upload_queue_is_bounded(store: Any) -> None:
    window = 4096
    mgr = manager(store)
    job = mgr.create(make_spec(window=window))
    piece = "x" * 1000 + "\n\n"
    # Nobody consumes the upload yet (the job is not running): nothing may be acknowledged,
    # and the server may not queue much more than one window for a client that ignores it.
    fed = 0

    async def feed_many() -> None:
        nonlocal fed
        for _ in range(50):
            await job.feed_text(piece)
            fed += 1

    feeding = asyncio.create_task(feed_many())
    await asyncio.sleep(0.5)
    assert not feeding.done(), "50 KB were accepted with nothing consuming them"
    assert fed * len(piece) <= 2 * window
    events = await collect_now(job)
    assert not [e for e in events if kind_of(e) == "ack"], "acknowledged before ingestion took it"
    job.run()
    await asyncio.wait_for(feeding, 10)
    text = piece * 50
    await job.end(hashlib.sha256(text.encode()).hexdigest())
    events = await collect(job)
    acks = [parsed(e) for e in events if kind_of(e) == "ack"]
    assert acks and acks[-1].received == len(text.encode())
    assert kind_of(events[-1]) == "summary"


async def collect_now(job: Job) -> list[Any]:
    """The events readable right now (without waiting for more)."""
    out: list[Any] = []

    async def run() -> None:
        async for e in job.events(0):
            out.append(e)

    task = asyncio.create_task(run())
    await asyncio.sleep(0.2)
    task.cancel()
    return out


async def test_ack_never_counts_bytes_ingestion_has_not_taken(store: Any) -> None:
    mgr = manager(store)
    job = mgr.create(make_spec(window=2048))
    taken = 0
    original = job.upload.stream

    async def counting() -> AsyncIterator[Any]:
        nonlocal taken
        async for record in original():
            taken += len(record.encode())
            yield record

    job.upload.stream = counting  # type: ignore[method-assign]
    seen: list[tuple[int, int]] = []
    real_emit = job.emit

    def watch(event: Any) -> Any:
        if event.type == "ack":
            seen.append((event.received, taken))
        return real_emit(event)

    job.emit = watch  # type: ignore[method-assign]
    job.upload._on_ack = watch
    job.run()
    text = ""
    for i in range(40):
        piece = f"Piece {i}. " * 30 + "\n\n"
        text += piece
        await job.feed_text(piece)
    await job.end(None)
    await collect(job)
    assert seen and all(received <= consumed for received, consumed in seen)
    assert seen[-1][0] == len(text.encode())


async def test_event_log_writes_in_batches_off_the_loop_and_keeps_a_bounded_tail(store: Any) -> None:
    mgr = manager(store, tail_events=64)
    job = await finish(mgr, TEXT * 160)
    assert job.last_seq > 4 * 64
    assert mgr.writer.batches < job.last_seq / 2  # many events per transaction
    assert job.log.in_memory() <= 64
    assert store.last_seq(job.id) == job.last_seq
    # A reader from seq 0 pages through the store, far behind the tail.
    events = await collect(job)
    assert [e.seq for e in events] == list(range(1, job.last_seq + 1))


async def test_supervised_background_task_survives_an_exception(store: Any, caplog: Any) -> None:
    mgr = manager(store, idle_s=0.2)
    calls = 0
    real = mgr.purge_expired

    def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk hiccup")
        return real()

    mgr.purge_expired = flaky  # type: ignore[method-assign]
    mgr.start(period_s=0.05)
    try:
        await asyncio.sleep(0.3)
        job = mgr.create(make_spec())
        job.run()
        await job.feed_text(TEXT)
        deadline = time.monotonic() + 5
        while not job.finished and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert calls > 2
        assert job.state is JobState.FAILED
        events = await collect(job)
        assert parsed(events[-1]).code == "idle_timeout"
        assert "disk hiccup" in caplog.text
    finally:
        await mgr.shutdown()


async def test_an_upload_nobody_feeds_is_abandoned_even_with_a_reader_attached(store: Any) -> None:
    mgr = manager(store)
    job = mgr.create(make_spec())
    job.run()
    await job.feed_text(TEXT)
    job.readers += 1  # a second window follows the job; the uploader vanished
    await asyncio.sleep(0.4)
    assert mgr.expire_abandoned(0.2) == 1
    await asyncio.sleep(0.1)
    assert job.state is JobState.FAILED and mgr.running() == 0
    events = await collect(job)
    assert parsed(events[-1]).code == "idle_timeout"


async def test_a_cancel_in_the_same_loop_turn_as_the_start_still_ends_the_job(store: Any) -> None:
    # The job's task is cancelled before its first step, so its body (and its
    # CancelledError handler) never runs: the job must still end with `cancelled`.
    mgr = manager(store)
    job = mgr.create(make_spec())
    job.run()
    job.cancel()
    events = await collect(job, timeout=5.0)
    assert [kind_of(e) for e in events][-1:] == ["cancelled"]
    assert job.finished and job.state is JobState.CANCELLED
