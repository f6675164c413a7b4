"""The server on Redis: configuration, /healthz, and Redis down at start or mid-run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from summarizer.cli import main
from summarizer.server import create_app
from summarizer.settings import Settings

from .redis_fixtures import REDIS_SERVER, RedisServer, free_port

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test alone (it gets stopped and started)."""
    pytest.importorskip("redis")
    server = RedisServer(free_port(), tmp_path / "redis")
    server.dir.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_serve_exits_non_zero_with_a_clear_message_when_redis_is_down(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    status = main(["serve", "--redis-url", url, "--port", "0"])
    err = capsys.readouterr().err
    assert status != 0
    assert url in err and "unreachable" in err and "did not start" in err


def test_settings_read_redis_replica_and_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUMMARIZER_REDIS_URL", "redis://10.0.0.1:6379/2")
    monkeypatch.setenv("SUMMARIZER_TOKENS_PER_MINUTE", "90000")
    s = Settings()
    assert s.redis_url == "redis://10.0.0.1:6379/2" and s.lease_s == 15.0 and s.tokens_per_minute == 90000
    assert s.resolved_replica_id().endswith(f"-{__import__('os').getpid()}")
    monkeypatch.setenv("SUMMARIZER_REPLICA_ID", "r7")
    assert Settings().resolved_replica_id() == "r7"


def test_healthz_reports_replica_and_answers_503_while_redis_is_down(own_redis: RedisServer) -> None:
    settings = Settings(redis_url=own_redis.url, replica_id="replica-a", lease_s=3)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        ok = client.get("/healthz")
        assert ok.status_code == 200
        assert ok.json() == {"status": "ok", "replica": "replica-a", "jobs_running": 0}
        own_redis.stop()
        down = client.get("/healthz")
        assert down.status_code == 503
        assert down.json()["status"] == "unavailable" and down.json()["replica"] == "replica-a"
        own_redis.start()
        assert client.get("/healthz").status_code == 200


def test_sqlite_healthz_is_unchanged_but_names_the_replica(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, replica_id="solo"))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/healthz").json() == {"status": "ok", "replica": "solo", "jobs_running": 0}


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_redis_stopped_and_started_mid_job_the_job_pauses_and_completes(
    own_redis: RedisServer, tmp_path: Path, how: str
) -> None:
    """Redis goes away mid-map (SIGTERM: AOF flushed; SIGKILL: AOF ``everysec``, restarted on the
    same port and directory) and comes back: nothing acknowledged is lost, every seq arrives
    exactly once, the job completes, and the log in Redis holds every event with no gap (the
    upload too, byte for byte)."""
    import asyncio

    from summarizer.cli import running_server
    from summarizer.client import SummarizerClient
    from summarizer.store.redis import RedisStore

    from .conftest import corpus_file
    from .fakes import EchoModel

    model = EchoModel(words=4, delay_s=0.05)
    settings = Settings(model="echo", data_dir=tmp_path / "unused", redis_url=own_redis.url, concurrency=2)
    events = []
    outage = False
    with running_server(settings, models={"echo": model}) as url:
        client = SummarizerClient(url, reconnect_attempts=100, backoff_base_s=0.1, backoff_max_s=1.0)
        async for event in client.summarize_file(corpus_file("pdf", "tracemonkey.pdf")):
            events.append(event)
            if not outage and sum(e.type == "chunk.summary" for e in events) == 3:
                outage = True
                await asyncio.to_thread(own_redis.stop, how == "sigkill")
                await asyncio.sleep(2.0)
                await asyncio.to_thread(own_redis.start)
    assert outage
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].type == "summary", events[-1]
    chunks = next(e.chunks for e in events if e.type == "document")
    print("OUTAGE", how, {"events": len(events), "chunks": chunks, "model_calls": len(model.prompts)})
    store = RedisStore(own_redis.url)
    try:
        stored = store.events(events[0].job_id)
        assert [r.seq for r in stored] == [e.seq for e in events]
        record = store.job(events[0].job_id)
        assert record is not None and record.state == "done"
        pdf = corpus_file("pdf", "tracemonkey.pdf").read_bytes()
        assert b"".join(r for r in store.upload_records(record.id) if isinstance(r, bytes)) == pdf
        assert record.received == len(pdf)
    finally:
        store.close()


