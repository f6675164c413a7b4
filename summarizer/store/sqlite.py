"""The embedded store: an SQLite database and one upload file per job (one process).

Layout under the data directory::

    jobs.sqlite3           jobs (spec, state) and every event (job_id, seq, type, JSON)
    uploads/<job_id>.data  the upload as received: the payloads of its messages
    uploads/<job_id>.idx   one entry per message (kind, length); see :mod:`.upload_files`

Message boundaries are kept because incremental decoding and chunking see the
same pieces on replay, so a job that is recovered after a crash cuts exactly
the same chunks and can reuse the chunk summaries it already paid for.

Durability: SQLite runs in WAL mode with ``synchronous=NORMAL``; a batch of
events is one transaction, committed before any of its events is sent, so a
killed server process (SIGKILL) loses nothing a client has seen. (A power cut
may lose the last transactions; that is the documented trade-off of
``synchronous=NORMAL``.)

Checkpoints: SQLite's automatic checkpoint runs inside the commit that
crosses its threshold, and a checkpoint ends with an ``fsync`` of the database.
On ext4 that ``fsync`` waits for the upload data still in writeback: measured
on the benchmark machine during ``bench/upload.py``'s 80 MiB uploads, one commit
in a few uploads took 400 ms, and with it every acknowledgement (and every
store call behind the lock). So the automatic checkpoint is off, and a
:class:`_Checkpointer` thread runs a ``PASSIVE`` checkpoint on its own connection
every :data:`CHECKPOINT_INTERVAL_S`: it never blocks a commit. The WAL starts over
after a checkpoint that no commit overlapped; when commits never pause, a
``TRUNCATE`` checkpoint once it holds :data:`WAL_LIMIT_PAGES` bounds it (that one
makes commits wait).

Threads: one connection guarded by a lock; every method is thread-safe. Leases
are granted in memory: one process owns every job it runs.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .base import EventRow, JobRecord, UploadRecord
from .upload_files import UploadFiles

__all__ = ["CHECKPOINT_INTERVAL_S", "SqliteStore"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    state TEXT NOT NULL,
    spec TEXT NOT NULL,
    received INTEGER NOT NULL DEFAULT 0,
    messages INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;
"""

_COLUMNS = "id, created, updated, state, spec, received, messages"

CHECKPOINT_INTERVAL_S = 1.0
"""Seconds between two checkpoints of the WAL into the database (see the module docstring)."""

WAL_LIMIT_PAGES = 4096
"""WAL pages (4 KiB each) above which a checkpoint waits for the writer (``TRUNCATE``) so that the
WAL starts over: after a ``PASSIVE`` one it does only if no commit came during the checkpoint."""


