"""The store interface: what jobs need to survive a restart (and, later, to be shared).

One narrow interface with, today, one implementation (:class:`~summarizer.store.sqlite.SqliteStore`,
embedded, one process). It is shaped for a second one shared by several replicas
(Redis: event logs as Streams, uploads and results shared, jobs owned under leases).

The five things a store holds:

* **jobs and their state**: :meth:`JobStore.create_job`, :meth:`~JobStore.job`,
  :meth:`~JobStore.set_state`, :meth:`~JobStore.jobs_in_states`, :meth:`~JobStore.purge`;
  the id may be chosen by the client (``start.job_id``), so creating is idempotent.
* **event logs**: :meth:`~JobStore.append_events` (a batch, any jobs, one commit),
  :meth:`~JobStore.events` (replay by ``seq``, paged), :meth:`~JobStore.last_seq`.
* **upload bytes**: :meth:`~JobStore.append_upload` (and :meth:`~JobStore.append_uploads`,
  several at once), :meth:`~JobStore.upload_records`,
  :meth:`~JobStore.truncate_upload`, :meth:`~JobStore.close_upload`.
* **results already paid for**: they are the event log itself (``chunk.summary``,
  ``collapse.summary``, ``chunk.failed``); :mod:`summarizer.recovery` reads them
  back by replaying it. A store needs nothing more for them.
* **leases**: which process owns (runs) a job. :meth:`~JobStore.acquire_lease`,
  :meth:`~JobStore.renew_lease`, :meth:`~JobStore.release_lease`. With one
  process they are trivially granted; a shared store grants each job to one
  owner at a time, and a lapsed lease lets another replica claim the job.

Threading contract: every method is blocking and thread-safe. The job core calls
the cheap ones (create, state, lookup, one upload record or one run of them) on the event loop and
the bulk ones (event batches, replay pages, whole uploads) from worker threads.
Secrets (``options.password``) are never handed to a store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["EventGap", "EventRow", "JobRecord", "JobStore", "LeaseLost", "UploadRecord"]


class LeaseLost(RuntimeError):
    """A write fenced by a lease was refused: another replica owns the job now (its lease
    lapsed or was handed over). Nothing was written; the job is no longer this replica's."""

    def __init__(self, job_id: str, owner: str) -> None:
        super().__init__(f"replica {owner} no longer holds the lease of job {job_id}")
        self.job_id = job_id
        self.owner = owner


class EventGap(ValueError):
    """A batch's first ``seq`` of a job is not right after the job's last stored one: the store
    lost events it had acknowledged (Redis killed before its AOF was written). Nothing of the
    batch was added; the writer re-sends the missing events it still holds, then the batch.

    Attributes:
        job_id: The job.
        last_seq: The job's last stored ``seq``.
    """

    def __init__(self, job_id: str, last_seq: int) -> None:
        super().__init__(f"the event log of job {job_id} ends at seq {last_seq}: events were lost")
        self.job_id = job_id
        self.last_seq = last_seq


class LogTaken(ValueError):
    """A batch's ``seq`` of a job is already in the job's log with other events: another
    replica writes that log now (it took the job while this one was paused past its lease).
    Nothing of the batch was added; this replica's copy of the job must stop.

    Attributes:
        job_id: The job.
        seq: The ``seq`` this writer tried to add.
        last_seq: The job's last stored ``seq``.
    """

    def __init__(self, job_id: str, seq: int, last_seq: int) -> None:
        super().__init__(
            f"the event log of job {job_id} already reaches seq {last_seq} (this writer sent {seq}): "
            "another replica writes it"
        )
        self.job_id = job_id
        self.seq = seq
        self.last_seq = last_seq


