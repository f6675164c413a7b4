"""IncrementalChunker: exact offsets, page ranges, early emission, packing, validation."""

from __future__ import annotations

import itertools
import math
import random
import re
from pathlib import Path

import pytest
from langchain_text_splitters import RecursiveCharacterTextSplitter

from summarizer.ingest.chunking import PAGE_SEPARATOR, IncrementalChunker
from summarizer.ingest.clean import clean_pages_batch
from summarizer.ingest.types import Chunk, Page

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "x" * 25, "Ωmega", "中文字", "🙂"]


def random_pages(seed: int, count: int, max_words: int = 700) -> list[Page]:
    rng = random.Random(seed)
    pages = []
    for number in range(1, count + 1):
        parts = []
        for _ in range(rng.randint(0, max_words)):
            parts.append(rng.choice(WORDS))
            parts.append(rng.choices([" ", "\n", "\n\n", "  "], weights=[20, 3, 1, 1])[0])
        pages.append(Page(number, "".join(parts)))
    return pages


def full_text(pages: list[Page]) -> str:
    return PAGE_SEPARATOR.join(page.text for page in pages if page.text.strip())


def page_of_offsets(pages: list[Page]) -> list[int]:
    """Page number of every character of full_text (a separator belongs to the page before)."""
    owners: list[int] = []
    for page in pages:
        if not page.text.strip():
            continue
        if owners:
            owners += [owners[-1]] * len(PAGE_SEPARATOR)
        owners += [page.number] * len(page.text)
    return owners


def chunk_all(pages: list[Page], size: int, overlap: int) -> list[Chunk]:
    chunker = IncrementalChunker(size, overlap)
    chunks: list[Chunk] = []
    for page in pages:
        chunks += chunker.feed(page)
    return chunks + chunker.finish()


@pytest.mark.parametrize(
    ("seed", "size", "overlap"), [(1, 500, 50), (2, 1000, 0), (3, 300, 299), (4, 4000, 200)]
)
def test_offsets_are_exact_and_pages_right(seed: int, size: int, overlap: int) -> None:
    pages = random_pages(seed, 30)
    text = full_text(pages)
    owners = page_of_offsets(pages)
    chunks = chunk_all(pages, size, overlap)

    assert chunks, "random pages produce text"
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.end - chunk.start == len(chunk.text) <= size
        assert chunk.text == chunk.text.strip()
        assert chunk.first_page == owners[chunk.start]
        assert chunk.last_page == owners[chunk.end - 1]
        assert chunk.pages == (chunk.first_page, chunk.last_page)
    starts = [chunk.start for chunk in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_every_visible_character_is_covered() -> None:
    pages = random_pages(7, 25)
    text = full_text(pages)
    covered = bytearray(len(text))
    for chunk in chunk_all(pages, 600, 60):
        covered[chunk.start : chunk.end] = b"\x01" * (chunk.end - chunk.start)
    missing = [i for i, char in enumerate(text) if not char.isspace() and not covered[i]]
    assert missing == []


def test_overlap_is_kept_between_neighbours() -> None:
    pages = [Page(1, " ".join(f"word{i}" for i in range(3000)))]
    chunks = chunk_all(pages, 500, 100)
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end, "neighbouring chunks share text"
        assert before.end - after.start <= 100


def test_a_small_document_is_one_chunk() -> None:
    pages = random_pages(11, 3, max_words=200)
    text = full_text(pages)
    assert len(text) < 3000
    assert [chunk.text for chunk in chunk_all(pages, 3000, 100)] == [text.strip()]


def test_a_chunk_leaves_as_soon_as_chunk_size_characters_are_there() -> None:
    chunker = IncrementalChunker(1000, 100)
    words = " ".join(f"w{i:03d}" for i in range(400))  # 1,999 characters
    assert chunker.append(words[:1000], 1) == []  # the window is not complete yet
    (chunk,) = chunker.append(words[1000:1001], 1)  # 1,001st character: the first chunk is cut
    assert chunk.start == 0 and len(chunk.text) <= 1000
    assert chunker.buffered <= 1000 and chunker.needed >= 1


def test_buffer_stays_bounded_and_chunks_flow_before_the_end() -> None:
    chunker = IncrementalChunker(1000, 100)
    emitted_before_finish = 0
    for page in random_pages(5, 40):
        emitted_before_finish += len(chunker.feed(page))
        assert chunker.buffered <= 1000
    assert emitted_before_finish > 0
    assert chunker.chunks_emitted == emitted_before_finish
    assert chunker.finish()
    assert chunker.finish() == []


def test_chunks_break_at_paragraphs_then_sentences_when_one_is_near() -> None:
    sentence = "The quick brown fox jumps over the lazy dog again. "  # 51 characters
    paragraphs = [(sentence * 9).strip() for _ in range(20)]  # 458 characters each
    chunks = chunk_all([Page(1, "\n\n".join(paragraphs))], 1000, 100)
    for chunk in chunks[:-1]:
        assert chunk.text.endswith("dog again."), chunk.text[-30:]
    no_paragraphs = chunk_all([Page(1, sentence * 200)], 1000, 100)
    assert all(chunk.text.endswith("dog again.") for chunk in no_paragraphs[:-1])
    assert all(len(chunk.text) >= 940 for chunk in no_paragraphs[:-1])


CORPUS = Path(__file__).parent.parent.parent / "shared" / "corpus" / "pdf"


@pytest.mark.parametrize(
    "name", ["tracemonkey.pdf", "freeculture.pdf", "GeoBase_NHNC1_Data_Model_UML_EN.pdf"]
)
def test_corpus_chunks_are_packed(name: str) -> None:
    """At most 1.15 x ceil(characters / (size - overlap)) chunks, never more than stock langchain."""
    from summarizer.ingest import read_document
    from summarizer.ingest.types import IngestOptions

    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"corpus file {path} not available")
    options = IngestOptions()
    chunks = read_document(path, options=options)
    characters = chunks[-1].end  # the cleaned document's length
    ideal = math.ceil(characters / (options.chunk_size - options.chunk_overlap))
    assert len(chunks) <= 1.15 * ideal, (len(chunks), ideal)
    assert all(len(chunk.text) <= options.chunk_size for chunk in chunks)

    raw = "\n\n".join(page.text for page in _pages(path))
    stock = RecursiveCharacterTextSplitter(chunk_size=options.chunk_size, chunk_overlap=options.chunk_overlap)
    assert len(chunks) <= len(stock.split_text(raw))
    # Chunks end at a sentence, line or paragraph end far more often than not.
    batch = chunk_all(clean_pages_batch(_pages(path)), options.chunk_size, options.chunk_overlap)
    text = full_text(clean_pages_batch(_pages(path)))
    ends = sum(
        bool(re.search(r"[.!?][\])\"'”’]*$", chunk.text)) or text[chunk.end : chunk.end + 1] == "\n"
        for chunk in batch[:-1]
    )
    assert ends >= 0.9 * (len(batch) - 1), (ends, len(batch))


