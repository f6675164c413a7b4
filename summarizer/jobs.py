"""Jobs: one document's upload, its pipeline run and its event log.

A :class:`Job` is the single place where events get their ``job_id`` and ``seq``.
It assembles the upload (binary slices or text pieces, with size and SHA-256
checks), feeds it to ingestion and the map-reduce pipeline as it arrives, and
appends every event to an in-memory log that any number of readers follow with
:meth:`Job.events` (from the start, or after a given ``seq``). It knows nothing
about WebSockets.

State machine::

    uploading ──end──► processing ──summary──► done
        │                  │
        └──── cancel ──────┴──► cancelled        (any error) ──► failed
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel

from .errors import ErrorCode, LimitExceeded, ProtocolError, SummarizerError
from .ingest import iter_chunks
from .ingest.types import IngestOptions, IngestProgress
from .pipeline import PipelineConfig, summarize_chunks
from .protocol import (
    TERMINAL_TYPES,
    Accepted,
    Ack,
    Cancelled,
    Document,
    Error,
    JobWarning,
    Limits,
    Progress,
    Start,
)

__all__ = ["Job", "JobLimits", "JobState", "JobStore", "new_job_id"]

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
        return Limits(
            max_document_bytes=self.max_document_bytes,
            max_frame_bytes=self.max_frame_bytes,
            ack_window_bytes=self.ack_window_bytes,
            max_text_chars=self.max_text_chars,
            max_concurrency=self.max_concurrency,
        )


class Job:
    """One summarization job.

    Args:
        start: The client's ``start`` message.
        model: The chat model for map and collapse (and reduce unless
            ``reduce_model`` is given).
        model_name: Name announced in ``accepted`` and ``summary``.
        models: Names clients may choose from (announced in ``accepted``).
        pipeline: Map-reduce configuration.
        ingest: Chunking and parsing options.
        limits: Upload limits.
        job_id: Defaults to :func:`new_job_id`.
        reduce_model: Optional stronger model for the final summary.
        clock: Monotonic clock in seconds.

    The job emits ``accepted`` (``seq`` 1) on construction and starts its
    pipeline task when :meth:`run` is called.
    """

    def __init__(
        self,
        start: Start,
        *,
        model: BaseChatModel,
        model_name: str,
        models: list[str],
        pipeline: PipelineConfig,
        ingest: IngestOptions,
        limits: JobLimits,
        job_id: str | None = None,
        reduce_model: BaseChatModel | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = job_id or new_job_id()
        self.start = start
        self.state = JobState.UPLOADING
        self.log: list[Any] = []
        self.limits = limits
        self._model = model
        self._reduce_model = reduce_model
        self._pipeline = pipeline
        self._ingest = ingest
        self._clock = clock
        self._started = clock()
        self._changed = asyncio.Event()
        self._upload: asyncio.Queue[bytes | str | None] = asyncio.Queue()
        self._upload_kind: type[bytes] | type[str] | None = None
        self._received = 0
        self._messages = 0
        self._sha = hashlib.sha256()
        self._task: asyncio.Task[None] | None = None
        self._cancel_requested = False
        self._last_pages_done = -1
        self._warnings_sent = 0
        self.emit(
            Accepted(
                limits=limits.to_message(),
                model=model_name,
                models=models,
                chunk_size=ingest.chunk_size,
                chunk_overlap=ingest.chunk_overlap,
                concurrency=pipeline.concurrency,
            )
        )

    # -- the event log -----------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Whether the job has emitted its terminal event."""
        return self.state in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)

    def elapsed(self) -> float:
        """Seconds since the job was created."""
        return round(self._clock() - self._started, 3)

    def emit(self, event: Any) -> Any:
        """Stamp ``event`` with this job's id and the next ``seq``, log it, wake readers.

        Events after the terminal one are dropped (a cancelled pipeline may still
        be unwinding). Returns the stamped event (or ``None`` if dropped).
        """
        if self.finished:
            return None
        stamped = event.model_copy(update={"job_id": self.id, "seq": len(self.log) + 1})
        self.log.append(stamped)
        if stamped.type in TERMINAL_TYPES:
            self.state = {
                "summary": JobState.DONE,
                "cancelled": JobState.CANCELLED,
                "error": JobState.FAILED,
            }[stamped.type]
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

    def _check_kind(self, kind: type[bytes] | type[str]) -> None:
        if self.state is not JobState.UPLOADING:
            raise ProtocolError(
                f"Upload data arrived after 'end' (job is {self.state.value}).",
                code=ErrorCode.UNEXPECTED_MESSAGE,
            )
        if self._upload_kind is None:
            self._upload_kind = kind
        elif self._upload_kind is not kind:
            raise ProtocolError(
                "A job's upload is either binary frames or 'text' messages, not both.",
                code=ErrorCode.UNEXPECTED_MESSAGE,
            )

    def _account(self, data: bytes) -> Ack:
        self._received += len(data)
        self._messages += 1
        limit = self.limits.max_document_bytes
        if self._received > limit:
            raise LimitExceeded(
                f"The document exceeds the server's limit of {limit} bytes.",
                code=ErrorCode.DOCUMENT_TOO_LARGE,
            )
        if self.start.size is not None and self._received > self.start.size:
            raise ProtocolError(
                f"Received {self._received} bytes, more than the {self.start.size} announced in 'start'.",
                code=ErrorCode.SIZE_MISMATCH,
            )
        self._sha.update(data)
        return self.emit(Ack(received=self._received, messages=self._messages))  # type: ignore[no-any-return]

    def feed_bytes(self, data: bytes) -> Ack:
        """Accept one binary frame of the file.

        Args:
            data: The frame's payload.

        Returns:
            The ``ack`` event emitted for it.

        Raises:
            ProtocolError: Data after ``end``, or mixed with ``text`` messages, or
                more than ``start.size`` bytes.
            LimitExceeded: Over the document size limit.
        """
        self._check_kind(bytes)
        ack = self._account(data)
        self._upload.put_nowait(data)
        return ack

    def feed_text(self, text: str) -> Ack:
        """Accept one ``text`` message (a piece of the document).

        Raises:
            ProtocolError: As for :meth:`feed_bytes`.
            LimitExceeded: Over the document size or character limit.
        """
        self._check_kind(str)
        ack = self._account(text.encode("utf-8", "surrogatepass"))
        self._upload.put_nowait(text)
        return ack

    def end(self, sha256: str | None) -> None:
        """The upload is complete; check size and checksum, then let parsing finish.

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
        if sha256 is not None and sha256.lower() != self._sha.hexdigest():
            raise ProtocolError(
                f"SHA-256 mismatch: the client sent {sha256.lower()}, the server received bytes "
                f"hashing to {self._sha.hexdigest()}; the upload is discarded.",
                code=ErrorCode.CHECKSUM_MISMATCH,
            )
        self.state = JobState.PROCESSING
        self._upload.put_nowait(None)

    async def _upload_stream(self) -> AsyncIterator[bytes | str]:
        while True:
            item = await self._upload.get()
            if item is None:
                return
            yield item

    # -- running ---------------------------------------------------------------------------

    def run(self) -> asyncio.Task[None]:
        """Start the ingestion and map-reduce task (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"job-{self.id}")
        return self._task

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
                Document(pages=progress.pages_done, characters=progress.characters, chunks=progress.chunks)
            )

    async def _run(self) -> None:
        try:
            chunks = iter_chunks(
                self._upload_stream(),
                filename=self.start.filename,
                media_type=self.start.media_type,
                options=self._ingest,
                on_progress=self._on_ingest,
            )
            async for event in summarize_chunks(
                chunks,
                self._model,
                config=self._pipeline,
                reduce_model=self._reduce_model,
                clock=self._clock,
                started=self._started,
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


class JobStore:
    """The jobs a server holds, by id (in memory; durable storage comes later).

    Args:
        max_jobs: Jobs that may be running at once.
    """

    def __init__(self, max_jobs: int = 64) -> None:
        self.max_jobs = max_jobs
        self._jobs: dict[str, Job] = {}

    def add(self, job: Job) -> None:
        """Register ``job``."""
        self._jobs[job.id] = job

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or ``None``."""
        return self._jobs.get(job_id)

    def running(self) -> int:
        """Jobs not yet finished."""
        return sum(1 for job in self._jobs.values() if not job.finished)

    def discard(self, job_id: str) -> None:
        """Forget a job (after it finished and its connection closed)."""
        self._jobs.pop(job_id, None)

    async def cancel_all(self) -> None:
        """Cancel every running job and wait for them (server shutdown)."""
        jobs = [job for job in self._jobs.values() if not job.finished]
        for job in jobs:
            job.cancel()
        for job in jobs:
            await job.wait()
