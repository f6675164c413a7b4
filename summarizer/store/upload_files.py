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
Ingestion takes a text upload's pieces from memory as they come; a PDF, which
can only be parsed whole, is streamed from the data file to its workers once the
upload ended (:mod:`summarizer.ingest.source`), and a recovered job re-reads the
file. Writing into pages the kernel recycles is
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
Several records at once (:meth:`UploadFiles.append_many`) are one ``writev`` of
their payloads, then one ``write`` of their entries: fewer system calls per
frame, and the same torn tails.

Files of earlier versions (``<job_id>.bin``, header and payload interleaved) are
converted to this layout the first time they are touched, torn tail excluded.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterator, Sequence
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

_IOV_MAX = 1024
"""Buffers per ``writev`` (Linux's ``IOV_MAX``)."""


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write all of ``data`` to the unbuffered file ``fd``; a short write (a signal) writes the rest.

    Raises:
        OSError: The write failed (``ENOSPC``, ``EIO``, ...).
    """
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _writev_all(fd: int, buffers: list[bytes]) -> int:
    """Write ``buffers`` back to back to ``fd`` with as few ``writev`` calls as the kernel
    allows (at most ``IOV_MAX`` buffers each; a short write continues where it stopped).

    Returns:
        The bytes written (all of them).

    Raises:
        OSError: A write failed (``ENOSPC``, ``EIO``, ...).
    """
    if len(buffers) == 1:
        _write_all(fd, buffers[0])
        return len(buffers[0])
    views = [memoryview(b) for b in buffers if b]
    total = sum(len(v) for v in views)
    while views:
        written = os.writev(fd, views[:_IOV_MAX])
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if written:
            views[0] = views[0][written:]
    return total


def _decode(kind: bytes, payload: bytes) -> UploadRecord:
    return payload.decode("utf-8", "surrogatepass") if kind == _TEXT else payload


@dataclass(slots=True)
class _Open:
    data: IO[bytes]
    index: IO[bytes]
    start: int = 0
    """Size of ``data`` when it was opened (bytes): where this handle's writes begin."""
    written: int = 0
    """Bytes written to ``data`` through this handle."""
    dropped_at: int = 0
    """``written`` at the last page-cache drop."""
    drop_from: int = 0
    """``written`` at the drop before that: the next drop covers the file from there on."""


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
        self._converted: set[str] = set()
        """Jobs known to have no file of an earlier version (checked once, not per read)."""

    def _paths(self, job_id: str) -> tuple[Path, Path]:
        return self.directory / f"{job_id}.data", self.directory / f"{job_id}.idx"

    def _legacy_path(self, job_id: str) -> Path:
        """Where an earlier version kept the job's upload (header and payload interleaved)."""
        return self.directory / f"{job_id}.bin"

    def data_path(self, job_id: str) -> Path:
        """The file of the job's payloads, back to back (an earlier version's file is converted first)."""
        self._migrate(job_id)
        return self._paths(job_id)[0]

    def create(self, job_id: str) -> None:
        """Start an empty upload for ``job_id`` (an earlier one of that id is dropped).

        Raises:
            OSError: The files cannot be written.
        """
        self.close(job_id)
        for path in self._paths(job_id):
            path.write_bytes(b"")
        with contextlib.suppress(FileNotFoundError):
            self._legacy_path(job_id).unlink()
        self._converted.add(job_id)

    def append(self, job_id: str, record: UploadRecord) -> None:
        """Append one record: its payload, then its index entry. Both reach the operating system
        before this returns, so they survive the process being killed.

        Raises:
            OSError: A write failed (``ENOSPC``, ``EIO``, ...); the record is torn or absent,
                and :meth:`repair` drops what of it was written.
        """
        self.append_many(job_id, (record,))

    def append_many(self, job_id: str, records: Sequence[UploadRecord]) -> None:
        """Append records in order: one ``writev`` of their payloads, then one ``write`` of
        their index entries (as :meth:`append` does for one).

        Raises:
            OSError: A write failed; every record of the call is torn or absent, and
                :meth:`repair` drops what of them was written.
        """
        payloads: list[bytes] = []
        entries = bytearray()
        for record in records:
            if isinstance(record, str):
                kind, payload = _TEXT, record.encode("utf-8", "surrogatepass")
            else:
                kind, payload = _BINARY, record
            payloads.append(payload)
            entries += _ENTRY.pack(kind, len(payload))
        handles = self._open.get(job_id)
        if handles is None:
            self._migrate(job_id)
            data, index = self._paths(job_id)
            out = data.open("ab", buffering=0)
            handles = _Open(out, index.open("ab", buffering=0), start=os.fstat(out.fileno()).st_size)
            self._open[job_id] = handles
        handles.written += _writev_all(handles.data.fileno(), payloads)
        _write_all(handles.index.fileno(), entries)
        if _CAN_DROP and handles.written - handles.dropped_at >= DROP_STEP:
            # Starts writeback of the pages written since the last drop and drops the clean ones:
            # those handed to writeback at the last drop, by now written. Length 0: to the end.
            # A range, not the whole file: the kernel walks every page of the range.
            os.posix_fadvise(
                handles.data.fileno(), handles.start + handles.drop_from, 0, os.POSIX_FADV_DONTNEED
            )
            handles.drop_from, handles.dropped_at = handles.dropped_at, handles.written

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
        self._converted.discard(job_id)
        for path in (*self._paths(job_id), self._legacy_path(job_id)):
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
        if job_id in self._converted:
            return
        legacy = self._legacy_path(job_id)
        if not legacy.exists():
            self._converted.add(job_id)
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
        self._converted.add(job_id)
