"""Where a PDF's bytes are read from: a file, the store's own or a temporary one.

A PDF cannot be parsed before its last byte (the cross-reference table is at the
end), so ingestion has to keep the whole upload until then. Collecting the pieces
in memory, as earlier versions did, cost the server the document's size per
upload, and on a VM that returns free memory to its host every fresh page is a
page fault: 80 MiB PDF uploads into a fresh server process ran at 290–550 MiB/s
with 1.9–3.8 ms of CPU per MiB; read from the store's file instead, 590–850 MiB/s
at 1.1–1.9 ms (six uploads each, ``bench/upload.py``'s client, one run each).

So a PDF is always read from a file, as a :class:`DocumentFile` that the
parent streams to each PDF worker. An upload whose bytes a store keeps in a file
anyway (the embedded store's ``<job_id>.data``, the payloads back to back) says
so with :class:`StoredUpload`, and ingestion only counts its pieces. Other
uploads (the shared Redis store, a script's async iterator) are written to a
temporary file as they come (one more local write per byte), deleted when
ingestion ends. Either way the server holds a few pieces of a PDF, not the PDF.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Protocol, runtime_checkable

__all__ = ["COPY_PIECE_BYTES", "DocumentFile", "FileUpload", "StoredUpload"]

COPY_PIECE_BYTES: Final = 1 << 20
"""Bytes read from a :class:`DocumentFile` at a time (1 MiB)."""


@runtime_checkable
class StoredUpload(Protocol):
    """An upload (an async iterator of pieces) whose bytes are also in a file, back to back."""

    def document_path(self) -> Path | None:
        """The file whose first bytes are the pieces yielded so far, in order; ``None`` if there is none.

        The answer must not change during the upload: ingestion asks once,
        before the first piece after the first KiB, and then drops the pieces.
        """


@dataclass(frozen=True, slots=True)
class DocumentFile:
    """A document's bytes in a file: the first ``size`` bytes of ``path``.

    Attributes:
        path: The file (it may be longer: only ``size`` bytes are read).
        size: The document's length (bytes).
    """

    path: Path
    size: int

    def __len__(self) -> int:
        return self.size

    def copy_to(self, stream: IO[bytes]) -> None:
        """Write the document's ``size`` bytes to ``stream`` in :data:`COPY_PIECE_BYTES` pieces.

        Raises:
            OSError: The file cannot be read, or ``stream`` is closed
                (``BrokenPipeError``).
            EOFError: The file holds fewer than ``size`` bytes.
        """
        left = self.size
        with self.path.open("rb", buffering=0) as file:
            while left:
                piece = file.read(min(left, COPY_PIECE_BYTES))
                if not piece:
                    raise EOFError(f"{self.path} ends {left:,} bytes before the document's {self.size:,}")
                stream.write(piece)
                left -= len(piece)

    def tail(self, count: int) -> bytes:
        """The document's last ``count`` bytes (fewer for a shorter document); ``b""`` if unreadable."""
        try:
            with self.path.open("rb", buffering=0) as file:
                start = max(0, self.size - count)
                return os.pread(file.fileno(), self.size - start, start)
        except OSError:
            return b""


class FileUpload:
    """A file on disk as an upload: its bytes in pieces, and the file itself (a :class:`StoredUpload`).

    Args:
        path: The file.
        piece_bytes: Size of the pieces yielded (bytes, default 1 MiB).

    Raises:
        OSError: When iterated, if the file cannot be read.
    """

    def __init__(self, path: Path, piece_bytes: int = COPY_PIECE_BYTES) -> None:
        self.path = path
        self.piece_bytes = piece_bytes

    def document_path(self) -> Path:
        """The file itself."""
        return self.path

    async def _pieces(self) -> AsyncIterator[bytes]:
        with self.path.open("rb") as file:
            while piece := file.read(self.piece_bytes):
                yield piece

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._pieces()