async def test_events_redis_lost_are_rewritten_from_memory_no_gap(own_redis: RedisServer) -> None:
    """Redis acknowledged events 4 and 5 and then lost them (killed before its AOF was written:
    simulated by rebuilding the stream with 1-3 only). The next commit finds the gap, re-writes
    4 and 5 from the log's memory, then commits 6: the stored log is 1..6, bodies intact."""
    from summarizer.jobs.eventlog import EventLog, EventWriter
    from summarizer.protocol import Progress
    from summarizer.store.redis import RedisStore

    from .test_jobs import make_spec

    store = RedisStore(own_redis.url)
    writer = EventWriter(store)
    try:
        store.create_job("g1", make_spec().to_json(), "processing")
        log = EventLog("g1", store, writer)
        for i in range(5):
            log.append(Progress(stage="map", done=i, total=10, elapsed_s=0.0))
        await asyncio.wait_for(log.flushed(), 30)
        before = store.events("g1")
        assert [r.seq for r in before] == [1, 2, 3, 4, 5]
        key = store.event_key("g1")
        store.r.delete(key)  # what a Redis restart that lost the last writes leaves behind
        for row in before[:3]:
            store.r.xadd(key, {"t": row.type, "b": row.body}, id=f"{row.seq}-0")
        log.append(Progress(stage="map", done=5, total=10, elapsed_s=0.0))
        await asyncio.wait_for(log.flushed(), 30)
        after = store.events("g1")
        assert [r.seq for r in after] == [1, 2, 3, 4, 5, 6]
        assert after[:5] == before
        assert writer.refilled == 2
    finally:
        writer.close()
        store.close()


async def test_a_follower_replica_replays_cancels_and_refuses_upload_data(own_redis: RedisServer) -> None:
    """RemoteJob (what a non-owner replica serves): replay + tail from the shared log, cancel as a
    request the owner polls, upload data refused with a retryable 1013."""
    import asyncio

    from summarizer.errors import LimitExceeded
    from summarizer.jobs.lease import RemoteJob
    from summarizer.store import EventRow
    from summarizer.store.redis import RedisStore

    from .test_jobs import make_spec

    store = RedisStore(own_redis.url)
    try:
        spec = make_spec().to_json()
        store.create_job("j1", spec, "uploading")
        store.append_events([EventRow("j1", 1, "accepted", '{"type":"accepted","seq":1}')])
        record = store.job("j1")
        assert record is not None
        remote = RemoteJob(record, store, poll_s=0.05)
        seen: list[int] = []

        async def follow() -> None:
            async for stored in remote.events(0):
                seen.append(stored.seq)

        task = asyncio.create_task(follow())
        await asyncio.sleep(0.3)
        assert seen == [1]
        store.append_events([EventRow("j1", 2, "progress", '{"type":"progress","seq":2}')])
        store.append_events([EventRow("j1", 3, "cancelled", '{"type":"cancelled","seq":3}')])
        await asyncio.wait_for(task, 10)
        assert seen == [1, 2, 3] and remote.finished
        with pytest.raises(LimitExceeded) as refused:
            await remote.feed_bytes(b"x")
        assert refused.value.code == "server_busy" and refused.value.retryable
        assert int(refused.value.close_code) == 1013
        store.create_job("j2", record.spec, "processing")
        record2 = store.job("j2")
        assert record2 is not None
        RemoteJob(record2, store).cancel()
        assert store.cancel_requested(["j1", "j2"]) == ["j2"]
    finally:
        store.close()


async def test_a_resume_while_redis_is_down_is_refused_in_band_and_the_client_resumes_later(
    own_redis: RedisServer,
) -> None:
    """Redis down: a ``resume`` of a job this replica does not hold gets ``store_unavailable``
    (``job_id: null``, retryable, close 1013) instead of a dropped socket; HTTP answers 503;
    the Python client backs off and resumes the job once Redis is back."""
    import asyncio
    import json

    import websockets

    from summarizer.cli import running_server
    from summarizer.client import SummarizerClient

    settings = Settings(redis_url=own_redis.url, replica_id="replica-a", lease_s=3, token_coalesce_s=0)
    with running_server(settings) as url:
        client = SummarizerClient(url, reconnect_attempts=20)
        done = [e async for e in client.summarize_text(["The council met. It agreed on the budget. " * 20])]
        assert done[-1].type == "summary"
        job_id = done[-1].job_id
        assert job_id is not None
        await asyncio.sleep(0.5)  # finished jobs leave memory: a resume must read the store
        own_redis.stop()
        try:
            async with websockets.connect(url) as ws:
                await ws.send(json.dumps({"type": "resume", "job_id": job_id, "last_seq": 0}))
                refused = json.loads(await ws.recv())
                assert refused["type"] == "error" and refused["code"] == "store_unavailable"
                assert refused["job_id"] is None and refused["retryable"] is True
                with pytest.raises(websockets.ConnectionClosed):
                    await ws.recv()
                assert ws.close_code == 1013
            http = url.replace("ws://", "http://").removesuffix("/ws")
            import httpx

            async with httpx.AsyncClient() as h:
                answer = await h.get(f"{http}/v1/jobs/{job_id}")
                posted = await h.post(
                    f"{http}/v1/jobs", files={"file": ("a.txt", b"Some text to summarize.", "text/plain")}
                )
            assert answer.status_code == 503 and answer.json()["code"] == "store_unavailable"
            assert posted.status_code == 503 and posted.json()["code"] == "storage_error"
            assert posted.headers["retry-after"]

            async def follow() -> list[str]:
                return [e.type async for e in client.resume(job_id)]

            following = asyncio.create_task(follow())
            await asyncio.sleep(1.5)
            assert not following.done(), "the client gave up (or ended) while the store was down"
        finally:
            own_redis.start()
        types = await asyncio.wait_for(following, 60)
        assert types[-1] == "summary" and types.count("summary") == 1


