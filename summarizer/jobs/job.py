"""One job's lifecycle: its upload, its pipeline run and its event log, tied together.

State machine (every transition is made by :meth:`Job._set_state`, which never
leaves a terminal state)::

    uploading ──end──► processing ──summary──► done
        │                  │
        └──── cancel ──────┴──► cancelled        (any error) ──► failed

The module knows nothing about WebSockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

from ..errors import ErrorCode, LimitExceeded, StorageError, SummarizerError
from ..ingest import iter_chunks
from ..ingest.types import IngestOptions
from ..pipeline import IngestEvents, PipelineConfig, summarize_into
from ..protocol import Cancelled, Error, Limits, ServerEvent, Start
from ..recovery import Recovery
from ..store import JobStore, LeaseLost
from .eventlog import EventLog, EventWriter, StoredEvent
from .upload import Upload

__all__ = ["FINISHED_STATES", "Job", "JobLimits", "JobSpec", "JobState", "new_job_id"]

log = logging.getLogger(__name__)


def new_job_id() -> str:
    """An unguessable job id: 128 random bits as 32 lowercase hex digits."""
    return secrets.token_hex(16)


class JobState(enum.StrEnum):
    """Where a job is in its life; see the module docstring for the transitions."""

    UPLOADING = "uploading"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATES = (JobState.DONE.value, JobState.FAILED.value, JobState.CANCELLED.value)
_TERMINAL_STATE = {"summary": JobState.DONE, "cancelled": JobState.CANCELLED, "error": JobState.FAILED}


@dataclass(frozen=True, slots=True)
class JobLimits:
    """Upload limits of one job.

    Attributes:
        max_document_bytes: Bytes (or UTF-8 bytes of text) accepted at most.
        max_frame_bytes: Largest single binary frame or text message (bytes).
        ack_window_bytes: Unacknowledged bytes a client may have in flight.
        max_text_chars: Characters of text accepted at most.
        max_concurrency: Highest ``options.concurrency`` a client may ask for.
    """

    max_document_bytes: int
    max_frame_bytes: int
    ack_window_bytes: int
    max_text_chars: int
    max_concurrency: int

    def to_message(self) -> Limits:
        """The limits as announced in ``accepted``."""
        return Limits(**dataclasses.asdict(self))


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything needed to (re)build a job; stored as JSON with the job, without secrets.

    Attributes:
        start: The client's ``start`` message (its ``token`` removed).
        model: Name of the model for map and collapse.
        reduce_model: Name of the model for the reduce, or ``None`` for ``model``.
        models: Names clients may choose from (announced in ``accepted``).
        pipeline: Map-reduce configuration.
        ingest: Chunking and parsing options (with the PDF password, in memory only).
        limits: Upload limits.
        password_withheld: Rebuilt from storage, and the client had given a
            PDF password, which is never stored.
    """

    start: Start
    model: str
    models: list[str]
    pipeline: PipelineConfig
    ingest: IngestOptions
    limits: JobLimits
    reduce_model: str | None = None
    password_withheld: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict without the token or the PDF password (see :meth:`from_json`)."""
        options = self.start.options.model_copy(update={"password": None})
        start = self.start.model_copy(update={"token": None, "options": options})
        return {
            "start": start.model_dump(mode="json"),
            "model": self.model,
            "reduce_model": self.reduce_model,
            "models": self.models,
            "pipeline": dataclasses.asdict(self.pipeline),
            "ingest": dataclasses.asdict(dataclasses.replace(self.ingest, password=None)),
            "limits": dataclasses.asdict(self.limits),
            "password_given": self.start.options.password is not None or self.password_withheld,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        """Inverse of :meth:`to_json` (the password, if one was given, is withheld)."""
        return cls(
            start=Start.model_validate(data["start"]),
            model=data["model"],
            reduce_model=data.get("reduce_model"),
            models=list(data["models"]),
            pipeline=PipelineConfig(**data["pipeline"]),
            ingest=IngestOptions(**data["ingest"]),
            limits=JobLimits(**data["limits"]),
            password_withheld=bool(data.get("password_given")),
        )


class Job:
    """One summarization job.

    Create jobs with :meth:`JobManager.create <summarizer.jobs.JobManager.create>`;
    the constructor is shared by new, recovered and re-opened (read only) jobs.

    Args:
        job_id: 32 hex digits.
        spec: The job's :class:`JobSpec`.
        store: Where the job, its upload and its events are kept.
        writer: Commits events; ``None`` for a read-only (finished) job.
        model: Chat model for map and collapse (``None``: the job cannot run).
        reduce_model: Chat model for the reduce (``None``: ``model``).
        state: Initial state (``uploading`` for a new job).
        last_seq: Events already committed (a recovered or re-opened job).
        upload_stored: ``(bytes, messages)`` of upload already committed.
        upload_kind: ``bytes`` or ``str``: the kind of the stored upload records.
        recovery: What a recovered job's log already holds, or ``None``.
        on_finish: Called once the terminal event is committed.
        tail_events: Events its log keeps in memory for live readers.
        clock: Monotonic clock in seconds.
        owner: This replica's lease id, to fence upload writes to a shared store.
    """

    def __init__(
        self,
        job_id: str,
        spec: JobSpec,
        *,
        store: JobStore,
        writer: EventWriter | None,
        model: BaseChatModel | None,
        reduce_model: BaseChatModel | None = None,
        state: JobState = JobState.UPLOADING,
        last_seq: int = 0,
        upload_stored: tuple[int, int] = (0, 0),
        upload_kind: type | None = None,
        recovery: Recovery | None = None,
        on_finish: Callable[[Job], None] | None = None,
        tail_events: int = 512,
        clock: Callable[[], float] = time.monotonic,
        owner: str | None = None,
    ) -> None:
        self.job_id = job_id
        self.spec = spec
        self.start = spec.start
        self.limits = spec.limits
        self.state = state
        self._store = store
        self._model = model
        self._reduce_model = reduce_model
        self._clock = clock
        self._started = clock()
        self._recovery = recovery
        self._on_finish = on_finish
        self._task: asyncio.Task[None] | None = None
        self._cancel_requested = False
        self._finishing = False
        self._moving: asyncio.Future[None] | None = None
        self.moved = False
        """Another replica runs the job (:meth:`hand_over`): upload data is refused here and
        nothing more is written to its log."""
        self.log = EventLog(
            job_id,
            store,
            writer,
            last_seq=last_seq,
            ended=self.finished,
            tail_events=tail_events,
            on_lost=self._storage_lost,
            on_taken=self._log_taken,
        )
        self.upload = Upload(
            job_id,
            store,
            max_document_bytes=spec.limits.max_document_bytes,
            ack_window_bytes=spec.limits.ack_window_bytes,
            declared_size=spec.start.size,
            on_ack=self.emit,
            stored=upload_stored,
            kind=upload_kind,
            ended=state is not JobState.UPLOADING,
            clock=clock,
            owner=owner,
        )
        self.readers = 0
        """Connections following the job (any number may follow one job)."""

    # -- identity and state ----------------------------------------------------------------

    @property
    def id(self) -> str:
        """Alias of :attr:`job_id`."""
        return self.job_id

    @property
    def finished(self) -> bool:
        """Whether the job has emitted its terminal event."""
        return self.state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)

    @property
    def last_seq(self) -> int:
        """The ``seq`` of the latest event readers can get (committed)."""
        return self.log.committed_seq

    @property
    def received(self) -> int:
        """Upload bytes committed."""
        return self.upload.received

    @property
    def messages(self) -> int:
        """Upload messages committed."""
        return self.upload.messages

    def elapsed(self) -> float:
        """Seconds since this process started (or recovered) the job."""
        return round(self._clock() - self._started, 3)

    def _set_state(self, state: JobState) -> bool:
        """Move to ``state`` unless the job is finished (or runs elsewhere); ``True`` if it moved."""
        if self.finished or self.moved:
            return False
        self.state = state
        if not self.finished:
            self._store.set_state(self.job_id, state.value)
        return True

    # -- events ------------------------------------------------------------------------------

    def emit(self, event: ServerEvent) -> StoredEvent | None:
        """Stamp, serialize and log ``event`` (the one sink of pipeline, ingestion and upload).

        Dropped (``None``): events after the terminal one, and events a recovered
        job's log already has (see :meth:`summarizer.recovery.Recovery.is_duplicate`).
        """
        if self.finished or self.moved or (self._recovery is not None and self._recovery.is_duplicate(event)):
            return None
        stored = self.log.append(event)
        if stored is not None and stored.type in _TERMINAL_STATE:
            self._set_state(_TERMINAL_STATE[stored.type])
            self.upload.abort()
            self._schedule_finish()
        return stored

    def _schedule_finish(self) -> None:
        if not self._finishing:
            self._finishing = True
            asyncio.get_running_loop().create_task(self._finish(), name=f"job-{self.job_id}-finish")

    def _storage_lost(self, exc: Exception) -> None:
        """The store could not commit some events (already dropped, unseen): fail with ``storage_error``.

        Whatever the job had reached (even a ``summary`` among the lost events),
        it ends ``failed``; the error takes the ``seq`` of the first lost event.
        """
        if self.moved:
            return  # it ends on the replica that runs it now
        error = StorageError(
            f"The server could not store this job's events ({exc}); the job is stopped rather "
            "than send what it could not keep. Try again once the server has room."
        )
        self.state = JobState.FAILED
        self.upload.abort()
        self.log.append(Error(code=error.code, message=error.message, retryable=error.retryable))
        if self._task is not None and not self._task.done() and self._task is not asyncio.current_task():
            self._task.cancel()
        self._schedule_finish()

    def _log_taken(self, exc: Exception) -> None:
        """Another replica writes the job's log (it took the job): stop this copy (:meth:`hand_over`)."""
        if not self.moved:
            self._moving = asyncio.ensure_future(self.hand_over())

    def _sink(self, event: ServerEvent) -> None:
        """:meth:`emit` as an :data:`~summarizer.pipeline.EventSink`."""
        self.emit(event)

    async def _finish(self) -> None:
        """Once the terminal event is durable: record the final state, tell the manager."""
        await self.log.flushed()
        if self.moved:
            return  # the replica that runs it now records its state
        try:
            self._store.set_state(self.job_id, self.state.value)
        except Exception:  # a full disk: the job is recovered (and ends again) after a restart
            log.exception("could not record the final state of job %s", self.job_id)
        if self._on_finish is not None:
            self._on_finish(self)

    async def events(self, after_seq: int = 0) -> AsyncIterator[StoredEvent]:
        """Every event with ``seq > after_seq``, then live ones until the terminal event.

        Args:
            after_seq: The last ``seq`` the reader already has (0 for all).

        Yields:
            :class:`~summarizer.jobs.eventlog.StoredEvent` in ``seq`` order, each
            exactly once (``.seq``, ``.type``, ``.body`` JSON, ``.event`` parsed).
        """
        async for stored in self.log.read(after_seq):
            yield stored

    # -- upload ------------------------------------------------------------------------------

    def take_over(self, feeder: object) -> None:
        """Make ``feeder`` (a session) the job's one uploader; see :meth:`Upload.take_over`.

        Call it before reading :attr:`received` / :attr:`messages` for a client
        that will continue the upload: nothing another feeder sends can then be
        committed after those counts.
        """
        self.upload.take_over(feeder)

    def check_feeder(self, feeder: object) -> None:
        """Raise :class:`~summarizer.errors.Superseded` unless ``feeder`` is the job's uploader."""
        self.upload.check_feeder(feeder)

    async def settled(self) -> None:
        """Wait until an ``end`` being checked has its outcome (state and counts are final)."""
        await self.upload.settled()

    def _lost_lease(self) -> None:
        """A fenced upload write found the lease gone: the job is another replica's now."""
        log.warning("job %s: its lease was lost mid-upload; the upload continues elsewhere", self.job_id)
        self.moved = True
        self._check_here()

    def _check_here(self) -> None:
        """Raise ``server_busy`` (retryable, close 1013) once the job moved to another replica."""
        if self.moved:
            raise self.moved_error()

    def moved_error(self) -> LimitExceeded:
        """``server_busy`` (retryable, close 1013): the job runs on another replica now, resume there."""
        then = "continue the upload" if self.state is JobState.UPLOADING else "follow it"
        return LimitExceeded.server_busy(
            f"Job {self.job_id} moved to another replica; reconnect and resume to {then}."
        )

    async def feed_bytes(self, data: bytes) -> None:
        """Accept one binary frame of the file (waits while the upload queue is full).

        Raises:
            ProtocolError: Data after ``end``, mixed with ``text``, or more than ``start.size``.
            LimitExceeded: Over the document size limit; ``server_busy`` once the job moved.
            Superseded: Another feeder took the upload over while this frame waited.

        A frame the store cannot keep (a full disk) fails the job with ``storage_error``.
        """
        await self.feed_frames((bytes(data),))

    async def feed_frames(self, frames: Sequence[bytes]) -> None:
        """Accept binary frames that arrived together, in order
        (see :meth:`~summarizer.jobs.upload.Upload.feed_many`).

        Raises:
            ProtocolError: As for :meth:`feed_bytes` (the frames before the refused one are kept).
            LimitExceeded: As for :meth:`feed_bytes`.
            Superseded: As for :meth:`feed_bytes`.
        """
        self._check_here()
        try:
            await self.upload.feed_many(frames)
        except LeaseLost:
            self._lost_lease()
        except StorageError as exc:
            log.exception("job %s: could not store its upload", self.job_id)
            self.fail(exc)

    async def feed_text(self, text: str) -> None:
        """Accept one ``text`` message (a piece of the document).

        Raises:
            ProtocolError: As for :meth:`feed_bytes`.
            LimitExceeded: Over the document size limit.
            UnsupportedDocument: ``bad_encoding`` (a lone surrogate).
            Superseded: As for :meth:`feed_bytes`.
        """
        self._check_here()
        try:
            await self.upload.feed(text)
        except LeaseLost:
            self._lost_lease()
        except StorageError as exc:
            log.exception("job %s: could not store its upload", self.job_id)
            self.fail(exc)

    async def end(self, sha256: str | None) -> None:
        """The upload is complete: check size and checksum, then let parsing finish.

        A job that failed or was cancelled while the checksum was computed stays
        so (it is not moved to ``processing``).

        Raises:
            ProtocolError: ``end`` twice, ``size_mismatch`` or ``checksum_mismatch``.
            LimitExceeded: ``server_busy`` once the job moved to another replica.
        """
        self._check_here()
        if await self.upload.end(sha256):
            self._set_state(JobState.PROCESSING)

    # -- running -----------------------------------------------------------------------------

    def run(self) -> asyncio.Task[None] | None:
        """Start the ingestion and map-reduce task (idempotent; not for finished jobs)."""
        if self._task is None and not self.finished and self._model is not None:
            if self._recovery is not None:
                for event in self._recovery.restart_events():
                    self.emit(event)
            self._task = asyncio.create_task(self._run(), name=f"job-{self.job_id}")
            self._task.add_done_callback(self._ran)
        return self._task

    def _ran(self, task: asyncio.Task[None]) -> None:
        # A task cancelled before its first step never runs ``_run`` (nor its handler):
        # a ``cancel`` that arrives in the same loop turn as ``start`` still ends the job.
        if task.cancelled() and self._cancel_requested and not self.finished:
            self.emit(Cancelled(elapsed_s=self.elapsed()))

    async def _run(self) -> None:
        assert self._model is not None
        try:
            chunks = iter_chunks(
                self.upload.stream(),
                filename=self.start.filename,
                media_type=self.start.media_type,
                options=self.spec.ingest,
                on_progress=IngestEvents(self._sink, self._clock, self._started),
            )
            await summarize_into(
                self._sink,
                chunks,
                self._model,
                config=self.spec.pipeline,
                reduce_model=self._reduce_model,
                clock=self._clock,
                started=self._started,
                prior=self._recovery.results if self._recovery is not None else None,
            )
        except asyncio.CancelledError:
            if not self._cancel_requested:
                raise
            self.emit(Cancelled(elapsed_s=self.elapsed()))
        except SummarizerError as exc:
            self.emit(Error(code=exc.code, message=exc.message, retryable=exc.retryable))
        except Exception:
            log.exception("job %s failed", self.job_id)
            self.emit(
                Error(
                    code=ErrorCode.INTERNAL_ERROR,
                    message="The server hit an unexpected error; it has been logged.",
                )
            )

    def cancel(self) -> None:
        """Cancel the job: in-flight model calls are cancelled, ``cancelled`` is emitted."""
        if self.finished:
            return
        self._cancel_requested = True
        if self._task is not None and not self._task.done():
            self._task.cancel()
        else:
            self.emit(Cancelled(elapsed_s=self.elapsed()))

    def fail(self, error: SummarizerError) -> None:
        """End the job with ``error`` (emitted as an ``error`` event) and stop its task."""
        if self.finished or self.moved:
            return  # a moved job ends on the replica that runs it, not here
        self.emit(Error(code=error.code, message=error.message, retryable=error.retryable))
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def wait(self) -> None:
        """Wait until the job's task has fully stopped."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    async def hand_over(self) -> None:
        """Stop here for another replica to continue the job: no terminal event, nothing more written.

        For an upload handed over on request, and for a job whose lease (or log) another
        replica took. Before the first await the task is cancelled, the upload closed and
        the log detached, so no upload record or event is committed here afterwards (one
        writer at a time); later upload data is refused with :meth:`moved_error`, and every
        reader of this copy's events gets it after the events committed here (the session
        tells its client in-band and closes with 1013; the client resumes where the job runs).
        """
        self.moved = True
        self.log.detach(self.moved_error())
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        self.upload.abort()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def stop(self) -> None:
        """Stop the task without a terminal event (server shutdown: resumable later)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