class _Checkpointer:
    """A daemon thread that checkpoints the database's WAL every ``interval_s`` seconds,
    on a connection of its own, so that no commit waits for a checkpoint's ``fsync``.

    A ``PASSIVE`` checkpoint copies what it can without waiting for readers or
    writers; an error (the disk is full) is logged and retried at the next turn.

    Args:
        path: The database file.
        interval_s: Seconds between checkpoints.
    """

    def __init__(self, path: Path, interval_s: float) -> None:
        self.path = path
        self.interval_s = interval_s
        self.checkpoints = 0
        """Checkpoints that copied at least one page (for tests)."""
        self.restarts = 0
        """Checkpoints that waited for the writer because the WAL had grown past the limit."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="summarizer-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    ((_busy, frames, copied),) = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    if frames > WAL_LIMIT_PAGES:
                        # Commits never left a quiet moment for the WAL to start over: wait for
                        # the writer, copy everything, and have the next commit rewind the WAL.
                        ((_busy, frames, copied),) = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                        self.restarts += 1
                except sqlite3.Error:
                    log.warning("could not checkpoint %s; trying again later", self.path, exc_info=True)
                    continue
                if copied > 0:
                    self.checkpoints += 1
        finally:
            db.close()

    def close(self) -> None:
        """Stop the thread (blocking until its last checkpoint is done)."""
        self._stop.set()
        self._thread.join()


class SqliteStore:
    """Jobs, events and uploads on local disk (implements :class:`~summarizer.store.base.JobStore`).

    Args:
        root: Data directory (created if missing). ``None`` uses a private
            temporary directory removed by :meth:`close` (nothing survives).

    Raises:
        OSError: The directory cannot be created or written.
        sqlite3.Error: The database is unusable (e.g. corrupt).
    """

    def __init__(self, root: Path | None) -> None:
        self._temporary = root is None
        self.root = Path(tempfile.mkdtemp(prefix="summarizer-")) if root is None else root
        self.uploads = self.root / "uploads"
        self.uploads.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.db = sqlite3.connect(self.root / "jobs.sqlite3", isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job, off the commit path
        self.db.executescript(_SCHEMA)
        self._checkpointer = _Checkpointer(self.root / "jobs.sqlite3", CHECKPOINT_INTERVAL_S)
        self._uploads = UploadFiles(self.uploads)
        self._leases: dict[str, tuple[str, float]] = {}
        self._closed = False

    def close(self) -> None:
        """Close the database and upload files (and delete a temporary data directory)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._checkpointer.close()
            self._uploads.close_all()
            self.db.close()
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- jobs --------------------------------------------------------------------------

    def create_job(self, job_id: str, spec: dict[str, Any], state: str) -> None:
        """Insert a new job row and create its (empty) upload file.

        Raises:
            KeyError: The id exists already.
        """
        now = time.time()
        with self._lock:
            try:
                self.db.execute(
                    "INSERT INTO jobs (id, created, updated, state, spec) VALUES (?, ?, ?, ?, ?)",
                    (job_id, now, now, state, json.dumps(spec)),
                )
            except sqlite3.IntegrityError:
                raise KeyError(job_id) from None
        self._uploads.create(job_id)

    def set_state(self, job_id: str, state: str) -> None:
        """Record a state change."""
        with self._lock:
            self.db.execute(
                "UPDATE jobs SET state = ?, updated = ? WHERE id = ?", (state, time.time(), job_id)
            )

    def job(self, job_id: str) -> JobRecord | None:
        """The job row, or ``None`` if unknown or purged."""
        with self._lock:
            row = self.db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _record(row)

    def jobs_in_states(self, states: tuple[str, ...]) -> list[JobRecord]:
        """Every job whose state is one of ``states``, oldest first."""
        marks = ",".join("?" * len(states))
        with self._lock:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE state IN ({marks}) ORDER BY created", states
            ).fetchall()
        return [_record(row) for row in rows]

    def purge(self, states: tuple[str, ...], older_than: float) -> list[str]:
        """Delete jobs in ``states`` last updated before ``older_than`` (Unix seconds).

        Returns:
            The ids of the jobs deleted (rows, events and upload files).
        """
        marks = ",".join("?" * len(states))
        with self._lock:
            ids = [
                row[0]
                for row in self.db.execute(
                    f"SELECT id FROM jobs WHERE state IN ({marks}) AND updated < ?", (*states, older_than)
                )
            ]
            for job_id in ids:
                self.db.execute("BEGIN")
                self.db.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
                self.db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
                self.db.execute("COMMIT")
                self._uploads.delete(job_id)
        return ids

    # -- events -----------------------------------------------------------------------

    def append_events(self, rows: Sequence[EventRow]) -> None:
        """Commit a batch of events in one transaction.

        Raises:
            KeyError: An event with one of the batch's ``(job_id, seq)`` exists (nothing is stored).
            sqlite3.OperationalError: E.g. ``database or disk is full`` (nothing is stored).
        """
        if not rows:
            return
        with self._lock:
            self.db.execute("BEGIN")
            try:
                self.db.executemany(
                    "INSERT INTO events (job_id, seq, type, body) VALUES (?, ?, ?, ?)",
                    [(r.job_id, r.seq, r.type, r.body) for r in rows],
                )
                self.db.execute("COMMIT")
            except sqlite3.IntegrityError:
                self._rollback()
                raise KeyError("an event with this (job_id, seq) exists already") from None
            except BaseException:
                self._rollback()  # SQLITE_FULL ("database or disk is full") has rolled back already
                raise

    def _rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def append_event(self, job_id: str, seq: int, kind: str, body: str) -> None:
        """Commit one event (a batch of one)."""
        self.append_events([EventRow(job_id, seq, kind, body)])

    def events(self, job_id: str, after_seq: int = 0, limit: int | None = None) -> list[EventRow]:
        """The job's events with ``seq > after_seq``, in order, at most ``limit``."""
        with self._lock:
            rows = self.db.execute(
                "SELECT seq, type, body FROM events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (job_id, after_seq, -1 if limit is None else limit),
            ).fetchall()
        return [EventRow(job_id, seq, kind, body) for seq, kind, body in rows]

    def last_seq(self, job_id: str) -> int:
        """The highest committed ``seq`` (0 if none)."""
        with self._lock:
            row = self.db.execute("SELECT MAX(seq) FROM events WHERE job_id = ?", (job_id,)).fetchone()
        return int(row[0] or 0)

    # -- uploads ------------------------------------------------------------------------

    def append_upload(self, job_id: str, record: UploadRecord, *, owner: str | None = None) -> None:
        """Append one upload message to the job's upload files (kept open until :meth:`close_upload`).

        ``owner`` is not checked: one process owns every job of an SQLite store.

        The write reaches the operating system before this returns, so it
        survives the server process being killed.

        Raises:
            OSError: The write failed (``ENOSPC``, ``EIO``, ...).
        """
        self._uploads.append(job_id, record)

    def append_uploads(
        self, job_id: str, records: Sequence[UploadRecord], *, owner: str | None = None
    ) -> None:
        """Append upload messages with one write of their payloads and one of their index entries.

        Raises:
            OSError: A write failed (``ENOSPC``, ``EIO``, ...).
        """
        self._uploads.append_many(job_id, records)

    def close_upload(self, job_id: str) -> None:
        """Close the job's upload files (the upload ended or the job finished)."""
        self._uploads.close(job_id)

    def upload_records(self, job_id: str, start: int = 0) -> Iterator[UploadRecord]:
        """The job's complete upload records from index ``start``, in order.

        A record torn by a crash mid-write (the last one) is ignored.
        """
        return self._uploads.records(job_id, start)

    def upload_path(self, job_id: str) -> Path:
        """The job's upload data file (``<job_id>.data``: the payloads back to back)."""
        return self._uploads.data_path(job_id)

    def truncate_upload(self, job_id: str) -> tuple[int, int]:
        """Drop a torn last record (a crash mid-write); returns ``(payload bytes, messages)`` kept."""
        return self._uploads.repair(job_id)

    # -- leases (one process: granted unless another owner holds an unexpired one) ----------

    def acquire_lease(self, job_id: str, owner: str, ttl_s: float) -> bool:
        """Own ``job_id`` for ``ttl_s`` seconds unless another owner holds it."""
        now = time.monotonic()
        with self._lock:
            held = self._leases.get(job_id)
            if held is not None and held[0] != owner and held[1] > now:
                return False
            self._leases[job_id] = (owner, now + ttl_s)
            return True

    def renew_lease(self, job_id: str, owner: str, ttl_s: float) -> bool:
        """Extend ``owner``'s lease; ``False`` if another owns the job."""
        return self.acquire_lease(job_id, owner, ttl_s)

    def release_lease(self, job_id: str, owner: str) -> None:
        """Give the job up."""
        with self._lock:
            if self._leases.get(job_id, ("",))[0] == owner:
                del self._leases[job_id]


def _record(row: tuple[Any, ...]) -> JobRecord:
    return JobRecord(
        id=row[0],
        created=row[1],
        updated=row[2],
        state=row[3],
        spec=json.loads(row[4]),
        received=row[5],
        messages=row[6],
    )