async def test_a_replica_that_lost_the_lease_mid_upload_commits_nothing_more(own_redis: RedisServer) -> None:
    """Fenced upload writes: once another replica holds the job's lease (this one was paused
    past it), this replica's next upload message is refused with ``server_busy`` (retryable,
    close 1013: the client reconnects to the owner) and nothing is appended to the shared upload."""
    from summarizer.errors import LimitExceeded
    from summarizer.jobs import JobManager
    from summarizer.store.redis import RedisStore

    from .fakes import EchoModel
    from .test_jobs import make_spec

    store = RedisStore(own_redis.url)
    mgr = JobManager(store, lambda name: EchoModel(words=4), owner="r1", lease_s=0.3)
    try:
        job = mgr.create(make_spec())
        await job.feed_bytes(b"%PDF-1.7 first frame")
        await asyncio.sleep(1.0)  # no keeper renews it here: the lease lapses
        assert store.acquire_lease(job.id, "r2", 30)
        with pytest.raises(LimitExceeded) as refused:
            await job.feed_bytes(b"a frame the zombie still got")
        assert refused.value.code == "server_busy" and refused.value.retryable
        assert int(refused.value.close_code) == 1013
        assert list(store.upload_records(job.id)) == [b"%PDF-1.7 first frame"]
        assert job.moved and not job.finished  # no terminal event: the job goes on elsewhere
    finally:
        store.close()


def _steal_lease(url: str, job_id: str, owner: str = "r2") -> None:
    """What another replica does once this one was paused past its lease: take the job."""
    from summarizer.store.redis import RedisStore

    store = RedisStore(url)
    try:
        store.r.set(store._k("lease", job_id), owner.encode(), px=60_000)
    finally:
        store.close()


def _stored_types(url: str, job_id: str) -> list[str]:
    from summarizer.store.redis import RedisStore

    store = RedisStore(url)
    try:
        return [row.type for row in store.events(job_id)]
    finally:
        store.close()


async def _until_closed(ws: object, timeout_s: float) -> tuple[list[dict[str, object]], int | None]:
    """Messages until the server closes the socket, and its close code (``None``: still open)."""
    import json

    from websockets.exceptions import ConnectionClosed

    received: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                received.append(json.loads(await ws.recv()))  # type: ignore[attr-defined]
    except ConnectionClosed as closed:
        return received, closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        return received, None


