"""The server's jobs: creation within limits, lookup, recovery, and every job's lifetime.

:class:`JobManager` holds in memory only the jobs that are running, or finished
with a connection still following them; a finished job is released as soon as
nobody follows it (it stays in the store, re-openable read only, until it
expires). Its background tasks (abandoned uploads, expiry) are supervised: an
exception is logged and the task carries on at its next period.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel

from ..errors import ErrorCode, LimitExceeded, StorageError, StoreUnavailable, SummarizerError
from ..protocol import TERMINAL_TYPES, Accepted, Error, parse_server
from ..recovery import Recovery
from ..store import JobRecord, JobStore
from .eventlog import REPLAY_PAGE, EventWriter
from .job import FINISHED_STATES, Job, JobSpec, JobState, new_job_id
from .lease import RemoteJob, is_shared

__all__ = ["JobManager"]

log = logging.getLogger(__name__)

_STATE_OF = {"summary": JobState.DONE, "cancelled": JobState.CANCELLED, "error": JobState.FAILED}


class JobManager:
    """The server's jobs.

    Args:
        store: Durable state (:class:`~summarizer.store.JobStore`).
        load_model: Returns the chat model for a model name (raises ``ModelError``).
        max_jobs: Unfinished jobs at once; more is ``server_busy`` (close 1013).
        ttl_s: Seconds a finished job stays available for ``resume``.
        idle_s: Seconds an upload may wait for its client before it fails with
            ``idle_timeout`` (see :meth:`expire_abandoned`).
        tail_events: Events each live job keeps in memory for its readers.
        clock: Monotonic clock in seconds.
        owner: This replica's id in job leases (``SUMMARIZER_REPLICA_ID``).
        lease_s: Seconds a job's lease lasts (renewed by
            :class:`~summarizer.jobs.lease.LeaseKeeper`); ``None``: ``ttl_s`` (one process).
    """

    def __init__(
        self,
        store: JobStore,
        load_model: Callable[[str], BaseChatModel],
        *,
        max_jobs: int = 32,
        ttl_s: float = 86_400.0,
        idle_s: float = 300.0,
        tail_events: int = 512,
        clock: Callable[[], float] = time.monotonic,
        owner: str = "local",
        lease_s: float | None = None,
    ) -> None:
        self.owner = owner
        self.lease_s = ttl_s if lease_s is None else lease_s
        self.store = store
        self._load_model = load_model
        self.max_jobs = max_jobs
        self.ttl_s = ttl_s
        self.idle_s = idle_s
        self.tail_events = tail_events
        self._clock = clock
        self._jobs: dict[str, Job] = {}
        self.writer = EventWriter(store)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def storage(self) -> JobStore:
        """Alias of :attr:`store`."""
        return self.store

    def running(self) -> int:
        """Jobs not yet finished (each holds a slot of ``max_jobs``)."""
        return sum(1 for job in self._jobs.values() if not job.finished)

    def held(self) -> list[Job]:
        """The jobs this process holds in memory (it runs the unfinished ones)."""
        return list(self._jobs.values())

    def forget(self, job: Job) -> None:
        """Drop ``job`` from memory without touching the store (another replica owns it now)."""
        if self._jobs.get(job.job_id) is job:
            del self._jobs[job.job_id]

    def in_memory(self) -> int:
        """Jobs held in memory (running, or finished and followed)."""
        return len(self._jobs)

    # -- creating and finding ------------------------------------------------------------------

    def _job(self, job_id: str, spec: JobSpec, **kwargs: Any) -> Job:
        return Job(
            job_id,
            spec,
            store=self.store,
            writer=self.writer,
            on_finish=self._finished,
            tail_events=self.tail_events,
            clock=self._clock,
            owner=self.owner if is_shared(self.store) else None,  # fences its upload writes
            **kwargs,
        )

    def create(self, spec: JobSpec) -> Job:
        """Create, persist and announce (``accepted``) a new job; the caller runs it.

        The job's id is ``spec.start.job_id`` when the client chose one, else random.

        Raises:
            LimitExceeded: ``server_busy`` (close 1013) if ``max_jobs`` are running;
                ``job_exists`` if the client's ``job_id`` is taken (use :meth:`open`).
            ModelError: The job's model cannot be loaded.
            StorageError: ``storage_error``: the store could not keep the new job.
        """
        if self.running() >= self.max_jobs:
            raise LimitExceeded.server_busy(
                f"The server is running {self.max_jobs} jobs, its limit; try again in a minute."
            )
        model = self._load_model(spec.model)
        reduce_model = self._load_model(spec.reduce_model) if spec.reduce_model else None
        job_id = spec.start.job_id or new_job_id()
        stored = dataclasses.replace(spec, start=spec.start.model_copy(update={"token": None}))
        try:
            self.store.create_job(job_id, stored.to_json(), JobState.UPLOADING.value)
            self.store.acquire_lease(job_id, self.owner, self.lease_s)
        except KeyError:
            raise SummarizerError(
                f"A job {job_id} exists already; send 'resume' to follow it.",
                code=ErrorCode.UNEXPECTED_MESSAGE,
            ) from None
        except Exception as exc:  # a full disk, a locked database
            log.exception("could not create job %s", job_id)
            raise StorageError(f"The server could not store a new job ({exc}); try again later.") from exc
        job = self._job(job_id, stored, model=model, reduce_model=reduce_model)
        self._jobs[job_id] = job
        job.emit(
            Accepted(
                limits=spec.limits.to_message(),
                model=spec.model,
                models=spec.models,
                chunk_size=spec.ingest.chunk_size,
                chunk_overlap=spec.ingest.chunk_overlap,
                concurrency=spec.pipeline.concurrency,
            )
        )
        return job

    def open(self, spec: JobSpec) -> tuple[Job, bool]:
        """The job named by ``spec.start.job_id`` if it exists, else a new one (idempotent ``start``).

        Returns:
            ``(job, created)``.

        Raises:
            SummarizerError: As :meth:`create`; ``unknown_job`` when the id names
                an unfinished job this process does not hold.
        """
        if spec.start.job_id is not None:
            existing = self.get(spec.start.job_id)
            if existing is not None:
                return existing, False
            if self.store.job(spec.start.job_id) is not None:
                raise SummarizerError(
                    f"Job {spec.start.job_id} exists but cannot be followed now.", code=ErrorCode.UNKNOWN_JOB
                )
        return self.create(spec), True

    def get(self, job_id: str) -> Job | None:
        """The job, live or re-opened read only from the store; ``None`` if unknown or expired.

        A re-opened finished job holds nothing in memory but its id and spec:
        its events are paged from the store by its readers.

        Raises:
            StoreUnavailable: The store could not be read (Redis down): the job's
                fate is unknown here, so it is neither reported missing nor touched.
        """
        job = self._jobs.get(job_id)
        if job is not None and job.moved:
            self.forget(job)  # another replica runs it now: follow it through the store
            job = None
        if job is not None:
            return job
        try:
            return self._reopen(job_id)
        except SummarizerError:
            raise
        except Exception as exc:  # Redis down or unreachable, a locked database
            log.warning("could not read job %s from the store: %s", job_id, exc)
            raise StoreUnavailable(
                f"The server cannot read job {job_id} from its job store right now ({exc}). "
                "The job may still be running: resume again in a moment."
            ) from exc

    def _reopen(self, job_id: str) -> Job | None:
        record = self.store.job(job_id)
        if record is not None and record.state not in FINISHED_STATES and is_shared(self.store):
            return RemoteJob(record, self.store)  # running on another replica (or about to be claimed)
        if record is None or record.state not in FINISHED_STATES:
            return None
        if record.updated < time.time() - self.ttl_s:
            return None  # expired; the next purge deletes it
        return Job(
            record.id,
            JobSpec.from_json(record.spec),
            store=self.store,
            writer=None,
            model=None,
            state=JobState(record.state),
            last_seq=self.store.last_seq(record.id),
            upload_stored=(record.received, record.messages),
            clock=self._clock,
        )

    async def get_for_resume(self, job_id: str, *, wait_s: float | None = None) -> Job | None:
        """:meth:`get`, except that a job still uploading on another replica is taken over here
        (:meth:`take_over_upload`) so that its upload continues on this connection."""
        job = self.get(job_id)
        if isinstance(job, RemoteJob) and job.state is JobState.UPLOADING:
            try:
                return await self.take_over_upload(job, wait_s=wait_s)
            except SummarizerError:
                raise
            except Exception as exc:  # the store went away during the handoff
                raise StoreUnavailable(
                    f"The server lost its job store while taking over job {job_id} ({exc}). "
                    "Resume again in a moment."
                ) from exc
        return job

    async def take_over_upload(self, remote: RemoteJob, *, wait_s: float | None = None) -> Job:
        """Ask the owner of an uploading job for it and run it here once its lease is ours.

        The owner hands the lease over when its keeper sees the request (see
        :mod:`summarizer.jobs.lease`); a dead owner's lease is taken when it lapses.
        The job is restored from the store as in :meth:`recover` (every committed
        upload record is kept; the client continues from ``resumed.received``).

        Args:
            remote: The job as followed from here.
            wait_s: Seconds to wait for the lease (default: ``lease_s`` + 2 s).

        Returns:
            The job, now run by this replica; or ``remote`` if the lease did not come
            in time (upload data is then refused with a retryable 1013).
        """
        store = self.store
        request = getattr(store, "request_handoff", None)
        if request is None or self.running() >= self.max_jobs or remote.spec.password_withheld:
            return remote  # a PDF password is never stored: the job cannot continue elsewhere
        wait = self.lease_s + 2.0 if wait_s is None else wait_s
        job_id = remote.job_id
        await asyncio.to_thread(request, job_id, self.owner, wait)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            held = self._jobs.get(job_id)
            if held is not None:  # claimed meanwhile by this replica's keeper
                return held
            owner = await asyncio.to_thread(store.lease_owner, job_id)  # type: ignore[attr-defined]
            mine = owner == self.owner or (
                owner is None
                and await asyncio.to_thread(store.acquire_lease, job_id, self.owner, self.lease_s)
            )
            if mine:
                record = await asyncio.to_thread(store.job, job_id)
                if record is None or record.state in FINISHED_STATES:
                    store.release_lease(job_id, self.owner)
                    return remote
                job = self._restore(record)
                if job is None or job.finished:
                    return remote if job is None else job
                job.run()
                log.info("replica %s took over uploading job %s", self.owner, job_id)
                return job
            await asyncio.sleep(0.05)
        return remote

    # -- lifetimes ---------------------------------------------------------------------------------

    def _finished(self, job: Job) -> None:
        self.release(job)

    def release(self, job: Job) -> None:
        """Drop a finished job nobody follows from memory (it stays in the store until it expires)."""
        if job.finished and job.readers <= 0 and self._jobs.get(job.job_id) is job:
            del self._jobs[job.job_id]
            self.store.close_upload(job.job_id)
            self.store.release_lease(job.job_id, self.owner)

    def expire_abandoned(self, idle_s: float | None = None) -> int:
        """Fail uploads that waited for their client longer than ``idle_s`` (default :attr:`idle_s`).

        An upload waits for its client when everything received was consumed
        and nothing new came: a silent socket, or a dropped one never resumed.
        Whether readers are attached does not matter: readers cannot upload.
        The job ends with ``idle_timeout`` and frees its slot.

        Returns:
            How many jobs were failed.
        """
        limit = self.idle_s if idle_s is None else idle_s
        stale = [
            job
            for job in self._jobs.values()
            if job.state is JobState.UPLOADING and job.upload.idle_for() >= limit
        ]
        for job in stale:
            job.fail(
                SummarizerError(
                    f"The upload was abandoned: no data from the client for {limit:g} s.",
                    code=ErrorCode.IDLE_TIMEOUT,
                )
            )
        return len(stale)

    def purge_expired(self) -> int:
        """Delete finished jobs older than the TTL from the store (and memory); returns how many."""
        ids = self.store.purge(FINISHED_STATES, time.time() - self.ttl_s)
        for job_id in ids:
            job = self._jobs.get(job_id)
            if job is not None and job.finished:
                del self._jobs[job_id]
        return len(ids)

    # -- recovery ----------------------------------------------------------------------------------

    def recover(self) -> list[Job]:
        """Rebuild and restart every unfinished job found in the store (server start).

        A job whose model cannot be loaded any more fails with that error; one
        that needs a PDF password (never stored) fails with ``password_required``.

        Returns:
            The recovered jobs (already running).
        """
        recovered = []
        for record in self.store.jobs_in_states((JobState.UPLOADING.value, JobState.PROCESSING.value)):
            if record.id in self._jobs or not self.store.acquire_lease(record.id, self.owner, self.lease_s):
                continue  # running here already, or owned by another replica
            try:
                job = self._restore(record)
            except Exception:
                log.exception("could not recover job %s", record.id)
                continue
            if job is None:
                continue
            if job.finished:
                continue
            if job.spec.password_withheld:
                job.fail(
                    SummarizerError(
                        "The server restarted, and it never stores PDF passwords: start the job again "
                        "with options.password.",
                        code=ErrorCode.PASSWORD_REQUIRED,
                        retryable=True,
                    )
                )
                continue
            if job._model is None:
                continue
            job.run()
            recovered.append(job)
            log.info("recovered job %s (%s, %d events)", job.job_id, job.state.value, job.last_seq)
        return recovered

    def _restore(self, record: JobRecord) -> Job | None:
        spec = JobSpec.from_json(record.spec)
        plan = Recovery()
        last_seq = 0
        terminal: str | None = None
        while True:
            rows = self.store.events(record.id, last_seq, REPLAY_PAGE)
            if not rows:
                break
            for row in rows:
                plan.observe(parse_server(row.body))
                last_seq = row.seq
                if row.type in TERMINAL_TYPES:
                    terminal = row.type
        if terminal is not None:  # killed after the terminal event, before its state was recorded
            self.store.set_state(record.id, _STATE_OF[terminal].value)
            self.store.release_lease(record.id, self.owner)
            return None
        stored = self.store.truncate_upload(record.id)
        first = next(iter(self.store.upload_records(record.id)), None)
        error: SummarizerError | None = None
        model = reduce_model = None
        try:
            model = self._load_model(spec.model)
            reduce_model = self._load_model(spec.reduce_model) if spec.reduce_model else None
        except SummarizerError as exc:
            error = exc
        job = self._job(
            record.id,
            spec,
            model=model,
            reduce_model=reduce_model,
            state=JobState(record.state),
            last_seq=last_seq,
            upload_stored=stored,
            upload_kind=None if first is None else type(first),
            recovery=plan,
        )
        self._jobs[record.id] = job
        if error is not None:
            job.emit(Error(code=error.code, message=error.message, retryable=error.retryable))
        return job

    # -- background tasks and shutdown ----------------------------------------------------------

    def start(self, period_s: float) -> None:
        """Start the supervised background tasks (abandoned uploads, expiry) every ``period_s``."""
        self._tasks.append(
            asyncio.create_task(self._supervise("expire-abandoned", self.expire_abandoned, period_s))
        )
        self._tasks.append(asyncio.create_task(self._supervise("purge-expired", self._purge, period_s)))

    def _purge(self) -> None:
        removed = self.purge_expired()
        if removed:
            log.info("removed %d expired jobs", removed)

    async def _supervise(self, name: str, step: Callable[[], object], period_s: float) -> None:
        """Run ``step`` every ``period_s``; an exception is logged and the task goes on."""
        while True:
            await asyncio.sleep(period_s)
            try:
                step()
            except Exception:
                log.exception("background task %s failed; it continues", name)

    async def shutdown(self) -> None:
        """Stop background tasks and every running job's task (resumable after a restart),
        then commit every pending event."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for job in list(self._jobs.values()):
            await job.stop()
        await asyncio.to_thread(self.writer.close)
        for job in list(self._jobs.values()):  # hand the jobs back at once (another replica claims them)
            with contextlib.suppress(Exception):
                self.store.release_lease(job.job_id, self.owner)
