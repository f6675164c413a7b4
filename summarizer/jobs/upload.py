"""A job's upload: feed, commit, acknowledge when consumed, end, stream.

Each binary frame or ``text`` message is checked (order, kind, sizes, valid
text), committed to the store, then queued for ingestion. It is acknowledged
(``ack``) only once ingestion has taken it, so the client's ack window is real
flow control: a slow server stops acknowledging, the client stops sending. The
queue is bounded too (``ack_window_bytes``): a client that ignores the window
waits in :meth:`Upload.feed` (its socket is not read), it cannot make the
server buffer more.

Frames that arrive together (the transport had already read several:
:meth:`Upload.feed_many`) are committed as one run, one store write for all of
them, and queued with one wake-up of ingestion; each is still checked, counted
and acknowledged as if it had come alone.

Ack cadence: after every ``text`` message; after binary frames at least every
``min(256 KiB, ack_window_bytes / 4)`` bytes; whenever ingestion has taken
everything received so far (so a client with any window of at least one frame
never stalls); for the byte that completes ``start.size``; and at ``end``.

One feeder at a time: :meth:`Upload.take_over` names the one source (a
session) whose messages are accepted; the transport checks it with
:meth:`Upload.check_feeder` before each message, and a message that was
waiting for room in the queue when another source took over is refused
(``superseded``) instead of committed. So once a new connection has been told
the committed counts (``resumed``), nothing but what it sends lands after them.

States (transitions are atomic: each is checked and made without awaiting)::

    open ──end()──► ending ──checks ok──► ended
      │               └──checks fail──► aborted
      └──abort()────────────────────────► aborted
"""

from __future__ import annotations

import asyncio
import collections
import enum
import hashlib
import itertools
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from pathlib import Path

from ..errors import (
    ErrorCode,
    LimitExceeded,
    ProtocolError,
    StorageError,
    SummarizerError,
    Superseded,
    UnsupportedDocument,
)
from ..protocol import Ack
from ..store import JobStore, LeaseLost, UploadRecord

__all__ = ["Upload", "UploadState", "UploadStream"]

ACK_STEP_MAX = 256 * 1024
"""Largest number of bytes between two acks (bytes)."""

_STORED_BATCH = 32
"""Stored upload records read per worker-thread hop when a recovered job re-reads its upload."""


class UploadState(enum.StrEnum):
    """Where an upload is; see the module docstring."""

    OPEN = "open"
    ENDING = "ending"
    ENDED = "ended"
    ABORTED = "aborted"


def _size(record: UploadRecord) -> int:
    return len(record.encode("utf-8", "surrogatepass")) if isinstance(record, str) else len(record)


