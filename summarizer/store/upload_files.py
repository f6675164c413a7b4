"""Upload files of the embedded store: payloads in one file, their index in another.

Layout of one job's upload (``<job_id>`` under the uploads directory)::

    <job_id>.data  the payloads, back to back, nothing between them
    <job_id>.idx   one 5-byte entry per record: kind (b"B" binary, b"T" text)
                   + payload length (4 bytes, big-endian)

Why two files: a client sends fixed-size frames (64 KiB, 256 KiB), so every
payload lands on a page boundary of the data file and the kernel copies whole
page-cache pages. Earlier versions put a 5-byte header in front of each payload
in one file, so every write started and ended mid-page: 0.43 ms of CPU per MiB
against 0.29 aligned (64 KiB writes into recycled pages on the benchmark
machine). The index costs one small ``write`` per record.

Uploads do not fill the page cache: every :data:`DROP_STEP` bytes of a job's
data file, the pages written so far are handed to writeback and dropped once
clean (``posix_fadvise(POSIX_FADV_DONTNEED)``, where the platform has it).
Ingestion reads the live upload from memory; the file is read again only to
recover a job after a restart. Writing into pages the kernel recycles is
cheaper than into fresh ones: on the benchmark machine (a VM that returns free
memory to its host) 64 KiB writes into fresh page-cache pages cost 1.5 ms of
CPU per MiB, against 0.37 with the pages dropped (and half the system-wide CPU
per MiB, writeback included). Both together: the kernel's copy into the page
cache (``copy_folio_from_iter_atomic``) fell from 30% of the server's CPU during
``bench/upload.py``'s 64 KiB upload to 3% (``perf record``).

Order of writes: the payload first, then its index entry. A record exists once
its entry is complete and the data file holds all its bytes, so a process
killed between or during the two writes leaves a torn tail (bytes of data
without an entry, or part of an entry) that :meth:`UploadFiles.repair` drops.

Files of earlier versions (``<job_id>.bin``, header and payload interleaved) are
converted to this layout the first time they are touched, torn tail excluded.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .base import UploadRecord

__all__ = ["UploadFiles"]

_ENTRY = struct.Struct(">cI")
"""Index entry: kind (1 byte) + payload length (4 bytes, big-endian)."""

_BINARY, _TEXT = b"B", b"T"

DROP_STEP = 4 * 1024 * 1024
"""Bytes of an upload written between two page-cache drops (see the module docstring)."""

_CAN_DROP = hasattr(os, "posix_fadvise")


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to the unbuffered file ``fd``; a short write (a signal) writes the rest.

    Raises:
        OSError: The write failed (``ENOSPC``, ``EIO``, ...).
    """
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _decode(kind: bytes, payload: bytes) -> UploadRecord:
    return payload.decode("utf-8", "surrogatepass") if kind == _TEXT else payload


@dataclass(slots=True)
class _Open:
    data: IO[bytes]
    index: IO[bytes]
    written: int = 0
    """Bytes written to ``data`` through this handle."""
    dropped_at: int = 0
    """``written`` at the last page-cache drop."""