UploadRecord = bytes | str
"""One upload message: a binary frame's bytes or a ``text`` message's text."""


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job row.

    Attributes:
        id: The job id.
        created: Unix time (seconds) of creation.
        updated: Unix time (seconds) of the last state change.
        state: A :class:`~summarizer.jobs.JobState` value.
        spec: What is needed to rebuild the job (start message, effective options; no secrets).
        received: Upload bytes committed.
        messages: Upload messages committed.
    """

    id: str
    created: float
    updated: float
    state: str
    spec: dict[str, Any]
    received: int = 0
    messages: int = 0


@dataclass(frozen=True, slots=True)
class EventRow:
    """One committed event: its job, ``seq``, ``type`` and JSON text (serialized once).

    Attributes:
        job_id: The job.
        seq: 1, 2, ... without gaps.
        type: The event's ``type`` tag.
        body: The event as its wire JSON text.
    """

    job_id: str
    seq: int
    type: str
    body: str


@runtime_checkable
class JobStore(Protocol):
    """Durable state of jobs; see the module docstring for the contract."""

    # -- jobs ------------------------------------------------------------------------
    def create_job(self, job_id: str, spec: dict[str, Any], state: str) -> None:
        """Insert a new job (with an empty upload).

        Raises:
            KeyError: A job with this id exists already.
        """

    def job(self, job_id: str) -> JobRecord | None:
        """The job, or ``None`` if unknown or purged."""

    def set_state(self, job_id: str, state: str) -> None:
        """Record a state change (updates ``updated``)."""

    def jobs_in_states(self, states: tuple[str, ...]) -> list[JobRecord]:
        """Every job whose state is one of ``states``, oldest first."""

    def purge(self, states: tuple[str, ...], older_than: float) -> list[str]:
        """Delete jobs in ``states`` last updated before ``older_than`` (Unix s), with
        their events and upload; returns their ids."""

    # -- event logs ---------------------------------------------------------------------
    def append_events(self, rows: Sequence[EventRow]) -> None:
        """Commit a batch of events (of any jobs) atomically: all or none.

        Raises:
            KeyError: An event with one of the batch's ``(job_id, seq)`` exists (nothing is stored).
        """

    def events(self, job_id: str, after_seq: int = 0, limit: int | None = None) -> list[EventRow]:
        """The job's events with ``seq > after_seq`` in order, at most ``limit``."""

    def last_seq(self, job_id: str) -> int:
        """The highest committed ``seq`` of the job (0 if none)."""

    # -- uploads --------------------------------------------------------------------------
    def append_upload(self, job_id: str, record: UploadRecord, *, owner: str | None = None) -> None:
        """Append one upload message durably (survives the process being killed).

        Args:
            job_id: The job.
            record: Binary frame or ``text`` piece.
            owner: A shared store appends only while this replica id holds the job's
                lease (a fenced write); ``None`` or a one-process store: no check.

        Raises:
            LeaseLost: ``owner`` does not hold the lease (nothing is appended).
        """

    def append_uploads(
        self, job_id: str, records: Sequence[UploadRecord], *, owner: str | None = None
    ) -> None:
        """Append upload messages durably, in order, as one write where the store can
        (the frames a transport read at once); otherwise as :meth:`append_upload` does.

        Args:
            job_id: The job.
            records: Binary frames or ``text`` pieces (at least one).
            owner: As for :meth:`append_upload`.

        Raises:
            LeaseLost: ``owner`` does not hold the lease (nothing is appended).
        """

    def upload_records(self, job_id: str, start: int = 0) -> Iterator[UploadRecord]:
        """The complete upload records from index ``start``, in order (a torn last one is skipped)."""

    def upload_path(self, job_id: str) -> Path | None:
        """A local file that holds the job's upload payloads back to back, in order, or ``None``.

        Each record's payload is in the file (binary frames as sent, ``text`` as
        UTF-8) once its append returns, and stays there while the job exists; the
        file may hold more after it (a torn tail). Ingestion then reads a PDF from
        this file instead of writing it to a temporary file of its own
        (:class:`summarizer.ingest.source.StoredUpload`). ``None``: the store keeps
        the upload elsewhere (the Redis store).
        """

    def truncate_upload(self, job_id: str) -> tuple[int, int]:
        """Drop a torn last record; returns the ``(bytes, messages)`` kept."""

    def close_upload(self, job_id: str) -> None:
        """Release resources held for appending to the job's upload."""

    # -- leases ----------------------------------------------------------------------------
    def acquire_lease(self, job_id: str, owner: str, ttl_s: float) -> bool:
        """Become the one process running ``job_id`` for ``ttl_s`` seconds; ``False`` if another owns it."""

    def renew_lease(self, job_id: str, owner: str, ttl_s: float) -> bool:
        """Extend ``owner``'s lease; ``False`` if it lapsed and another took the job."""

    def release_lease(self, job_id: str, owner: str) -> None:
        """Give the job up (it finished or the process stops)."""

    def close(self) -> None:
        """Release everything (a temporary store deletes its data)."""