def _pages(path: Path) -> list[Page]:
    import pypdf

    return [Page(n, page.extract_text()) for n, page in enumerate(pypdf.PdfReader(path).pages, 1)]


def test_append_continues_a_page_without_separator() -> None:
    chunker = IncrementalChunker(100, 10)
    chunker.append("Hello ", 1)
    chunker.append("world.", 1)
    chunker.append("Second page.", 2)
    chunker.append("", 3)
    chunks = chunker.finish()
    assert [chunk.text for chunk in chunks] == ["Hello world.\n\nSecond page."]
    assert chunks[0].pages == (1, 2)
    assert chunker.characters == len("Hello world.\n\nSecond page.")


def test_whitespace_pages_are_skipped_and_empty_document_has_no_chunks() -> None:
    chunker = IncrementalChunker(100, 10)
    assert chunker.feed(Page(1, "  \n\n ")) == []
    assert chunker.finish() == []
    chunker = IncrementalChunker(100, 10)
    chunker.feed(Page(1, "one"))
    chunker.feed(Page(2, "\n"))
    chunker.feed(Page(3, "three"))
    (chunk,) = chunker.finish()
    assert chunk.text == "one\n\nthree"
    assert chunk.pages == (1, 3)


def test_long_single_page_spans_many_chunks_on_that_page() -> None:
    chunks = chunk_all([Page(7, "lorem ipsum " * 2000)], 400, 40)
    assert len(chunks) > 50
    assert {chunk.pages for chunk in chunks} == {(7, 7)}


def test_markdown_prefers_headings() -> None:
    sections = [f"# Section {i}\n\n" + ("Some words here. " * 30) for i in range(12)]
    chunker = IncrementalChunker(800, 0, markdown=True)
    chunks = [*chunker.append("\n\n".join(sections), 1), *chunker.finish()]
    assert sum(chunk.text.startswith("# Section") for chunk in chunks) >= 10


def test_feed_after_finish_is_an_error() -> None:
    chunker = IncrementalChunker(100, 0)
    chunker.finish()
    with pytest.raises(RuntimeError, match="after finish"):
        chunker.feed(Page(1, "late"))


@pytest.mark.parametrize(
    ("size", "overlap", "message"),
    [
        (100, 100, r"chunk_overlap \(100\) must be smaller than chunk_size \(100\)"),
        (100, 250, r"chunk_overlap \(250\) must be smaller than chunk_size \(100\)"),
        (0, 0, r"chunk_size must be a positive integer .*got 0"),
        (-5, 0, r"got -5"),
        (100, -1, r"chunk_overlap must be an integer >= 0 .*got -1"),
        (True, 0, r"got True"),
    ],
)
def test_invalid_sizes_are_refused_with_the_values(size: int, overlap: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IncrementalChunker(size, overlap)


@pytest.mark.parametrize("seed", range(20))
def test_invariants_hold_for_random_sizes(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.randint(20, 2000)
    overlap = rng.randint(0, size - 1)
    pages = random_pages(100 + seed, rng.randint(1, 15), max_words=rng.choice([5, 50, 500]))
    text = full_text(pages)
    chunks = chunk_all(pages, size, overlap)
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    assert all(text[chunk.start : chunk.end] == chunk.text for chunk in chunks)
    assert all(len(chunk.text) <= size for chunk in chunks)
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start and before.end < after.end
        assert before.first_page <= after.first_page and before.last_page <= after.last_page
    visible = sum(not char.isspace() for char in text)
    assert (visible == 0) == (chunks == [])
