"""Detection, incremental UTF-8 decoding and the text/Markdown path of iter_chunks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest

from summarizer.errors import ErrorCode, LimitExceeded, NoTextError, UnsupportedDocument
from summarizer.ingest import IngestOptions, IngestProgress, detect_kind, iter_chunks, read_document
from summarizer.ingest.text import NewlineNormalizer, TextStreamReader, Utf8StreamDecoder
from summarizer.ingest.types import Chunk

SAMPLE = "Grüße, 世界! Emoji 🙂 and café.\r\nSecond line\rThird line\n\fPage two ☃\n"


async def pieces(items: Iterable[bytes | str]) -> AsyncIterator[bytes | str]:
    for item in items:
        await asyncio.sleep(0)
        yield item


async def collect(
    items: Iterable[bytes | str],
    *,
    filename: str = "doc.txt",
    media_type: str = "text/plain",
    options: IngestOptions | None = None,
    progress: list[IngestProgress] | None = None,
) -> list[Chunk]:
    return [
        chunk
        async for chunk in iter_chunks(
            pieces(items),
            filename=filename,
            media_type=media_type,
            options=options or IngestOptions(chunk_size=200, chunk_overlap=20),
            on_progress=progress.append if progress is not None else None,
        )
    ]


def split_every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


# -- detect_kind ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "media_type", "head", "kind"),
    [
        ("a.pdf", "application/pdf", b"%PDF-1.7\n...", "pdf"),
        ("a.bin", "application/octet-stream", b"\n\n%PDF-1.4", "pdf"),
        ("", "", b"x" * 500 + b"%PDF-1.5", "pdf"),  # header within the first KiB
        ("notes.txt", "text/plain; charset=utf-8", b"hello", "text"),
        ("notes.md", "text/markdown", b"# Title", "markdown"),
        ("notes.md", "", b"# Title", "markdown"),
        ("notes.markdown", "application/octet-stream", b"# Title", "markdown"),
        ("notes", "", b"plain words", "text"),
        ("data.csv", "application/vnd.ms-excel", b"a,b\n1,2", "text"),
        ("readme.md", "text/plain", b"# Title", "markdown"),
    ],
)
def test_detect_kind(filename: str, media_type: str, head: bytes, kind: str) -> None:
    assert detect_kind(filename, media_type, head) == kind


@pytest.mark.parametrize(
    ("filename", "media_type", "head", "error", "code"),
    [
        ("a.pdf", "application/pdf", b"", NoTextError, ErrorCode.EMPTY_DOCUMENT),
        ("a.pdf", "application/pdf", b"hello, not a pdf", UnsupportedDocument, ErrorCode.NOT_A_PDF),
        ("a.pdf", "", b"random \x00 bytes", UnsupportedDocument, ErrorCode.NOT_A_PDF),
        ("a.pdf", "application/pdf", b"x" * 1100 + b"%PDF-", UnsupportedDocument, ErrorCode.NOT_A_PDF),
        ("a.txt", "text/plain", b"abc\x00\x01\x02def", UnsupportedDocument, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
        ("a.txt", "text/plain", b"PK\x03\x04rest", UnsupportedDocument, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
        ("a.txt", "", b"\xff\xfeh\x00i\x00", UnsupportedDocument, ErrorCode.BAD_ENCODING),
        ("a.png", "image/png", b"\x89PNG\r\n\x1a\n", UnsupportedDocument, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
        ("a.doc", "application/msword", b"text-ish", UnsupportedDocument, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    ],
)
def test_detect_kind_refuses(
    filename: str, media_type: str, head: bytes, error: type[Exception], code: ErrorCode
) -> None:
    with pytest.raises(error) as info:
        detect_kind(filename, media_type, head)
    assert info.value.code == code  # type: ignore[attr-defined]


# -- decoding -------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64])
def test_decoder_handles_characters_split_across_slices(size: int) -> None:
    data = ("\ufeff" + SAMPLE).encode("utf-8")
    decoder = Utf8StreamDecoder()
    text = "".join(decoder.decode(part) for part in split_every(data, size)) + decoder.decode(b"", final=True)
    assert text == SAMPLE  # byte-order mark dropped
    assert decoder.bytes_seen == len(data)


def test_decoder_every_split_point() -> None:
    data = "a€😀中b".encode()
    for cut in range(len(data) + 1):
        decoder = Utf8StreamDecoder()
        text = decoder.decode(data[:cut]) + decoder.decode(data[cut:], final=True)
        assert text == "a€😀中b"


@pytest.mark.parametrize("size", [1, 2, 4, 100])
def test_invalid_utf8_reports_the_byte_offset(size: int) -> None:
    data = "héllo wörld ".encode() * 3 + b"\xff tail"
    decoder = Utf8StreamDecoder()
    with pytest.raises(UnsupportedDocument) as info:
        for part in split_every(data, size):
            decoder.decode(part)
    assert info.value.code == ErrorCode.BAD_ENCODING
    offset = data.index(b"\xff")
    assert f"byte offset {offset}" in info.value.message
    assert "0xff" in info.value.message


def test_truncated_character_at_the_end_is_an_error() -> None:
    decoder = Utf8StreamDecoder()
    assert decoder.decode(b"ab\xe2\x82") == "ab"
    assert decoder.pending == 2
    with pytest.raises(UnsupportedDocument, match="ends inside a multi-byte character at byte offset 2"):
        decoder.decode(b"", final=True)


def test_newlines_are_normalized_across_pieces() -> None:
    normalizer = NewlineNormalizer()
    out = "".join(normalizer.feed(part) for part in ["a\r", "\nb\r", "c\r\n", "\r", "\r\nd"])
    assert out == "a\nb\nc\n\n\nd"


def test_reader_splits_pages_on_form_feeds() -> None:
    reader = TextStreamReader()
    runs = [*reader.feed(b"one\r\n"), *reader.feed("still one\ftwo"), *reader.feed(b"\f\fsix?")]
    runs += reader.finish()
    assert [(run.page, run.text) for run in runs] == [
        (1, "one\n"),
        (1, "still one"),
        (2, "two"),
        (4, "six?"),
    ]
    assert reader.page == 4


def test_reader_refuses_text_message_inside_a_character() -> None:
    reader = TextStreamReader()
    reader.feed("é".encode()[:1])
    with pytest.raises(UnsupportedDocument, match="cut off at byte offset 0") as info:
        reader.feed("more")
    assert info.value.code == ErrorCode.BAD_ENCODING


# -- iter_chunks on text --------------------------------------------------------


async def test_text_chunks_have_exact_offsets_and_pages() -> None:
    text = "\f".join(f"Page {n}. " + "Words of the page go here. " * 30 for n in range(1, 6))
    data = text.encode("utf-8")
    progress: list[IngestProgress] = []
    chunks = await collect(split_every(data, 333), progress=progress)
    full = text.replace("\f", "\n\n")
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    assert all(full[chunk.start : chunk.end] == chunk.text for chunk in chunks)
    assert chunks[0].first_page == 1 and chunks[-1].last_page == 5
    assert len(progress) == len(split_every(data, 333)) + 1
    assert progress[-1].finished and progress[-1].chunks == len(chunks)
    assert progress[-1].characters == len(text) - 4
    assert not any(p.finished for p in progress[:-1])


async def test_text_chunks_flow_before_the_upload_ends() -> None:
    """Chunks are yielded while the client is still sending (the rest waits on an event)."""
    release = asyncio.Event()
    paragraph = ("A sentence about streaming ingestion. " * 20 + "\n\n").encode()

    async def upload() -> AsyncIterator[bytes]:
        sent = 0
        while sent < 20_000:
            yield paragraph
            sent += len(paragraph)
        await release.wait()
        for _ in range(10):
            yield paragraph

    chunks: list[Chunk] = []

    async def consume() -> None:
        async for chunk in iter_chunks(
            upload(),
            filename="long.txt",
            media_type="text/plain",
            options=IngestOptions(chunk_size=1000, chunk_overlap=100),
        ):
            chunks.append(chunk)
            if not release.is_set():
                assert chunk.index == 0
                release.set()  # only reachable if a chunk arrived before the upload ended

    await asyncio.wait_for(consume(), timeout=10)  # without early chunks this would wait forever
    assert len(chunks) > 20


async def test_text_messages_are_accepted() -> None:
    parts = ["# Title\n\n", "Some *markdown* text.\n", "More."]
    chunks = await collect(parts, filename="a.md", media_type="")
    assert [chunk.text for chunk in chunks] == ["# Title\n\nSome *markdown* text.\nMore."]


async def test_markdown_uses_heading_boundaries() -> None:
    body = "".join(f"## Part {i}\n\n" + "Text of the part. " * 20 + "\n\n" for i in range(8))
    chunks = await collect([body.encode()], filename="doc.md", media_type="text/markdown")
    assert sum(chunk.text.startswith("## Part") for chunk in chunks) >= 6


@pytest.mark.parametrize("items", [[], [b""], [b"   \n\n\t  "], ["\n", "  "]])
async def test_empty_or_blank_text_is_an_empty_document(items: list[bytes | str]) -> None:
    with pytest.raises(NoTextError) as info:
        await collect(items)
    assert info.value.code == ErrorCode.EMPTY_DOCUMENT


async def test_invalid_utf8_mid_stream_is_bad_encoding() -> None:
    data = b"x" * 5000 + b"\xc3\x28" + b"y" * 100
    with pytest.raises(UnsupportedDocument, match="byte offset 5000") as info:
        await collect(split_every(data, 700))
    assert info.value.code == ErrorCode.BAD_ENCODING


async def test_nul_after_the_first_kilobyte_is_binary() -> None:
    data = b"text " * 400 + b"\x00\x00 binary"
    with pytest.raises(UnsupportedDocument) as info:
        await collect(split_every(data, 512))
    assert info.value.code == ErrorCode.UNSUPPORTED_MEDIA_TYPE


async def test_text_declared_as_pdf_is_not_a_pdf() -> None:
    with pytest.raises(UnsupportedDocument) as info:
        await collect([b"Just some text"], filename="x.pdf", media_type="application/pdf")
    assert info.value.code == ErrorCode.NOT_A_PDF


async def test_character_limit() -> None:
    options = IngestOptions(chunk_size=100, chunk_overlap=0, max_text_chars=1000)
    with pytest.raises(LimitExceeded, match="1,000 characters") as info:
        await collect([b"abcd " * 150, b"abcd " * 150], options=options)
    assert info.value.code == ErrorCode.DOCUMENT_TOO_LARGE


async def test_bad_chunk_options_fail_before_reading() -> None:
    read = False

    async def upload() -> AsyncIterator[bytes]:
        nonlocal read
        read = True
        yield b"text"

    with pytest.raises(ValueError, match=r"chunk_overlap \(500\) must be smaller than chunk_size \(500\)"):
        async for _ in iter_chunks(
            upload(),
            filename="a.txt",
            media_type="text/plain",
            options=IngestOptions(chunk_size=500, chunk_overlap=500),
        ):
            pass
    assert not read


def test_read_document_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\n" + "A line of notes.\n" * 300, encoding="utf-8")
    progress: list[IngestProgress] = []
    chunks = read_document(
        path, options=IngestOptions(chunk_size=1000, chunk_overlap=0), on_progress=progress.append
    )
    assert len(chunks) >= 5 and chunks[0].text.startswith("# Notes")
    assert progress[-1].finished
