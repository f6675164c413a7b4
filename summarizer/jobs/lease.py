"""Ownership of jobs across replicas: leases kept by heartbeat, takeover, remote followers.

With a shared store (:class:`~summarizer.store.redis.RedisStore`, ``store.shared``)
several replicas serve one service. Each job runs on the one replica holding its
lease (``SUMMARIZER_LEASE_S``):

* :class:`LeaseKeeper` (one task per replica) renews the leases of the jobs this
  replica runs every ``lease_s / 3``; a renewal refused (another replica took the
  job after a pause longer than the lease) stops the local copy at once. Every
  ``claim_every_s`` it calls :meth:`JobManager.recover` — the same recovery path as
  a restart — which claims every unfinished job whose lease is free (its owner
  died or shut down) and resumes it from the shared event log, reusing every
  result already paid for. It also polls the store's cancel requests for the jobs
  it runs, so a ``cancel`` sent to any replica stops the job within
  ``cancel_poll_s``.
* :class:`RemoteJob` is what a replica hands a client that follows a job running
  elsewhere: replay from the shared log, then tail it by polling, until the
  terminal event; ``cancel`` becomes a request in the store.
* **An upload continues on any replica**: a ``resume`` of a job still uploading that
  reaches a replica that does not own it makes that replica ask for the job
  (:meth:`JobManager.take_over_upload`): the owner's keeper sees the request within
  ``cancel_poll_s``, stops its copy before its next await (no upload record is
  committed there afterwards: one feeder at a time) and hands its lease over
  atomically (compare-and-set); the asking replica then restores the job from the
  store, through the same recovery path as a takeover, and the client goes on from
  ``resumed.received``. If the owner is dead the lease lapses first (at most
  ``lease_s``). Only if neither happens in time is upload data there refused with
  ``server_busy`` (close 1013, retryable) and the client reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from ..errors import LimitExceeded
from ..protocol import TERMINAL_TYPES
from ..store import JobRecord, JobStore
from .eventlog import REPLAY_PAGE, StoredEvent
from .job import Job, JobSpec, JobState

if TYPE_CHECKING:
    from .manager import JobManager

__all__ = ["LeaseKeeper", "RemoteJob", "is_shared"]

log = logging.getLogger(__name__)

_STATE_OF = {"summary": JobState.DONE, "cancelled": JobState.CANCELLED, "error": JobState.FAILED}


def is_shared(store: JobStore) -> bool:
    """Whether ``store`` is shared by several replicas (it says so with ``shared = True``)."""
    return bool(getattr(store, "shared", False))


class RemoteJob(Job):
    """A job running on another replica, followed through the shared store (read only).

    Args:
        record: The job's record in the store.
        store: The shared store.
        poll_s: Seconds between polls of the log when no new event is there (default 0.2 s).
    """

    def __init__(self, record: JobRecord, store: JobStore, *, poll_s: float = 0.2) -> None:
        super().__init__(
            record.id,
            JobSpec.from_json(record.spec),
            store=store,
            writer=None,
            model=None,
            state=JobState(record.state),
            last_seq=store.last_seq(record.id),
            upload_stored=(record.received, record.messages),
        )
        self.poll_s = poll_s
        self.moved = True  # it runs elsewhere: nothing is written here, upload data is refused

    async def events(self, after_seq: int = 0) -> AsyncIterator[StoredEvent]:
        """Every event with ``seq > after_seq`` from the shared log, then new ones as they are
        committed (by whichever replica runs the job), until the terminal event.

        Yields:
            Stored events in ``seq`` order, each exactly once; stops if the job is purged.
        """
        next_seq = max(after_seq, 0) + 1
        store = self._store
        while True:
            rows = await asyncio.to_thread(store.events, self.job_id, next_seq - 1, REPLAY_PAGE)
            for row in rows:
                if row.seq != next_seq:
                    continue
                next_seq += 1
                self.log.committed_seq = max(self.log.committed_seq, row.seq)
                yield StoredEvent(row.job_id, row.seq, row.type, row.body)
                if row.type in TERMINAL_TYPES:
                    self.state = _STATE_OF[row.type]
                    return
            if not rows:
                if await asyncio.to_thread(store.job, self.job_id) is None:
                    return
                await asyncio.sleep(self.poll_s)

    def _elsewhere(self) -> LimitExceeded:
        return LimitExceeded.server_busy(
            f"Job {self.job_id} is uploading on another replica; reconnect (through the load balancer) "
            "and resume to continue the upload there."
        )

    async def feed_bytes(self, data: bytes) -> None:
        """Refused: the upload is assembled by the replica that owns the job.

        Raises:
            LimitExceeded: ``server_busy``, retryable, close 1013 (the client reconnects).
        """
        raise self._elsewhere()

    async def feed_frames(self, frames: Sequence[bytes]) -> None:
        """Refused, as :meth:`feed_bytes`.

        Raises:
            LimitExceeded: ``server_busy``, retryable, close 1013.
        """
        raise self._elsewhere()

    async def feed_text(self, text: str) -> None:
        """Refused, as :meth:`feed_bytes`.

        Raises:
            LimitExceeded: ``server_busy``, retryable, close 1013.
        """
        raise self._elsewhere()

    async def end(self, sha256: str | None) -> None:
        """Refused, as :meth:`feed_bytes`.

        Raises:
            LimitExceeded: ``server_busy``, retryable, close 1013.
        """
        raise self._elsewhere()

    def cancel(self) -> None:
        """Ask the owner (whichever replica it is) to cancel the job."""
        request = getattr(self._store, "request_cancel", None)
        if request is not None and not self.finished:
            request(self.job_id)

    def run(self) -> asyncio.Task[None] | None:
        """A remote job is not run here."""
        return None


class LeaseKeeper:
    """This replica's heartbeat: renew its leases, honour cancel requests, claim orphaned jobs.

    Args:
        jobs: This replica's job manager (its ``owner`` and ``lease_s`` are used).
        claim_every_s: Seconds between scans for jobs whose lease lapsed (default 1 s).
        cancel_poll_s: Seconds between polls of cancel requests (default 0.25 s).
    """

    def __init__(
        self,
        jobs: JobManager,
        *,
        claim_every_s: float = 1.0,
        cancel_poll_s: float = 0.25,
    ) -> None:
        self.jobs = jobs
        self.claim_every_s = claim_every_s
        self.cancel_poll_s = cancel_poll_s
        self._task: asyncio.Task[None] | None = None
        self.claimed = 0
        """Jobs this replica took over (for logs and tests)."""
        self.handed_over = 0
        """Uploading jobs this replica handed to another one that asked."""

    def start(self) -> None:
        """Start the heartbeat task."""
        self._task = asyncio.create_task(self._loop(), name="lease-keeper")

    async def stop(self) -> None:
        """Stop the heartbeat task (leases are released by :meth:`JobManager.shutdown`)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        renew_every = self.jobs.lease_s / 3
        next_renew = next_claim = time.monotonic()
        while True:
            now = time.monotonic()
            try:
                if now >= next_renew:
                    next_renew = now + renew_every
                    await self.renew()
                await self.poll_cancels()
                await self.poll_handoffs()
                if now >= next_claim:
                    next_claim = now + self.claim_every_s
                    claimed = self.jobs.recover()
                    self.claimed += len(claimed)
                    for job in claimed:
                        log.info("replica %s took over job %s", self.jobs.owner, job.job_id)
            except Exception:
                log.exception("lease keeper step failed (the store may be down); it continues")
            await asyncio.sleep(self.cancel_poll_s)

    async def renew(self) -> None:
        """Renew the lease of every job this replica runs; stop the ones another replica took."""
        store = self.jobs.store
        for job in self.jobs.held():
            if job.finished:
                continue
            ok = await asyncio.to_thread(store.renew_lease, job.job_id, self.jobs.owner, self.jobs.lease_s)
            if not ok:
                log.warning("lost the lease of job %s to another replica; stopping it here", job.job_id)
                self.jobs.forget(job)
                await job.hand_over()

    async def poll_handoffs(self) -> None:
        """Hand the uploading jobs another replica asked for over to it (module docstring)."""
        requests = getattr(self.jobs.store, "handoff_requests", None)
        uploading = [j for j in self.jobs.held() if j.state is JobState.UPLOADING and not j.finished]
        if requests is None or not uploading:
            return
        wanted = await asyncio.to_thread(requests, [job.job_id for job in uploading])
        for job in uploading:
            requester = wanted.get(job.job_id)
            if requester is None or requester == self.jobs.owner or job.state is not JobState.UPLOADING:
                continue
            await job.hand_over()
            self.jobs.forget(job)
            store = self.jobs.store
            moved = await asyncio.to_thread(
                store.transfer_lease,  # type: ignore[attr-defined]
                job.job_id,
                self.jobs.owner,
                requester,
                self.jobs.lease_s,
            )
            self.handed_over += 1
            log.info(
                "replica %s handed uploading job %s to %s (%s)", self.jobs.owner, job.job_id, requester, moved
            )

    async def poll_cancels(self) -> None:
        """Cancel the jobs here that a client asked, on any replica, to cancel."""
        requested = getattr(self.jobs.store, "cancel_requested", None)
        running = [job for job in self.jobs.held() if not job.finished]
        if requested is None or not running:
            return
        wanted = set(await asyncio.to_thread(requested, [job.job_id for job in running]))
        for job in running:
            if job.job_id in wanted:
                job.cancel()
