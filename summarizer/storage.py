"""Durable job state: an SQLite database and one upload file per job.

Layout under the data directory::

    jobs.sqlite3          jobs (spec, state, upload counters) and every event (job_id, seq, JSON)
    uploads/<job_id>.bin  the upload as received, one record per message

An upload file is a sequence of records ``kind (1 byte, b"B" binary or b"T" text)
+ length (4 bytes, big-endian) + payload``. Message boundaries are kept because
incremental decoding and chunking see the same pieces on replay, so a job that
is recovered after a crash cuts exactly the same chunks and can reuse the chunk
summaries it already paid for.

Durability: SQLite runs in WAL mode with ``synchronous=NORMAL`` and every event
is committed before it is sent, so a killed server process (SIGKILL) loses
nothing a client has seen. (A power cut may lose the last transactions; that
is the documented trade-off of ``synchronous=NORMAL``.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sqlite3
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["JobRecord", "Storage", "UploadRecord"]

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

_HEADER = struct.Struct(">cI")

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
        spec: What is needed to rebuild the job (start message, effective options).
        received: Upload bytes committed.
        messages: Upload messages committed.
    """

    id: str
    created: float
    updated: float
    state: str
    spec: dict[str, Any]
    received: int
    messages: int


class Storage:
    """Jobs, events and uploads on disk.

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
        self.db = sqlite3.connect(self.root / "jobs.sqlite3", isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._handles: dict[str, Any] = {}

    def close(self) -> None:
        """Close the database and upload files (and delete a temporary data directory)."""
        for job_id in list(self._handles):
            self.close_upload(job_id)
        self.db.close()
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- jobs --------------------------------------------------------------------------

    def create_job(self, job_id: str, spec: dict[str, Any], state: str) -> None:
        """Insert a new job row and create its (empty) upload file."""
        now = time.time()
        self.db.execute(
            "INSERT INTO jobs (id, created, updated, state, spec) VALUES (?, ?, ?, ?, ?)",
            (job_id, now, now, state, json.dumps(spec)),
        )
        self._upload_path(job_id).touch()

    def set_state(self, job_id: str, state: str) -> None:
        """Record a state change."""
        self.db.execute("UPDATE jobs SET state = ?, updated = ? WHERE id = ?", (state, time.time(), job_id))

    def job(self, job_id: str) -> JobRecord | None:
        """The job row, or ``None`` if unknown or purged."""
        row = self.db.execute(
            "SELECT id, created, updated, state, spec, received, messages FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        return None if row is None else _record(row)

    def jobs_in_states(self, states: tuple[str, ...]) -> list[JobRecord]:
        """Every job whose state is one of ``states``, oldest first."""
        marks = ",".join("?" * len(states))
        rows = self.db.execute(
            f"SELECT id, created, updated, state, spec, received, messages FROM jobs "
            f"WHERE state IN ({marks}) ORDER BY created",
            states,
        ).fetchall()
        return [_record(row) for row in rows]

    def purge(self, finished_states: tuple[str, ...], older_than: float) -> int:
        """Delete finished jobs last updated before ``older_than`` (Unix seconds).

        Returns:
            How many jobs were deleted (rows, events and upload files).
        """
        marks = ",".join("?" * len(finished_states))
        ids = [
            row[0]
            for row in self.db.execute(
                f"SELECT id FROM jobs WHERE state IN ({marks}) AND updated < ?",
                (*finished_states, older_than),
            )
        ]
        for job_id in ids:
            self.close_upload(job_id)
            self.db.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
            self.db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            with contextlib.suppress(FileNotFoundError):
                self._upload_path(job_id).unlink()
        return len(ids)

    # -- events -----------------------------------------------------------------------

    def append_event(self, job_id: str, seq: int, kind: str, body: str) -> None:
        """Commit one event (before it is sent to anyone)."""
        self.db.execute(
            "INSERT INTO events (job_id, seq, type, body) VALUES (?, ?, ?, ?)", (job_id, seq, kind, body)
        )

    def events(self, job_id: str, after_seq: int = 0) -> list[str]:
        """The JSON bodies of the job's events with ``seq > after_seq``, in order."""
        rows = self.db.execute(
            "SELECT body FROM events WHERE job_id = ? AND seq > ? ORDER BY seq", (job_id, after_seq)
        ).fetchall()
        return [row[0] for row in rows]

    # -- uploads ------------------------------------------------------------------------

    def _upload_path(self, job_id: str) -> Path:
        return self.uploads / f"{job_id}.bin"

    def append_upload(self, job_id: str, record: UploadRecord) -> None:
        """Append one upload message to the job's upload file (kept open until :meth:`close_upload`).

        The write reaches the operating system before this returns, so it
        survives the server process being killed. Safe to call from a worker
        thread as long as one job's calls are not concurrent.

        Args:
            job_id: The job.
            record: The message's bytes or text.
        """
        kind, payload = (
            (b"T", record.encode("utf-8", "surrogatepass")) if isinstance(record, str) else (b"B", record)
        )
        handle = self._handles.get(job_id)
        if handle is None:
            handle = self._handles[job_id] = self._upload_path(job_id).open("ab", buffering=0)
        handle.write(_HEADER.pack(kind, len(payload)) + payload)

    def upload_sha256(self, job_id: str) -> str:
        """Lowercase hex SHA-256 of the upload's payloads concatenated (text as UTF-8)."""
        digest = hashlib.sha256()
        for record in self.upload_records(job_id):
            digest.update(record.encode("utf-8", "surrogatepass") if isinstance(record, str) else record)
        return digest.hexdigest()

    def close_upload(self, job_id: str) -> None:
        """Close the job's upload file (the upload ended or the job finished)."""
        handle = self._handles.pop(job_id, None)
        if handle is not None:
            handle.close()

    def upload_records(self, job_id: str) -> Iterator[UploadRecord]:
        """The job's complete upload records, in order.

        A record torn by a crash mid-write (the file's last one) is ignored.
        """
        path = self._upload_path(job_id)
        if not path.exists():
            return
        with path.open("rb") as f:
            while True:
                header = f.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    return
                kind, length = _HEADER.unpack(header)
                payload = f.read(length)
                if len(payload) < length:
                    return
                yield payload.decode("utf-8", "surrogatepass") if kind == b"T" else payload

    def truncate_upload(self, job_id: str) -> None:
        """Drop a torn last record (a crash mid-write), so that appends continue cleanly."""
        path = self._upload_path(job_id)
        if not path.exists():
            return
        total = path.stat().st_size
        size = 0
        with path.open("rb") as f:
            while True:
                header = f.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    break
                _, length = _HEADER.unpack(header)
                if size + _HEADER.size + length > total:
                    break
                f.seek(length, 1)
                size += _HEADER.size + length
        if size != total:
            with path.open("r+b") as f:
                f.truncate(size)


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
