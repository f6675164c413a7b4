"""A job's event log: stamps ``seq``, serializes once, commits in batches off the event loop.

Every event a job emits goes through :meth:`EventLog.append`, the single place
where events get their ``job_id`` and ``seq``. The event is serialized there,
once; the JSON text is what the store keeps and what every transport sends.

Writes leave the event loop: an :class:`EventWriter` thread (one per store)
takes whatever events of all jobs are pending and commits them in one
transaction, then tells each log how far it is durable. Readers only ever see
committed events, so a client never holds an event a crash could lose.

A failed commit (the disk is full, the database locked) is never silent: the
events of the failed transaction were not stored, so they are not shown
either. Each job of the batch is retried alone; a job whose events still
cannot be stored has its uncommitted events dropped, unseen, and is told
(``on_lost``), and the job then ends with ``storage_error`` under the first
``seq`` that was lost: a reader sees every ``seq`` once, without a gap. If
even that one event cannot be stored, it is delivered from memory (readers
must learn that the job ended); it is the only event ever sent unstored.

Memory per job is bounded: a log keeps the last ``tail_events`` events for live
readers; a reader further behind (a ``resume`` from seq 0, a re-opened finished
job) pages through the store. Nothing of a finished job stays in memory once
its :class:`~summarizer.jobs.JobManager` has released it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ..errors import SummarizerError
from ..protocol import TERMINAL_TYPES, ServerEvent, dump, parse_server
from ..store import EventGap, EventRow, JobStore, LogTaken

__all__ = ["EventLog", "EventWriter", "StoredEvent"]

log = logging.getLogger(__name__)

REPLAY_PAGE = 256
"""Events read from the store at a time when a reader is behind the in-memory tail."""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One committed event as transports send it.

    Attributes:
        job_id: The job.
        seq: Its ``seq``.
        type: Its ``type`` tag.
        body: Its wire JSON text (serialized once, when it was appended).
    """

    job_id: str
    seq: int
    type: str
    body: str

    @property
    def event(self) -> ServerEvent:
        """The event parsed back into its protocol model."""
        return parse_server(self.body)