class Upload:
    """One job's upload.

    Args:
        job_id: The job (its records in the store).
        store: Where records are committed.
        max_document_bytes: Bytes accepted at most.
        ack_window_bytes: The window announced to clients (bytes); also the queue bound.
        declared_size: ``start.size``, or ``None``.
        on_ack: Receives each ``ack`` event (the job emits it).
        stored: ``(bytes, messages)`` already committed (a recovered job); they
            are re-read from the store by :meth:`stream`, not acknowledged again.
        kind: ``bytes`` or ``str`` if records of that kind are stored.
        ended: The upload ended before (a recovered job in ``processing``).
        clock: Monotonic clock in seconds.
        owner: This replica's id: with a shared store each record is committed only
            while it holds the job's lease (``None``: no fence).
    """

    def __init__(
        self,
        job_id: str,
        store: JobStore,
        *,
        max_document_bytes: int,
        ack_window_bytes: int,
        declared_size: int | None,
        on_ack: Callable[[Ack], object],
        stored: tuple[int, int] = (0, 0),
        kind: type | None = None,
        ended: bool = False,
        clock: Callable[[], float] = time.monotonic,
        owner: str | None = None,
    ) -> None:
        self.job_id = job_id
        self.store = store
        self.owner = owner
        self.max_document_bytes = max_document_bytes
        self.window = ack_window_bytes
        self.declared_size = declared_size
        self._on_ack = on_ack
        self._clock = clock
        self.state = UploadState.ENDED if ended else UploadState.OPEN
        self.received, self.messages = stored
        """Bytes and messages committed."""
        self._stored_messages = stored[1]
        self._kind = kind
        self._consumed = self._consumed_messages = 0
        self._acked, self._acked_messages = stored
        self._acked_base, self._acked_base_messages = stored
        self._queue: collections.deque[UploadRecord] = collections.deque()
        self._queued_bytes = 0
        self._changed = asyncio.Event()
        self.last_activity = clock()
        """Clock reading of the last record received or acknowledgement sent."""
        self._feeder: object | None = None
        self._takeovers = 0
        self._settled = asyncio.Event()
        if self.state is not UploadState.ENDING:
            self._settled.set()

    # -- the one feeder ----------------------------------------------------------------------

    def take_over(self, feeder: object) -> None:
        """Make ``feeder`` the only source whose messages are accepted from now on.

        Synchronous, so that counts read right after it are final for every other
        source: a message of the previous feeder still waiting in :meth:`feed`
        is refused with ``superseded``, and its later ones by :meth:`check_feeder`.
        """
        if feeder is not self._feeder:
            self._feeder = feeder
            self._takeovers += 1
            self._wake()

    def check_feeder(self, feeder: object) -> None:
        """Refuse a message from a source that is not (any longer) the feeder.

        An upload nobody took over (a job fed directly, in tests) accepts anyone.

        Raises:
            Superseded: Another source took the upload over.
        """
        if self._feeder is not None and feeder is not self._feeder:
            raise _superseded(self.job_id)

    async def settled(self) -> None:
        """Wait while an ``end`` is being checked (its SHA-256 computed): then the
        upload is open, ended or aborted, and its counts and the job's state are final."""
        await self._settled.wait()

    # -- feeding -----------------------------------------------------------------------------

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def feed(self, record: UploadRecord) -> None:
        """Check, commit and queue one upload message; wait while the queue is full.

        The same as :meth:`feed_many` with one record.
        """
        await self.feed_many((record,))

    async def feed_many(self, records: Sequence[UploadRecord]) -> None:
        """Check, commit and queue upload messages, in order; wait while the queue is full.

        Records already waiting in the transport (several binary frames read at
        once) are committed together: one store call (one write) for each run
        that fits in the queue, then one wake-up of the consumer. Each record is
        counted (``messages``) and acknowledged as if it had come alone.

        If a record is refused, the ones before it are committed first, then its
        error is raised; the ones after it are not used.

        Args:
            records: Binary frames or ``text`` pieces, in arrival order.

        Raises:
            ProtocolError: ``unexpected_message`` after ``end`` or when binary and
                text are mixed; ``size_mismatch`` beyond ``start.size``.
            LimitExceeded: ``document_too_large``.
            UnsupportedDocument: ``bad_encoding``: text that cannot be UTF-8
                (a lone surrogate such as ``"\\ud800"``).
            Superseded: Another feeder took the upload over while this one waited.
            StorageError: The store could not keep the records (they are not counted).
            LeaseLost: Another replica owns the job now (nothing more is committed).
        """
        sizes, refused = self._check(records)
        done = 0
        while done < len(sizes):
            # Bounded queue: a client that ignores the ack window waits here (its socket is not read).
            takeovers = self._takeovers
            while self._queued_bytes and self._queued_bytes + sizes[done] > self.window:
                if self.state is not UploadState.OPEN or self._takeovers != takeovers:
                    break
                await self._changed.wait()
            if self.state is not UploadState.OPEN:
                return  # aborted while waiting: the job ended, the data is not needed
            if self._takeovers != takeovers:
                # Another connection took over (and was told the counts) while this waited.
                raise _superseded(self.job_id)
            end, room = done + 1, self.window - self._queued_bytes - sizes[done]
            while end < len(sizes) and sizes[end] <= room:
                room -= sizes[end]
                end += 1
            run = records[done:end]
            try:
                # Committed before it is counted or acked; fenced by the lease on a shared store.
                self.store.append_uploads(self.job_id, run, owner=self.owner)
            except LeaseLost:
                raise
            except Exception as exc:  # a full disk, an I/O error
                raise StorageError(
                    f"The server could not store the upload of job {self.job_id} ({exc}); the job is stopped."
                ) from exc
            run_bytes = sum(sizes[done:end])
            self._kind = type(run[0])
            self.received += run_bytes
            self.messages += len(run)
            self._queue.extend(run)
            self._queued_bytes += run_bytes
            self.last_activity = self._clock()
            self._wake()
            done = end
        if refused is not None:
            raise refused

    def _check(self, records: Sequence[UploadRecord]) -> tuple[list[int], SummarizerError | None]:
        """The sizes (bytes) of the longest acceptable prefix of ``records``, and why the next
        one is refused (``None``: all are acceptable)."""
        if self.state is not UploadState.OPEN:
            return [], ProtocolError(
                f"Upload data arrived after 'end' (the upload is {self.state.value}).",
                code=ErrorCode.UNEXPECTED_MESSAGE,
            )
        kind = self._kind
        total = self.received
        sizes: list[int] = []
        for record in records:
            if kind is not None and kind is not type(record):
                return sizes, ProtocolError(
                    "A job's upload is either binary frames or 'text' messages, not both.",
                    code=ErrorCode.UNEXPECTED_MESSAGE,
                )
            kind = type(record)
            if isinstance(record, str):
                try:
                    size = len(record.encode("utf-8"))
                except UnicodeEncodeError as exc:
                    return sizes, UnsupportedDocument(
                        f"A 'text' message holds a character that is not valid Unicode text "
                        f"(a lone surrogate {record[exc.start]!r} at character {total + exc.start}); "
                        "it cannot be encoded as UTF-8.",
                        code=ErrorCode.BAD_ENCODING,
                    )
            else:
                size = len(record)
            total += size
            if total > self.max_document_bytes:
                return sizes, LimitExceeded(
                    f"The document exceeds the server's limit of {self.max_document_bytes} bytes.",
                    code=ErrorCode.DOCUMENT_TOO_LARGE,
                )
            if self.declared_size is not None and total > self.declared_size:
                return sizes, ProtocolError(
                    f"Received {total} bytes, more than the {self.declared_size} announced in 'start'.",
                    code=ErrorCode.SIZE_MISMATCH,
                )
            sizes.append(size)
        return sizes, None

    async def end(self, sha256: str | None) -> bool:
        """Close the upload after checking its size and SHA-256 (computed in a worker thread).

        Returns:
            ``True`` if the upload is now ended; ``False`` if it was aborted
            meanwhile (the job failed or was cancelled during the checks).

        Raises:
            ProtocolError: ``unexpected_message`` for a second ``end``;
                ``size_mismatch`` (fewer bytes than ``start.size``);
                ``checksum_mismatch`` (the bytes are not used).
        """
        if self.state is not UploadState.OPEN:
            raise ProtocolError("'end' was already received.", code=ErrorCode.UNEXPECTED_MESSAGE)
        if self.declared_size is not None and self.received != self.declared_size:
            raise ProtocolError(
                f"'end' after {self.received} bytes, but 'start' announced {self.declared_size}.",
                code=ErrorCode.SIZE_MISMATCH,
            )
        self.state = UploadState.ENDING
        self._settled.clear()
        self._wake()
        try:
            if sha256 is not None:
                digest = await asyncio.to_thread(self.sha256)
                if self.state is not UploadState.ENDING:
                    return False
                if sha256.lower() != digest:
                    self.state = UploadState.ABORTED
                    self._wake()
                    raise ProtocolError(
                        f"SHA-256 mismatch: the client sent {sha256.lower()}, the server received bytes "
                        f"hashing to {digest}; the upload is discarded.",
                        code=ErrorCode.CHECKSUM_MISMATCH,
                    )
            if self.state is not UploadState.ENDING:
                return False
            self.state = UploadState.ENDED
            self.store.close_upload(self.job_id)
            self._wake()
            return True
        finally:
            if self.state is UploadState.ENDING:  # cancelled while hashing: the end did not happen
                self.state = UploadState.OPEN
            self._settled.set()

    def abort(self) -> None:
        """Stop accepting data and end :meth:`stream` (the job ended). Idempotent."""
        if self.state is not UploadState.ENDED:
            self.state = UploadState.ABORTED
        self._settled.set()
        self._queue.clear()
        self._queued_bytes = 0
        self.store.close_upload(self.job_id)
        self._wake()

    def sha256(self) -> str:
        """Lowercase hex SHA-256 of the committed payloads concatenated (text as UTF-8); blocking."""
        digest = hashlib.sha256()
        for record in self.store.upload_records(self.job_id):
            digest.update(record.encode("utf-8", "surrogatepass") if isinstance(record, str) else record)
        return digest.hexdigest()

    def idle_for(self) -> float:
        """Seconds the upload has waited for its client: 0 while it is the server that lags
        (received data not yet consumed) or once the upload is over."""
        if self.state is not UploadState.OPEN or self._queued_bytes:
            return 0.0
        return self._clock() - self.last_activity

    # -- consuming -------------------------------------------------------------------------------

    def _ack(self, *, force: bool) -> None:
        step = min(ACK_STEP_MAX, max(1, self.window // 4))
        consumed = self._acked_base + self._consumed
        messages = self._acked_base_messages + self._consumed_messages
        if consumed == self._acked and messages == self._acked_messages:
            return
        due = force or consumed - self._acked >= step or not self._queue or consumed == self.declared_size
        if due:
            self._acked, self._acked_messages = consumed, messages
            self.last_activity = self._clock()
            self._on_ack(Ack(received=consumed, messages=messages))

    def _stored_batch(self, start: int) -> list[UploadRecord]:
        return list(itertools.islice(self.store.upload_records(self.job_id, start), _STORED_BATCH))

    def stream(self) -> UploadStream:
        """The upload's pieces in order: stored ones (a recovered job) first, then live ones.

        Each live piece is acknowledged (see the module docstring) as it is taken.
        Ends when the upload ended, or at once when it was aborted. The stream
        also tells where the store keeps the pieces (:meth:`UploadStream.document_path`).
        """
        return UploadStream(self._records(), self.store, self.job_id)

    async def _records(self) -> AsyncGenerator[UploadRecord, None]:
        index = 0
        while index < self._stored_messages:
            batch = await asyncio.to_thread(self._stored_batch, index)
            if not batch:
                break
            index += len(batch)
            for record in batch:
                yield record
        self._acked_base, self._acked_base_messages = self._acked, self._acked_messages
        self._consumed = self._consumed_messages = 0
        while True:
            if self.state is UploadState.ABORTED:
                return
            if self._queue:
                record = self._queue.popleft()
                size = _size(record)
                self._queued_bytes -= size
                self._consumed += size
                self._consumed_messages += 1
                self._wake()
                yield record
                # Ingestion asks for the next piece: it has taken this one.
                self._ack(force=isinstance(record, str))
                continue
            if self.state is UploadState.ENDED:
                self._ack(force=True)
                return
            await self._changed.wait()


class UploadStream:
    """An upload's pieces (an async iterator) and the store's file of them.

    It is a :class:`summarizer.ingest.source.StoredUpload`: when the store keeps
    the payloads in a local file (the embedded store), ingestion reads a PDF from
    that file instead of writing the pieces to a temporary file.

    Args:
        records: The pieces, from :meth:`Upload.stream`.
        store: The job's store.
        job_id: The job.
    """

    def __init__(self, records: AsyncGenerator[UploadRecord, None], store: JobStore, job_id: str) -> None:
        self._records = records
        self._store = store
        self._job_id = job_id

    def __aiter__(self) -> UploadStream:
        return self

    async def __anext__(self) -> UploadRecord:
        return await self._records.__anext__()

    async def aclose(self) -> None:
        """Stop the pieces (as an async generator's ``aclose``)."""
        await self._records.aclose()

    def document_path(self) -> Path | None:
        """The store's file of the upload's payloads, back to back (``None`` for a shared store)."""
        return self._store.upload_path(self._job_id)


def _superseded(job_id: str) -> Superseded:
    return Superseded(
        f"Another connection took over the upload of job {job_id} (it sent 'resume' or the same "
        "'start.job_id'); this connection's upload messages are refused, not stored. Resume to "
        "continue the upload."
    )
