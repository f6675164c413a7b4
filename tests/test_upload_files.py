"""The embedded store's upload files: aligned payloads, torn tails, files of earlier versions."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from summarizer.store.upload_files import DROP_STEP, UploadFiles

FRAME = 64 * 1024


@pytest.fixture
def files(tmp_path: Path) -> UploadFiles:
    return UploadFiles(tmp_path)


def test_payloads_lie_back_to_back_so_fixed_size_frames_start_on_page_boundaries(
    files: UploadFiles, tmp_path: Path
) -> None:
    files.create("j")
    frames = [bytes([i]) * FRAME for i in range(3)]
    for frame in frames:
        files.append("j", frame)
    data = (tmp_path / "j.data").read_bytes()
    assert data == b"".join(frames)  # no header between payloads: frame k starts at k * 64 KiB
    assert (tmp_path / "j.idx").stat().st_size == 5 * len(frames)
    assert list(files.records("j")) == frames


@pytest.mark.parametrize(
    ("data_tail", "index_tail"),
    [
        (b"abc", b""),  # killed after part of the payload
        (b"abcdefgh", b""),  # after the whole payload, before its entry
        (b"abcdefgh", b"B\x00"),  # in the middle of its entry
        (b"abc", b"B\x00\x00\x00\x08"),  # a whole entry, part of the payload (a power cut)
    ],
)
def test_a_torn_tail_is_left_out_and_repaired_away(
    files: UploadFiles, tmp_path: Path, data_tail: bytes, index_tail: bytes
) -> None:
    files.create("j")
    files.append("j", b"first")
    files.append("j", "sécond")
    files.close("j")
    with (tmp_path / "j.data").open("ab") as f:
        f.write(data_tail)
    with (tmp_path / "j.idx").open("ab") as f:
        f.write(index_tail)
    assert list(files.records("j")) == [b"first", "sécond"]
    assert files.repair("j") == (5 + len("sécond".encode()), 2)
    assert (tmp_path / "j.data").stat().st_size == 5 + len("sécond".encode())
    assert (tmp_path / "j.idx").stat().st_size == 10
    files.append("j", b"third")  # appends land after the repaired tail
    assert list(files.records("j", 1)) == ["sécond", b"third"]


def test_an_earlier_versions_file_is_converted_at_first_touch(files: UploadFiles, tmp_path: Path) -> None:
    header = struct.Struct(">cI")
    legacy = tmp_path / "old.bin"
    text = "héllo".encode()
    legacy.write_bytes(
        header.pack(b"B", 4)
        + b"\x00\x01\x02\x03"
        + header.pack(b"T", len(text))
        + text
        + header.pack(b"B", 100)
        + b"torn"  # a crash mid-record
    )
    assert list(files.records("old")) == [b"\x00\x01\x02\x03", "héllo"]
    assert not legacy.exists()
    assert files.repair("old") == (4 + len(text), 2)
    files.append("old", b"new")
    assert list(files.records("old")) == [b"\x00\x01\x02\x03", "héllo", b"new"]


def test_create_starts_over_and_delete_removes_every_file(files: UploadFiles, tmp_path: Path) -> None:
    files.create("j")
    files.append("j", b"x")
    files.create("j")
    assert list(files.records("j")) == [] and files.repair("j") == (0, 0)
    (tmp_path / "j.bin").write_bytes(b"")
    files.delete("j")
    assert list(tmp_path.iterdir()) == []
    assert list(files.records("j")) == [] and files.repair("j") == (0, 0)


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise on this platform")
def test_written_pages_are_dropped_from_the_page_cache_every_step(
    files: UploadFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[int, int, int]] = []
    real = os.posix_fadvise

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        calls.append((offset, length, advice))
        real(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", fadvise)
    files.create("j")
    frames = 3 * DROP_STEP // FRAME
    for i in range(frames):
        files.append("j", bytes([i % 256]) * FRAME)
    # One per DROP_STEP, from the pages handed to writeback at the drop before (not the whole file).
    drop = os.POSIX_FADV_DONTNEED
    assert calls == [(0, 0, drop), (0, 0, drop), (DROP_STEP, 0, drop)]
    assert sum(1 for _ in files.records("j")) == frames  # read back from disk after the drops
    files.close("j")  # reopened (a recovered upload goes on): offsets count from the file's size
    calls.clear()
    for i in range(frames):
        files.append("j", bytes([i % 256]) * FRAME)
    start = 3 * DROP_STEP
    assert calls == [(start, 0, drop), (start, 0, drop), (start + DROP_STEP, 0, drop)]
    assert sum(1 for _ in files.records("j")) == 2 * frames


def test_records_appended_together_are_one_writev_and_survive_short_writes(
    files: UploadFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch is one ``writev`` of its payloads and one ``write`` of its entries; a short
    ``writev`` (a signal) continues mid-buffer, and the records read back whole."""
    real_writev, real_write = os.writev, os.write
    writevs: list[int] = []
    writes: list[int] = []

    def short_writev(fd: int, buffers: list[memoryview]) -> int:
        writevs.append(len(buffers))
        # Write a little over half of what was asked: ends in the middle of some buffer.
        want = sum(len(b) for b in buffers) // 2 + 7
        flat = b"".join(bytes(b) for b in buffers)[:want]
        return real_writev(fd, [flat])

    def counting_write(fd: int, data: bytes) -> int:
        writes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "writev", short_writev)
    monkeypatch.setattr(os, "write", counting_write)
    files.create("j")
    batch = [bytes([i]) * (FRAME + i) for i in range(8)]
    batch.insert(3, b"")
    files.append_many("j", batch)
    assert writevs[0] == 8  # the empty payload is not a buffer
    assert len(writevs) > 1, "no writev was short"
    assert writes == [5 * len(batch)]  # every entry in one write
    assert (tmp_path / "j.data").read_bytes() == b"".join(batch)
    assert list(files.records("j")) == batch
    assert files.repair("j") == (sum(map(len, batch)), len(batch))