class EventWriter:
    """One thread committing the pending events of every log of a store, in batches.

    Args:
        store: Where events are committed.
    """

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[EventLog | list[EventLog] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._soon: list[EventLog] = []  # handed over at the end of this loop iteration
        self.batches = 0
        """Transactions committed (for tests and benchmarks)."""
        self.refilled = 0
        """Events re-written because the store had lost them (see :class:`~summarizer.store.EventGap`)."""

    def submit(self, event_log: EventLog) -> None:
        """Schedule ``event_log``'s pending events for the next batch."""
        self._start()
        self._queue.put(event_log)

    def submit_soon(self, event_log: EventLog, loop: asyncio.AbstractEventLoop) -> None:
        """:meth:`submit` ``event_log`` with the others of this loop iteration, in one hand-over.

        Must be called on ``loop``. The writer thread then wakes once per loop
        iteration, not once per job with new events (every wake is a GIL
        hand-over the event loop waits for).
        """
        if not self._soon:
            loop.call_soon(self._hand_over)
        self._soon.append(event_log)

    def _hand_over(self) -> None:
        logs, self._soon = self._soon, []
        if logs:
            self._start()
            self._queue.put(logs)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="summarizer-event-writer", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        """Commit everything pending, then stop the thread (blocking)."""
        self._hand_over()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _work(self) -> None:
        stop = False
        while not stop:
            items = [self._queue.get()]
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            logs: list[EventLog | None] = []
            for entry in items:
                if isinstance(entry, list):
                    logs.extend(entry)
                else:
                    logs.append(entry)
            if None in logs:
                stop = True
            batch: list[tuple[EventLog, list[EventRow]]] = []
            for item in dict.fromkeys(logs):  # each log once, in order
                if item is not None and (rows := item._take()):
                    batch.append((item, rows))
            if not batch:
                continue
            try:
                try:
                    self.store.append_events([row for _, rows in batch for row in rows])
                except EventGap:
                    # The store lost events it had acknowledged (Redis killed before its AOF was
                    # written): put back the ones still in memory, then commit the batch.
                    batch = [(item, self._refill(item, rows)) for item, rows in batch]
                    self.store.append_events([row for _, rows in batch for row in rows])
                self.batches += 1
            except Exception:  # disk full, database locked...: retry each job alone
                log.warning("could not commit a batch of %d jobs' events; retrying job by job", len(batch))
                for item, rows in batch:
                    try:
                        self.store.append_events(rows)
                        self.batches += 1
                    except LogTaken as exc:
                        log.warning("job %s: %s; its copy here stops", item.job_id, exc)
                        item._taken_from_thread(exc)
                    except Exception as exc:
                        log.exception(
                            "could not store %d events of job %s (from seq %d)",
                            len(rows),
                            item.job_id,
                            rows[0].seq,
                        )
                        item._lost_from_thread(rows[0].seq, exc)
                    else:
                        item._committed_from_thread(rows[-1].seq)
                continue
            for item, rows in batch:
                item._committed_from_thread(rows[-1].seq)

    def _refill(self, item: EventLog, rows: list[EventRow]) -> list[EventRow]:
        """``rows`` preceded by the events of ``item`` the store lost (from its in-memory tail).

        Raises:
            EventGap: The tail no longer holds every lost event (the log keeps a gap).
        """
        last = self.store.last_seq(item.job_id)
        first = rows[0].seq
        if first <= last + 1:
            return rows
        lost = [e for e in list(item._tail) if last < e.seq < first]
        if [e.seq for e in lost] != list(range(last + 1, first)):
            raise EventGap(item.job_id, last)
        log.warning(
            "re-writing %d events of job %s lost by the store (after seq %d)", len(lost), item.job_id, last
        )
        self.refilled += len(lost)
        return [EventRow(e.job_id, e.seq, e.type, e.body) for e in lost] + rows


class EventLog:
    """One job's events: append (stamp, serialize, schedule the commit) and read (replay, then tail).

    Args:
        job_id: The job.
        store: Where committed events are read back from.
        writer: Commits appended events.
        last_seq: The highest ``seq`` already committed (0 for a new job).
        ended: Whether the committed log already ends with a terminal event.
        tail_events: Events kept in memory for live readers (at least 1).
        on_lost: Called on the event loop with the store's exception when events
            could not be committed; they are already dropped (and ``seq`` rewound
            to the first of them), so the next :meth:`append` reuses that ``seq``.
            The job appends its terminal ``storage_error`` there.
        on_taken: Called on the event loop with :class:`~summarizer.store.LogTaken`
            when another replica writes the job's log now (a shared store): the
            uncommitted events are dropped and nothing more is committed from here.
    """

    def __init__(
        self,
        job_id: str,
        store: JobStore,
        writer: EventWriter | None,
        *,
        last_seq: int = 0,
        ended: bool = False,
        tail_events: int = 512,
        on_lost: Callable[[Exception], None] | None = None,
        on_taken: Callable[[LogTaken], None] | None = None,
    ) -> None:
        self.job_id = job_id
        self.store = store
        self._writer = writer
        self.last_seq = last_seq
        """The ``seq`` of the latest appended event (committed or not)."""
        self.committed_seq = last_seq
        """The ``seq`` up to which events are durable and visible to readers."""
        self.ended = ended
        """Whether a terminal event was appended (nothing more is accepted)."""
        self._tail: collections.deque[StoredEvent] = collections.deque(maxlen=max(1, tail_events))
        self._pending: list[EventRow] = []
        self._lock = threading.Lock()
        self._changed = asyncio.Event()
        self.detached: SummarizerError | None = None
        """Why the readers were let go without a terminal event (:meth:`detach`), if they were."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_lost = on_lost
        self._on_taken = on_taken
        self._broken = False  # a commit failed: the writer takes nothing until the loop has rewound
        self.storage_failed = False
        """Whether events could not be stored (the log then ends with ``storage_error``)."""
        self.unstored_seq: int | None = None
        """The ``seq`` of the one event delivered without being stored, if any."""

    @property
    def durable_end(self) -> bool:
        """Whether the terminal event is committed (readers stop after it)."""
        return self.ended and self.committed_seq == self.last_seq

    def append(self, event: ServerEvent) -> StoredEvent | None:
        """Stamp ``event`` with the job id and the next ``seq``, serialize it and schedule its commit.

        Must be called on the event loop. Events after the terminal one are
        dropped (a cancelled pipeline may still be unwinding).

        Returns:
            The stored form, or ``None`` if dropped.

        Raises:
            RuntimeError: The log is read only (no writer).
        """
        if self.ended or self.detached is not None:
            return None
        if self._writer is None:
            raise RuntimeError(f"the event log of job {self.job_id} is read only")
        self._loop = self._loop or asyncio.get_running_loop()
        seq = self.last_seq + 1
        stamped = event.model_copy(update={"job_id": self.job_id, "seq": seq})
        stored = StoredEvent(self.job_id, seq, stamped.type, dump(stamped))
        self.last_seq = seq
        if stored.type in TERMINAL_TYPES:
            self.ended = True
        self._tail.append(stored)
        with self._lock:
            first = not self._pending
            self._pending.append(EventRow(self.job_id, seq, stored.type, stored.body))
        if first:
            self._writer.submit_soon(self, self._loop)
        return stored

    def _take(self) -> list[EventRow]:
        with self._lock:
            if self._broken:
                return []
            rows, self._pending = self._pending, []
        return rows

    def _lost_from_thread(self, first_seq: int, exc: Exception) -> None:
        with self._lock:
            self._broken = True
            self._pending = []
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._lost, first_seq, exc)

    def _lost(self, first_seq: int, exc: Exception) -> None:
        """Events from ``first_seq`` on were not stored (and never shown): forget them."""
        if self.storage_failed:
            # Not even the terminal storage_error could be stored: deliver it from memory, so
            # that readers learn the job ended (after a restart it is recovered again).
            log.error("job %s: its storage_error event is sent without being stored", self.job_id)
            self.unstored_seq = self.last_seq
            self.committed_seq = self.last_seq
            self._wake()
            return
        self.storage_failed = True
        with self._lock:
            self._broken = False
            self._pending = []
        self.last_seq = first_seq - 1
        self.committed_seq = min(self.committed_seq, self.last_seq)
        while self._tail and self._tail[-1].seq > self.last_seq:
            self._tail.pop()
        self.ended = False
        if self._on_lost is not None:
            self._on_lost(exc)
        self._wake()

    def _taken_from_thread(self, exc: LogTaken) -> None:
        with self._lock:
            self._broken = True  # nothing more is committed from here
            self._pending = []
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._taken, exc)

    def _taken(self, exc: LogTaken) -> None:
        """Another replica writes this job's log now: drop what was not committed, tell the job."""
        self.last_seq = self.committed_seq
        while self._tail and self._tail[-1].seq > self.last_seq:
            self._tail.pop()
        if self._on_taken is not None:
            self._on_taken(exc)
        self._wake()

    def _committed_from_thread(self, seq: int) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._committed, seq)

    def _committed(self, seq: int) -> None:
        if seq > self.committed_seq:
            self.committed_seq = seq
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def detach(self, error: SummarizerError) -> None:
        """Take no more events and let every reader go with ``error``, after the committed ones.

        For a job another replica runs now: its terminal event is written there,
        and a reader of this copy would otherwise wait for it forever. Idempotent.
        """
        if self.detached is None:
            self.detached = error
        self._wake()

    async def flushed(self) -> None:
        """Wait until every appended event is committed."""
        while self.committed_seq < self.last_seq:
            await self._changed.wait()

    def in_memory(self) -> int:
        """Events held in memory (the tail and the uncommitted ones)."""
        return len(self._tail) + len(self._pending)

    async def read(self, after_seq: int = 0) -> AsyncIterator[StoredEvent]:
        """Every committed event with ``seq > after_seq``, then live ones until the terminal event.

        Events behind the in-memory tail are read from the store in pages of
        :data:`REPLAY_PAGE`, in a worker thread.

        Args:
            after_seq: The last ``seq`` the reader already has (0 for all).

        Yields:
            Stored events in ``seq`` order, each exactly once.
        """
        next_seq = max(after_seq, 0) + 1
        while True:
            if next_seq <= self.committed_seq:
                oldest = self._tail[0].seq if self._tail else None
                if oldest is not None and oldest <= next_seq:
                    # The tail holds consecutive seqs: slice it, do not scan it all at every wake.
                    start, stop = next_seq - oldest, self.committed_seq - oldest + 1
                    batch = list(itertools.islice(self._tail, start, stop))
                else:
                    rows = await asyncio.to_thread(self.store.events, self.job_id, next_seq - 1, REPLAY_PAGE)
                    batch = [StoredEvent(r.job_id, r.seq, r.type, r.body) for r in rows]
                    if not batch:  # purged meanwhile
                        return
                before = next_seq
                for stored in batch:
                    if stored.seq != next_seq:
                        continue
                    next_seq += 1
                    yield stored
                if next_seq == before:  # a gap (events lost by a failed write): stop, do not spin
                    log.error("event log of job %s has a gap at seq %d", self.job_id, next_seq)
                    return
                continue
            if self.detached is not None:
                raise self.detached
            if self.durable_end or (self._writer is None and self.ended):
                return
            await self._changed.wait()
