"""A PDF upload is read from a file (the store's, or a temporary one), never held in memory."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import tempfile
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pypdf import PdfReader, PdfWriter

from summarizer.errors import ErrorCode, StorageError, SummarizerError
from summarizer.ingest import IngestOptions, iter_chunks
from summarizer.ingest.pdf import PdfPage, extract_pages
from summarizer.ingest.pipeline import SPOOL_PREFIX
from summarizer.ingest.source import DocumentFile, FileUpload, StoredUpload
from summarizer.ingest.types import Chunk
from summarizer.jobs.upload import Upload
from summarizer.store.sqlite import SqliteStore

CORPUS = Path(__file__).parent.parent.parent / "shared" / "corpus"
MiB = 1024 * 1024
PADDING = 24 * MiB


@pytest.fixture(scope="module")
def big_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two pages of tracemonkey.pdf and a 24 MiB attachment of random bytes (not compressible)."""
    writer = PdfWriter()
    reader = PdfReader(CORPUS / "pdf" / "tracemonkey.pdf")
    for page in reader.pages[:2]:
        writer.add_page(page)
    writer.add_attachment("padding.bin", os.urandom(PADDING))
    out = io.BytesIO()
    writer.write(out)
    path = tmp_path_factory.mktemp("source") / "big.pdf"
    path.write_bytes(out.getvalue())
    return path


class _Stored:
    """An upload in 64 KiB pieces whose bytes are also in ``path`` (what the embedded store gives)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def document_path(self) -> Path:
        return self.path

    async def _pieces(self) -> AsyncIterator[bytes]:
        with self.path.open("rb") as file:
            while piece := file.read(64 * 1024):
                yield piece
                await asyncio.sleep(0)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._pieces()


async def _plain(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while piece := file.read(64 * 1024):
            yield piece
            await asyncio.sleep(0)


async def _chunks_and_peak(upload: object, name: str) -> tuple[list[Chunk], int]:
    tracemalloc.start()
    try:
        chunks = [
            chunk
            async for chunk in iter_chunks(
                upload,  # type: ignore[arg-type]
                filename=name,
                media_type="application/pdf",
                options=IngestOptions(ocr="off"),
            )
        ]
        return chunks, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_a_pdf_upload_is_never_held_in_memory(
    big_pdf: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A 24 MiB PDF, read from the store's file or spooled to a temporary file: the same
    chunks, and the peak of this process's allocations stays a few pieces (below 8 MiB)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert isinstance(_Stored(big_pdf), StoredUpload)
    stored, stored_peak = await _chunks_and_peak(_Stored(big_pdf), big_pdf.name)
    assert not list(tmp_path.glob(SPOOL_PREFIX + "*"))  # the store's file is used as it is
    plain, plain_peak = await _chunks_and_peak(_plain(big_pdf), big_pdf.name)
    assert stored and [c.text for c in stored] == [c.text for c in plain]
    assert [c.pages for c in stored] == [c.pages for c in plain]
    assert stored_peak < 8 * MiB, f"peak {stored_peak / MiB:.1f} MiB while reading a stored PDF"
    assert plain_peak < 8 * MiB, f"peak {plain_peak / MiB:.1f} MiB while spooling a PDF"


async def test_the_spool_file_lives_while_the_pdf_is_read_and_goes_with_it(
    big_pdf: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One temporary file of the PDF's size during ingestion; deleted at the end, and when the
    consumer stops early."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for stop_early in (False, True):
        seen: list[list[int]] = []
        chunks = iter_chunks(
            _plain(big_pdf),
            filename="big.pdf",
            media_type="application/pdf",
            options=IngestOptions(ocr="off"),
        )
        async with contextlib.aclosing(chunks):
            async for _ in chunks:
                seen.append([p.stat().st_size for p in tmp_path.glob(SPOOL_PREFIX + "*")])
                if stop_early:
                    break
        assert seen and seen[0] == [big_pdf.stat().st_size]
        assert not list(tmp_path.glob(SPOOL_PREFIX + "*"))


async def test_a_spool_that_cannot_be_written_is_a_storage_error(
    big_pdf: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with pytest.raises(StorageError, match="could not keep the PDF until it is parsed") as caught:
        await _chunks_and_peak(_plain(big_pdf), big_pdf.name)
    assert caught.value.code is ErrorCode.STORAGE_ERROR and caught.value.retryable


async def test_read_document_streams_the_file_to_the_workers(big_pdf: Path) -> None:
    """``FileUpload`` (what ``read_document`` uses) is a stored upload of the file itself."""
    _, peak = await _chunks_and_peak(FileUpload(big_pdf), big_pdf.name)
    assert peak < 8 * MiB  # 1 MiB pieces


def test_document_file_copies_exactly_its_size_and_reads_its_tail(tmp_path: Path) -> None:
    path = tmp_path / "doc"
    path.write_bytes(b"%PDF" + bytes(range(256)) * 9000 + b"torn tail")
    size = path.stat().st_size - len(b"torn tail")
    document = DocumentFile(path, size)
    out = io.BytesIO()
    document.copy_to(out)
    assert out.getvalue() == path.read_bytes()[:size] and len(document) == size
    assert document.tail(3) == bytes([253, 254, 255])
    with pytest.raises(EOFError, match="ends 10 bytes before"):
        DocumentFile(path, path.stat().st_size + 10).copy_to(io.BytesIO())
    assert DocumentFile(tmp_path / "missing", 5).tail(4) == b""


async def test_an_unreadable_document_file_is_an_internal_error_that_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "gone.data"
    with pytest.raises(SummarizerError) as caught:
        async for _ in extract_pages(DocumentFile(missing, 1000)):
            pass
    assert caught.value.code is ErrorCode.INTERNAL_ERROR
    assert "gone.data" in caught.value.message


async def test_a_truncated_stored_pdf_still_says_it_looks_truncated(tmp_path: Path) -> None:
    whole = (CORPUS / "pdf" / "tracemonkey.pdf").read_bytes()
    path = tmp_path / "half.data"
    path.write_bytes(whole[: len(whole) // 2] + b"%%EOF")  # the file's tail is past the document
    with pytest.raises(SummarizerError) as caught:
        async for event in extract_pages(DocumentFile(path, len(whole) // 2)):
            assert not isinstance(event, PdfPage) or event.number < 30
    assert "looks truncated" in caught.value.message


async def test_an_upload_stream_names_the_embedded_stores_file(tmp_path: Path) -> None:
    """Upload.stream() on the SQLite store is a stored upload whose file holds what it yields."""
    store = SqliteStore(tmp_path / "store")
    try:
        store.create_job("j", {}, "uploading")
        acks: list[object] = []
        upload = Upload(
            "j",
            store,
            max_document_bytes=10 * MiB,
            ack_window_bytes=MiB,
            declared_size=None,
            on_ack=acks.append,
        )
        frames = [bytes([i]) * 70_000 for i in range(1, 6)]
        await upload.feed_many(frames)
        await upload.end(None)
        stream = upload.stream()
        assert isinstance(stream, StoredUpload)
        taken = [record async for record in stream]
        path = stream.document_path()
        assert taken == frames and path is not None
        assert path.read_bytes()[: sum(map(len, frames))] == b"".join(frames)
    finally:
        store.close()