@pytest.mark.timeout(120)
async def test_a_replica_that_lost_a_processing_job_closes_its_followers_with_1013(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    """The lease of a job being summarized is taken by another replica (this one was paused past
    it): this replica stops its copy and tells its clients in-band (``server_busy``, retryable,
    close 1013, so that they resume where the job runs now) instead of leaving them waiting for
    events that will never come here; it writes nothing more to the job's shared log."""
    import json

    from websockets.asyncio.client import connect

    from summarizer.cli import running_server
    from summarizer.protocol import End, Start, dump

    from .fakes import EchoModel

    model = EchoModel(words=4, delay_s=0.3)
    settings = Settings(
        model="echo",
        data_dir=tmp_path / "unused",
        redis_url=own_redis.url,
        replica_id="r1",
        lease_s=1.0,
        concurrency=1,
        chunk_size=500,
        chunk_overlap=0,
    )
    text = ("A sentence of the document that goes on for a while. " * 60).encode()
    with running_server(settings, models={"echo": model}) as url:
        async with connect(url, compression=None) as ws:
            await ws.send(dump(Start(filename="a.txt", media_type="text/plain", size=len(text))))
            accepted = json.loads(await ws.recv())
            job_id = str(accepted["job_id"])
            await ws.send(text)
            await ws.send(dump(End()))
            while json.loads(await ws.recv())["type"] != "chunk.summary":
                pass
            await asyncio.to_thread(_steal_lease, own_redis.url, job_id)
            stored_at_steal = await asyncio.to_thread(_stored_types, own_redis.url, job_id)
            received, code = await _until_closed(ws, 10.0)
    assert code == 1013, (code, received[-3:])
    assert received[-1]["type"] == "error" and received[-1]["code"] == "server_busy", received[-1]
    assert received[-1]["retryable"] is True and received[-1]["job_id"] is None  # not one of the job's events
    after = await asyncio.to_thread(_stored_types, own_redis.url, job_id)
    assert "error" not in after and "summary" not in after, after
    # what was already committed stays; at most the events in flight at the steal follow it
    assert after[: len(stored_at_steal)] == stored_at_steal


@pytest.mark.timeout(120)
async def test_a_refused_upload_frame_after_a_lost_lease_does_not_fail_the_job_for_the_new_owner(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    """Mid-upload the lease moves to another replica; this replica refuses the next frame with
    ``server_busy`` and 1013, and does not end the job with an ``error`` event in the shared log:
    the upload is to continue on the new owner."""
    import json

    from websockets.asyncio.client import connect

    from summarizer.cli import running_server
    from summarizer.protocol import Start, dump

    settings = Settings(data_dir=tmp_path / "unused", redis_url=own_redis.url, replica_id="r1", lease_s=1.0)
    with running_server(settings) as url:
        async with connect(url, compression=None) as ws:
            await ws.send(dump(Start(filename="a.txt", media_type="text/plain", size=200_000)))
            job_id = str(json.loads(await ws.recv())["job_id"])
            await ws.send(b"first part of the text. " * 100)
            await asyncio.sleep(0.3)
            await asyncio.to_thread(_steal_lease, own_redis.url, job_id)
            await ws.send(b"second part of the text. " * 100)
            received, code = await _until_closed(ws, 10.0)
    assert code == 1013, (code, received[-3:])
    errors = [m for m in received if m["type"] == "error"]
    assert errors and errors[-1]["code"] == "server_busy" and errors[-1]["job_id"] is None, received
    after = await asyncio.to_thread(_stored_types, own_redis.url, job_id)
    assert "error" not in after, after


async def test_a_job_whose_log_another_replica_writes_stops_here_and_writes_nothing_more(
    own_redis: RedisServer,
) -> None:
    """This replica's next commit finds the job's next ``seq`` already in the shared log (another
    replica took the job while this one was paused, and wrote on): ``LogTaken``. The copy here
    stops without a ``storage_error`` (which would end the job for everyone), its readers get
    ``server_busy`` (close 1013) to resume where the job runs, and the manager follows the job
    through the store from then on."""
    import json

    from summarizer.errors import LimitExceeded
    from summarizer.jobs import JobManager
    from summarizer.jobs.lease import RemoteJob
    from summarizer.protocol import Progress
    from summarizer.store import EventRow
    from summarizer.store.redis import RedisStore

    from .fakes import EchoModel
    from .test_jobs import make_spec

    store = RedisStore(own_redis.url)
    mgr = JobManager(store, lambda name: EchoModel(words=4), owner="r1", lease_s=30)
    try:
        job = mgr.create(make_spec())
        await job.log.flushed()
        last = store.last_seq(job.id)
        # the other replica's events, as it would write them after taking the job
        store.append_events(
            [EventRow(job.id, last + 1, "progress", json.dumps({"type": "progress", "seq": last + 1}))]
        )
        seen: list[int] = []

        async def follow() -> None:
            async for stored in job.events(0):
                seen.append(stored.seq)

        reader = asyncio.create_task(follow())
        job.emit(Progress(stage="extract", done=1, elapsed_s=0.1))  # this copy's seq last + 1
        with pytest.raises(LimitExceeded) as told:
            await asyncio.wait_for(reader, 10)
        assert told.value.code == "server_busy" and int(told.value.close_code) == 1013
        assert seen == list(range(1, last + 1))  # what this copy committed, then nothing of its own
        assert job.moved
        types = [row.type for row in store.events(job.id)]
        assert types.count("progress") == 1 and "error" not in types, types
        assert isinstance(mgr.get(job.id), RemoteJob)
    finally:
        await mgr.shutdown()
        store.close()
