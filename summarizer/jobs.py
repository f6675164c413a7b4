"""Jobs: one document's upload, its pipeline run and its durable event log.

A :class:`Job` is the single place where events get their ``job_id`` and ``seq``.
It assembles the upload (binary slices or text pieces, with size and SHA-256
checks), feeds it to ingestion and the map-reduce pipeline as it arrives, and
commits every event to :class:`~summarizer.storage.Storage` before any reader
sees it. Readers follow the log with :meth:`Job.events` from any ``seq``, so a
client that reconnects gets every event after the last one it has, exactly once.

Jobs outlive connections: a dropped socket is not a cancel. After a server
crash :meth:`JobManager.recover` rebuilds unfinished jobs from storage; chunks
whose summaries are in the log are not sent to the model again.

State machine::

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
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

from .errors import CloseCode, ErrorCode, LimitExceeded, ProtocolError, SummarizerError
from .ingest import iter_chunks
from .ingest.types import IngestOptions, IngestProgress
from .pipeline import PipelineConfig, PriorResults, summarize_chunks
from .protocol import (
    TERMINAL_TYPES,
    Accepted,
    Ack,
    Cancelled,
    ChunkRestart,
    CollapseRestart,
    Document,
    Error,
    JobWarning,
    Limits,
    Progress,
    SkippedPages,
    Start,
    SummaryRestart,
    dump,
    parse_server,
)
from .storage import Storage, UploadRecord

__all__ = ["Job", "JobLimits", "JobManager", "JobSpec", "JobState", "new_job_id"]

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
    """Everything needed to (re)build a job; stored as JSON with the job.

    Attributes:
        start: The client's ``start`` message (its ``token`` removed).
        model: Name of the model for map and collapse.
        reduce_model: Name of the model for the reduce, or ``None`` for ``model``.
        models: Names clients may choose from (announced in ``accepted``).
        pipeline: Map-reduce configuration.
        ingest: Chunking and parsing options.
        limits: Upload limits.
    """

    start: Start
    model: str
    models: list[str]
    pipeline: PipelineConfig
    ingest: IngestOptions
    limits: JobLimits
    reduce_model: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (see :meth:`from_json`)."""
        return {
            "start": self.start.model_dump(mode="json"),
            "model": self.model,
            "reduce_model": self.reduce_model,
            "models": self.models,
            "pipeline": dataclasses.asdict(self.pipeline),
            "ingest": dataclasses.asdict(self.ingest),
            "limits": dataclasses.asdict(self.limits),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        """Inverse of :meth:`to_json`."""
        return cls(
            start=Start.model_validate(data["start"]),
            model=data["model"],
            reduce_model=data.get("reduce_model"),
            models=list(data["models"]),
            pipeline=PipelineConfig(**data["pipeline"]),
            ingest=IngestOptions(**data["ingest"]),
            limits=JobLimits(**data["limits"]),
        )


class Job:
    """One summarization job.

    Create new jobs with :meth:`JobManager.create`; the constructor is shared by
    new and recovered jobs.

    Args:
        job_id: 32 hex digits.
        spec: The job's :class:`JobSpec`.
        storage: Where events and upload are committed.
        model: Chat model for map and collapse.
        reduce_model: Chat model for the reduce (``None``: ``model``).
        state: Initial state (``uploading`` for a new job).
        log: Events already committed (a recovered or re-opened job).
        upload: Upload records already committed.
        clock: Monotonic clock in seconds.
    """

    def __init__(
        self,
        job_id: str,
        spec: JobSpec,
        *,
        storage: Storage,
        model: BaseChatModel | None,
        reduce_model: BaseChatModel | None = None,
        state: JobState = JobState.UPLOADING,
        log: Iterable[Any] = (),
        upload: Iterable[UploadRecord] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = job_id
        self.spec = spec
        self.start = spec.start
        self.limits = spec.limits
        self.state = state
        self.log: list[Any] = list(log)
        self._storage = storage
        self._model = model
        self._reduce_model = reduce_model
        self._clock = clock
        self._started = clock()
        self._changed = asyncio.Event()
        self._upload: asyncio.Queue[UploadRecord | None] = asyncio.Queue()
        self._upload_kind: type | None = None
        self._received = 0
        self._messages = 0
        self._acked = 0
        self._acked_messages = 0
        self._task: asyncio.Task[None] | None = None
        self._cancel_requested = False
        self._last_pages_done = -1
        self._warnings_sent = 0
        self.readers = 0
        """Sessions attached to the job (see :meth:`JobManager.expire_abandoned`)."""
        self.last_activity = clock()
        """Clock reading of the last upload message or detach."""
        for record in upload:
            self._count(record)
        self._acked, self._acked_messages = self._received, self._messages
        if state is not JobState.UPLOADING and not self.finished:
            self._upload.put_nowait(None)
        self._prior = _prior_results(self.log)

    # -- the event log -----------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Whether the job has emitted its terminal event."""
        return self.state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)

    @property
    def last_seq(self) -> int:
        """The ``seq`` of the latest event."""
        return len(self.log)

    @property
    def received(self) -> int:
        """Upload bytes committed."""
        return self._received

    @property
    def messages(self) -> int:
        """Upload messages committed."""
        return self._messages

    def elapsed(self) -> float:
        """Seconds since this process started (or recovered) the job."""
        return round(self._clock() - self._started, 3)

    def emit(self, event: Any) -> Any:
        """Stamp ``event`` with the job id and the next ``seq``, commit it, wake readers.

        Events after the terminal one are dropped (a cancelled pipeline may still
        be unwinding), and so are events a recovered job already has in its log
        (see :func:`_prior_results`). Returns the stamped event, or ``None``.
        """
        if self.finished or self._prior.is_duplicate(event):
            return None
        stamped = event.model_copy(update={"job_id": self.id, "seq": len(self.log) + 1})
        self._storage.append_event(self.id, stamped.seq, stamped.type, dump(stamped))
        self.log.append(stamped)
        if stamped.type in TERMINAL_TYPES:
            self.state = _TERMINAL_STATE[stamped.type]
            self._storage.set_state(self.id, self.state.value)
        self._changed.set()
        self._changed = asyncio.Event()
        return stamped

    async def events(self, after_seq: int = 0) -> AsyncIterator[Any]:
        """Every event with ``seq > after_seq``, then live ones until the terminal event.

        Args:
            after_seq: The last ``seq`` the reader already has (0 for all).

        Yields:
            Stamped events in ``seq`` order, each exactly once.
        """
        next_index = max(after_seq, 0)
        while True:
            while next_index < len(self.log):
                event = self.log[next_index]
                next_index += 1
                yield event
            if self.finished:
                return
            await self._changed.wait()

    # -- upload ----------------------------------------------------------------------------

    def _count(self, record: UploadRecord) -> None:
        self._upload_kind = type(record)
        self._received += (
            len(record.encode("utf-8", "surrogatepass")) if isinstance(record, str) else len(record)
        )
        self._messages += 1
        self._upload.put_nowait(record)

    async def _accept(self, record: UploadRecord) -> Ack | None:
        if self.state is not JobState.UPLOADING:
            raise ProtocolError(
                f"Upload data arrived after 'end' (job is {self.state.value}).",
                code=ErrorCode.UNEXPECTED_MESSAGE,
            )
        if self._upload_kind is not None and self._upload_kind is not type(record):
            raise ProtocolError(
                "A job's upload is either binary frames or 'text' messages, not both.",
                code=ErrorCode.UNEXPECTED_MESSAGE,
            )
        size = len(record.encode("utf-8", "surrogatepass")) if isinstance(record, str) else len(record)
        total = self._received + size
        if total > self.limits.max_document_bytes:
            raise LimitExceeded(
                f"The document exceeds the server's limit of {self.limits.max_document_bytes} bytes.",
                code=ErrorCode.DOCUMENT_TOO_LARGE,
            )
        if self.start.size is not None and total > self.start.size:
            raise ProtocolError(
                f"Received {total} bytes, more than the {self.start.size} announced in 'start'.",
                code=ErrorCode.SIZE_MISMATCH,
            )
        # Stored before it is counted or acknowledged. (Handing each frame to a
        # thread measured slower than this plain write: the hop costs more than
        # it saves; the SHA-256 is computed once, at 'end', off the event loop.)
        self._storage.append_upload(self.id, record)
        self._count(record)
        self.last_activity = self._clock()
        return self._ack(force=isinstance(record, str))

    def _ack(self, *, force: bool = False) -> Ack | None:
        """Acknowledge what was received, at least every ``ack_step`` bytes.

        Acknowledging every frame costs an event (a database row and a frame)
        per 64 KiB; one ``ack`` per quarter window (at most 256 KiB) keeps the
        client's window open at a fraction of that cost. The byte that completes
        ``start.size``, every ``text`` message, and ``end`` are always acknowledged.
        """
        step = min(256 * 1024, max(1, self.limits.ack_window_bytes // 4))
        due = self._received - self._acked >= step or self._received == self.start.size
        if not (due or force) or (self._received == self._acked and self._messages == self._acked_messages):
            return None
        self._acked, self._acked_messages = self._received, self._messages
        return self.emit(Ack(received=self._received, messages=self._messages))  # type: ignore[no-any-return]

    async def feed_bytes(self, data: bytes) -> Ack | None:
        """Accept one binary frame of the file.

        Args:
            data: The frame's payload.

        Returns:
            The ``ack`` event emitted for it, or ``None`` if this frame's
            acknowledgement is coalesced with a later one.

        Raises:
            ProtocolError: Data after ``end``, mixed with ``text`` messages, or
                more than ``start.size`` bytes.
            LimitExceeded: Over the document size limit.
        """
        return await self._accept(bytes(data))

    async def feed_text(self, text: str) -> Ack | None:
        """Accept one ``text`` message (a piece of the document).

        Raises:
            ProtocolError: As for :meth:`feed_bytes`.
            LimitExceeded: Over the document size limit.
        """
        return await self._accept(text)

    async def end(self, sha256: str | None) -> None:
        """The upload is complete; check size and checksum, then let parsing finish.

        The SHA-256 of the stored upload is computed in a worker thread.

        Raises:
            ProtocolError: ``end`` twice, fewer bytes than ``start.size``
                (``size_mismatch``) or a wrong ``sha256`` (``checksum_mismatch``;
                the bytes are not used).
        """
        if self.state is not JobState.UPLOADING:
            raise ProtocolError("'end' was already received.", code=ErrorCode.UNEXPECTED_MESSAGE)
        if self.start.size is not None and self._received != self.start.size:
            raise ProtocolError(
                f"'end' after {self._received} bytes, but 'start' announced {self.start.size}.",
                code=ErrorCode.SIZE_MISMATCH,
            )
        if sha256 is not None:
            digest = await asyncio.to_thread(self._storage.upload_sha256, self.id)
            if sha256.lower() != digest:
                raise ProtocolError(
                    f"SHA-256 mismatch: the client sent {sha256.lower()}, the server received bytes "
                    f"hashing to {digest}; the upload is discarded.",
                    code=ErrorCode.CHECKSUM_MISMATCH,
                )
        self._ack(force=True)
        self.state = JobState.PROCESSING
        self._storage.set_state(self.id, self.state.value)
        self._storage.close_upload(self.id)
        self._upload.put_nowait(None)

    async def _upload_stream(self) -> AsyncIterator[UploadRecord]:
        while True:
            item = await self._upload.get()
            if item is None:
                return
            yield item

    # -- running ---------------------------------------------------------------------------

    def run(self) -> asyncio.Task[None] | None:
        """Start the ingestion and map-reduce task (idempotent; not for finished jobs)."""
        if self._task is None and not self.finished:
            self._announce_restarts()
            self._task = asyncio.create_task(self._run(), name=f"job-{self.id}")
        return self._task

    def _announce_restarts(self) -> None:
        """After a recovery, tell readers to drop text of calls that will run again."""
        reason = "The server restarted; this call runs again."
        for index, pages in self._prior.open_chunks.items():
            self.emit(ChunkRestart(index=index, pages=pages, reason=reason))
        for (level, group), pages in self._prior.open_collapses.items():
            self.emit(CollapseRestart(level=level, group=group, pages=pages, reason=reason))
        if self._prior.open_summary:
            self.emit(SummaryRestart(reason=reason))
        self._prior.forget_open()

    def _on_ingest(self, progress: IngestProgress) -> None:
        for message in progress.warnings[self._warnings_sent :]:
            self.emit(JobWarning(message=message))
        self._warnings_sent = len(progress.warnings)
        if progress.pages_done != self._last_pages_done or progress.finished:
            self._last_pages_done = progress.pages_done
            eta = None
            if progress.pages_total and progress.pages_done:
                spent = self._clock() - self._started
                eta = round(spent / progress.pages_done * (progress.pages_total - progress.pages_done), 1)
            self.emit(
                Progress(
                    stage="extract",
                    done=progress.pages_done,
                    total=progress.pages_total if not progress.finished else progress.pages_done,
                    elapsed_s=self.elapsed(),
                    eta_s=0.0 if progress.finished else eta,
                )
            )
        if progress.finished:
            self.emit(
                Document(
                    pages=progress.pages_done,
                    characters=progress.characters,
                    chunks=progress.chunks,
                    title=progress.title,
                    skipped=[
                        SkippedPages(first=s.first, last=s.last, reason=s.reason) for s in progress.skipped
                    ],
                )
            )

    async def _run(self) -> None:
        assert self._model is not None
        try:
            chunks = iter_chunks(
                self._upload_stream(),
                filename=self.start.filename,
                media_type=self.start.media_type,
                options=self.spec.ingest,
                on_progress=self._on_ingest,
            )
            async for event in summarize_chunks(
                chunks,
                self._model,
                config=self.spec.pipeline,
                reduce_model=self._reduce_model,
                clock=self._clock,
                started=self._started,
                prior=self._prior.results,
            ):
                self.emit(event)
        except asyncio.CancelledError:
            if not self._cancel_requested:
                raise
            self.emit(Cancelled(elapsed_s=self.elapsed()))
        except SummarizerError as exc:
            self.emit(Error(code=exc.code, message=exc.message, retryable=exc.retryable))
        except Exception:
            log.exception("job %s failed", self.id)
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
        if self.finished:
            return
        self.emit(Error(code=error.code, message=error.message, retryable=error.retryable))
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def wait(self) -> None:
        """Wait until the job's task has fully stopped."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    async def stop(self) -> None:
        """Stop the task without a terminal event (server shutdown: resumable later)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


class _Prior:
    """What a recovered job's log already holds, so that it is neither paid for
    nor emitted twice.

    Attributes:
        results: Chunk and collapse summaries to reuse (handed to the pipeline).
        open_chunks: Chunks started but not finished before the crash: index → pages.
        open_collapses: Collapse groups started but not finished: (level, group) → pages.
        open_summary: Whether summary tokens were sent without a ``summary``.
    """

    def __init__(self) -> None:
        self.results = PriorResults()
        self.open_chunks: dict[int, tuple[int, int]] = {}
        self.open_collapses: dict[tuple[int, int], tuple[int, int]] = {}
        self.open_summary = False
        self.document = False
        self.levels: set[int] = set()

    def forget_open(self) -> None:
        self.open_chunks.clear()
        self.open_collapses.clear()
        self.open_summary = False

    def is_duplicate(self, event: Any) -> bool:
        kind = event.type
        if kind == "document":
            seen, self.document = self.document, True
            return seen
        if kind == "collapse":
            seen = event.level in self.levels
            self.levels.add(event.level)
            return seen
        return False


def _prior_results(log: list[Any]) -> _Prior:
    prior = _Prior()
    for event in log:
        kind = event.type
        if kind == "chunk.started":
            prior.open_chunks[event.index] = tuple(event.pages)
        elif kind == "chunk.restart":
            prior.open_chunks.pop(event.index, None)
        elif kind == "chunk.summary":
            prior.open_chunks.pop(event.index, None)
            prior.results.maps[event.index] = event.text
        elif kind == "chunk.failed":
            prior.open_chunks.pop(event.index, None)
            prior.results.failed[event.index] = (str(event.code), event.message)
        elif kind == "collapse":
            prior.levels.add(event.level)
        elif kind == "collapse.token":
            prior.open_collapses[(event.level, event.group)] = tuple(event.pages)
        elif kind == "collapse.restart":
            prior.open_collapses.pop((event.level, event.group), None)
        elif kind == "collapse.summary":
            prior.open_collapses.pop((event.level, event.group), None)
            prior.results.collapses[(event.level, event.group)] = event.text
        elif kind == "summary.token":
            prior.open_summary = True
        elif kind == "summary.restart":
            prior.open_summary = False
        elif kind == "document":
            prior.document = True
    return prior


class JobManager:
    """The server's jobs: creation within limits, lookup, recovery, expiry.

    Args:
        storage: Durable state.
        load_model: Returns the chat model for a model name (raises ``ModelError``).
        max_jobs: Jobs running at once; more is ``server_busy`` (close 1013).
        ttl_s: Seconds a finished job stays available for ``resume``.
        clock: Monotonic clock in seconds.
    """

    def __init__(
        self,
        storage: Storage,
        load_model: Callable[[str], BaseChatModel],
        *,
        max_jobs: int = 32,
        ttl_s: float = 86_400.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.storage = storage
        self._load_model = load_model
        self.max_jobs = max_jobs
        self.ttl_s = ttl_s
        self._clock = clock
        self._jobs: dict[str, Job] = {}

    def running(self) -> int:
        """Jobs not yet finished."""
        return sum(1 for job in self._jobs.values() if not job.finished)

    def create(self, spec: JobSpec) -> Job:
        """Create, persist and announce (``accepted``) a new job; the caller runs it.

        Raises:
            LimitExceeded: ``server_busy`` (close 1013) if ``max_jobs`` are running.
            ModelError: The job's model cannot be loaded.
        """
        if self.running() >= self.max_jobs:
            err = LimitExceeded(
                f"The server is running {self.max_jobs} jobs, its limit; try again in a minute.",
                code=ErrorCode.SERVER_BUSY,
                retryable=True,
            )
            err.close_code = CloseCode.TRY_AGAIN_LATER
            raise err
        model = self._load_model(spec.model)
        reduce_model = self._load_model(spec.reduce_model) if spec.reduce_model else None
        job_id = new_job_id()
        stored = dataclasses.replace(spec, start=spec.start.model_copy(update={"token": None}))
        self.storage.create_job(job_id, stored.to_json(), JobState.UPLOADING.value)
        job = Job(
            job_id, stored, storage=self.storage, model=model, reduce_model=reduce_model, clock=self._clock
        )
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

    def get(self, job_id: str) -> Job | None:
        """The job, live or re-opened from storage (finished jobs, read only); ``None`` if unknown."""
        job = self._jobs.get(job_id)
        if job is not None:
            return job
        record = self.storage.job(job_id)
        if record is None or record.state not in FINISHED_STATES:
            return None
        return self._restore(record, load_models=False)

    def _restore(self, record: Any, *, load_models: bool) -> Job:
        spec = JobSpec.from_json(record.spec)
        events = [parse_server(body) for body in self.storage.events(record.id)]
        model = self._load_model(spec.model) if load_models else None
        reduce_model = self._load_model(spec.reduce_model) if load_models and spec.reduce_model else None
        if record.state not in FINISHED_STATES:
            self.storage.truncate_upload(record.id)
        job = Job(
            record.id,
            spec,
            storage=self.storage,
            model=model,
            reduce_model=reduce_model,
            state=JobState(record.state),
            log=events,
            upload=self.storage.upload_records(record.id),
            clock=self._clock,
        )
        self._jobs[record.id] = job
        return job

    def recover(self) -> list[Job]:
        """Rebuild and restart every unfinished job found in storage (server start).

        A job whose model cannot be loaded any more fails with that error.

        Returns:
            The recovered jobs (already running).
        """
        recovered = []
        for record in self.storage.jobs_in_states((JobState.UPLOADING.value, JobState.PROCESSING.value)):
            try:
                job = self._restore(record, load_models=True)
            except SummarizerError as exc:
                job = self._restore(record, load_models=False)
                job.fail(exc)
                continue
            job.run()
            recovered.append(job)
            log.info("recovered job %s (%s, %d events)", job.id, job.state.value, job.last_seq)
        return recovered

    def release(self, job: Job) -> None:
        """Drop a finished job from memory (it stays in storage until it expires)."""
        if job.finished and self._jobs.get(job.id) is job:
            del self._jobs[job.id]
            self.storage.close_upload(job.id)

    def expire_abandoned(self, idle_s: float) -> int:
        """Fail uploads that nobody has fed or watched for ``idle_s`` seconds.

        A job still ``uploading`` with no session attached cannot progress; it
        ends with ``idle_timeout`` so it frees its slot (``max_jobs``). Jobs that
        are processing keep running without readers: their results wait for a
        ``resume``.

        Returns:
            How many jobs were failed.
        """
        now = self._clock()
        stale = [
            job
            for job in self._jobs.values()
            if job.state is JobState.UPLOADING and job.readers == 0 and now - job.last_activity > idle_s
        ]
        for job in stale:
            job.fail(
                SummarizerError(
                    f"The upload was abandoned: no data and no client for {idle_s:g} s.",
                    code=ErrorCode.IDLE_TIMEOUT,
                )
            )
        return len(stale)

    def purge_expired(self) -> int:
        """Delete finished jobs older than the TTL from storage; returns how many."""
        return self.storage.purge(FINISHED_STATES, time.time() - self.ttl_s)

    async def shutdown(self) -> None:
        """Stop every running job's task, leaving it resumable after a restart."""
        for job in list(self._jobs.values()):
            await job.stop()