class UploadFiles:
    """Every job's upload records in one directory (see the module docstring for the layout).

    Not thread-safe per job: one caller appends to a job's upload at a time
    (its feeder on the event loop); readers of a job may run in other threads.

    Args:
        directory: Where the files live (must exist).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._open: dict[str, _Open] = {}

    def _paths(self, job_id: str) -> tuple[Path, Path]:
        return self.directory / f"{job_id}.data", self.directory / f"{job_id}.idx"

    def create(self, job_id: str) -> None:
        """Start an empty upload for ``job_id`` (an earlier one of that id is dropped).

        Raises:
            OSError: The files cannot be written.
        """
        self.close(job_id)
        for path in self._paths(job_id):
            path.write_bytes(b"")
        with contextlib.suppress(FileNotFoundError):
            (self.directory / f"{job_id}.bin").unlink()

    def append(self, job_id: str, record: UploadRecord) -> None:
        """Append one record: its payload, then its index entry. Both reach the operating system
        before this returns, so they survive the process being killed.

        Raises:
            OSError: A write failed (``ENOSPC``, ``EIO``, ...); the record is torn or absent,
                and :meth:`repair` drops what of it was written.
        """
        if isinstance(record, str):
            kind, payload = _TEXT, record.encode("utf-8", "surrogatepass")
        else:
            kind, payload = _BINARY, record
        handles = self._open.get(job_id)
        if handles is None:
            self._migrate(job_id)
            data, index = self._paths(job_id)
            handles = self._open[job_id] = _Open(data.open("ab", buffering=0), index.open("ab", buffering=0))
        _write_all(handles.data.fileno(), payload)
        _write_all(handles.index.fileno(), _ENTRY.pack(kind, len(payload)))
        handles.written += len(payload)
        if _CAN_DROP and handles.written - handles.dropped_at >= DROP_STEP:
            handles.dropped_at = handles.written
            # Starts writeback of dirty pages and drops the clean ones (offset 0, length 0: the whole file).
            os.posix_fadvise(handles.data.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)

    def close(self, job_id: str) -> None:
        """Close the job's files if they are open (the upload ended, or the job finished)."""
        handles = self._open.pop(job_id, None)
        if handles is not None:
            handles.data.close()
            handles.index.close()

    def close_all(self) -> None:
        """Close every open upload."""
        for job_id in list(self._open):
            self.close(job_id)

    def delete(self, job_id: str) -> None:
        """Remove the job's files (missing ones are fine)."""
        self.close(job_id)
        for path in (*self._paths(job_id), self.directory / f"{job_id}.bin"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _entries(self, job_id: str) -> tuple[list[tuple[bytes, int]], int]:
        """The complete records' ``(kind, length)`` and the data bytes they cover.

        An entry whose payload the data file does not hold in full ends the list.
        """
        data, index = self._paths(job_id)
        try:
            raw = index.read_bytes()
            available = data.stat().st_size
        except FileNotFoundError:
            return [], 0
        entries: list[tuple[bytes, int]] = []
        covered = 0
        for offset in range(0, len(raw) - _ENTRY.size + 1, _ENTRY.size):
            kind, length = _ENTRY.unpack_from(raw, offset)
            if covered + length > available:
                break
            entries.append((kind, length))
            covered += length
        return entries, covered

    def records(self, job_id: str, start: int = 0) -> Iterator[UploadRecord]:
        """The job's complete records from index ``start``, in order (none if it has no upload).

        A record torn by a crash mid-write (the last one) is left out.
        """
        self._migrate(job_id)
        entries, _ = self._entries(job_id)
        if start >= len(entries):
            return
        with contextlib.suppress(FileNotFoundError), self._paths(job_id)[0].open("rb") as f:
            f.seek(sum(length for _, length in entries[:start]))
            for kind, length in entries[start:]:
                yield _decode(kind, f.read(length))

    def repair(self, job_id: str) -> tuple[int, int]:
        """Drop a torn tail (a crash mid-write) from both files.

        Returns:
            ``(payload bytes, records)`` kept.
        """
        self.close(job_id)
        self._migrate(job_id)
        entries, covered = self._entries(job_id)
        data, index = self._paths(job_id)
        for path, size in ((data, covered), (index, len(entries) * _ENTRY.size)):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_size != size:
                    os.truncate(path, size)
        return covered, len(entries)

    def _migrate(self, job_id: str) -> None:
        """Convert an earlier version's ``<job_id>.bin`` (header + payload per record) to this layout."""
        legacy = self.directory / f"{job_id}.bin"
        if not legacy.exists():
            return
        data, index = self._paths(job_id)
        with legacy.open("rb") as source, data.open("wb") as out, index.open("wb") as entries:
            while len(header := source.read(_ENTRY.size)) == _ENTRY.size:
                _, length = _ENTRY.unpack(header)
                payload = source.read(length)
                if len(payload) < length:  # torn by a crash: not a record
                    break
                out.write(payload)
                entries.write(header)
            out.flush()
            os.fsync(out.fileno())
            entries.flush()
            os.fsync(entries.fileno())
        legacy.unlink()
