"""Document structure: front and back matter, titles, on synthetic pages and the corpus PDFs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from summarizer.ingest.clean import clean_pages_batch
from summarizer.ingest.pipeline import read_document
from summarizer.ingest.structure import (
    SkippedRange,
    StructureFilter,
    back_matter_heading,
    clean_title,
    cover_title,
    index_ratio,
    is_licence_page,
    is_toc_page,
    pdf_outline,
    raw_leader_lines,
    skipped_warning,
    text_title,
    title_from_text,
)
from summarizer.ingest.types import IngestOptions, IngestProgress, Page

CORPUS = Path(__file__).parent.parent.parent / "shared" / "corpus"

PROSE = (
    "The committee reviewed the proposal in detail and found that the schedule was far too tight "
    "for the work that remained to be done before the end of the year.\n"
) * 6


def corpus_pdf(name: str) -> Path:
    path = CORPUS / "pdf" / name
    if not path.exists():
        pytest.skip(f"corpus file {path} not available")
    return path


def raw_pages(path: Path) -> list[Page]:
    import pypdf

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = pypdf.PdfReader(path)
    return [Page(n + 1, page.extract_text()) for n, page in enumerate(reader.pages)]


def run_filter(raw: list[Page], **kwargs: object) -> tuple[StructureFilter, list[Page]]:
    structure = StructureFilter(
        total_pages=len(raw), raw_leaders={p.number: raw_leader_lines(p.text) for p in raw}, **kwargs
    )  # type: ignore[arg-type]
    kept: list[Page] = []
    for page in clean_pages_batch(raw):
        kept += structure.push(page)
    kept += structure.finish()
    return structure, kept


# -- classifiers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("References", "references"),
        ("7. REFERENCES", "references"),
        ("Bibliography", "references"),
        ("NOTES", "references"),
        ("Acknowledgments", "acknowledgements"),
        ("Acknowledgements:", "acknowledgements"),
        ("INDEX", "index"),
        ("References to the literature are given below in the notes", None),
        ("Indexing strategies", None),
        ("references", None),  # a UML association's label (GeoBase_NHNC1_Data_Model_UML_EN.pdf)
        ("3. notes", None),
        ("index", None),
    ],
)
def test_back_matter_headings(line: str, reason: str | None) -> None:
    assert back_matter_heading(line) == reason


def test_index_licence_and_toc_pages() -> None:
    index = "\n".join(f"term {i}, {i}, {i + 3}\u2013{i + 5}, 300n" for i in range(20))
    assert index_ratio(index) > 0.9
    assert index_ratio(PROSE) == 0.0
    assert is_licence_page("Copyright \u00a9 Lawrence Lessig, 2004\nAll rights reserved\nISBN 1-59420-006-8")
    assert not is_licence_page(PROSE + "The book is about copyright law since 1790.")
    toc = "CONTENTS\nPREFACE xiii\nINTRODUCTION 1\nCHAPTER ONE: Creators 21"
    assert is_toc_page(toc)
    assert is_toc_page("\n".join(f"{i}.1 Section" for i in range(8)), raw_leaders=8)
    assert not is_toc_page(PROSE)


@pytest.mark.parametrize(
    ("text", "title"),
    [
        (
            "Jinx Ship To The Rescue\nJinx Ship To The Rescue\nBy ALFRED COPPEL, JR.\nStand by",
            "Jinx Ship To The Rescue",
        ),
        (
            "Trace-based Just-in-Time Type Specialization for Dynamic\nLanguages\n"
            "Andreas Gal\u2217+, Brendan Eich\u2217",
            "Trace-based Just-in-Time Type Specialization for Dynamic Languages",
        ),
        ("FREE CULTURE", "Free Culture"),
        (
            "Einf\u00fchrung in die\nGeometrie und Topologie\n0. Auflage, 31. Dezember 2016",
            "Einf\u00fchrung in die Geometrie und Topologie",
        ),
        ("Example document\nBeautiful is better than ugly.\nExplicit is better.", "Example document"),
    ],
)
def test_title_from_first_page(text: str, title: str) -> None:
    assert title_from_text(text) == title


FREE_CULTURE_COVER = (
    "FREE CULTURE\n\nHOW BIG MEDIA USES TECHNOLOGY AND THE LAW TO\nLOCK DOWN CULTURE AND CONTROL CREATIVITY"
)
"""freeculture.pdf's cover page as Tesseract reads it at 300 dpi."""
FREE_CULTURE_TITLE = (
    "Free Culture: How Big Media Uses Technology and the Law to Lock Down Culture and Control Creativity"
)


@pytest.mark.parametrize(
    ("title", "cover", "expected"),
    [
        (
            "Free Culture",
            FREE_CULTURE_COVER,
            FREE_CULTURE_TITLE,
        ),
        (
            None,
            FREE_CULTURE_COVER,
            FREE_CULTURE_TITLE,
        ),
        ("Another Book", FREE_CULTURE_COVER, "Another Book"),  # a cover that does not repeat the title
        ("Free Culture", "FREE CULTURE\n\nLAWRENCE LESSIG", "Free Culture"),  # a name is no subtitle
        ("Free Culture", "FREE CULTURE\n\nby Lawrence Lessig and many friends of his", "Free Culture"),
        ("Free Culture", "FREE CULTURE\n\n" + "A long page of prose. " * 40, "Free Culture"),  # not a cover
        (None, "", None),
    ],
)
def test_a_cover_completes_the_title(title: str | None, cover: str, expected: str | None) -> None:
    assert cover_title(title, cover) == expected


def test_titles_refuse_placeholders_and_fall_back_to_the_file_name() -> None:
    assert clean_title("Binder1.pdf") is None
    assert clean_title("Microsoft Word - draft.docx") is None
    assert clean_title("  Free   Culture ") == "Free Culture"
    assert text_title("# The Plan\n\nWe will.", "x.md") == "The Plan"
    assert text_title("", "meeting_notes_2024.txt") == "meeting notes 2024"


def test_warning_names_every_range_and_the_option() -> None:
    text = skipped_warning([SkippedRange(2, 2, "licence"), SkippedRange(339, 352, "index")])
    assert text is not None
    assert "page 2 (licence and copyright)" in text and "pages 339\u2013352 (index)" in text
    assert "--include-back-matter" in text
    assert skipped_warning([]) is None


def test_a_document_that_is_only_front_matter_is_kept() -> None:
    structure = StructureFilter(total_pages=1)
    page = Page(1, "Copyright \u00a9 2020 Someone\nAll rights reserved.\nISBN 123")
    assert structure.push(page) == []
    assert structure.finish() == [page]
    assert structure.skipped == []


def test_references_heading_mid_page_keeps_the_text_above() -> None:
    body = [Page(n, PROSE) for n in range(1, 10)]
    last = Page(
        10,
        PROSE
        + "References\n"
        + "\n".join(
            f"[{i}] A. Author. A paper. In Proceedings of PLDI, pages 1\u201312, 2007." for i in range(9)
        ),
    )
    structure = StructureFilter(total_pages=10)
    kept = [p for page in [*body, last] for p in structure.push(page)] + structure.finish()
    assert kept[-1].number == 10
    assert "Proceedings" not in kept[-1].text and "committee" in kept[-1].text
    assert structure.skipped == [SkippedRange(10, 10, "references")]
    kept_all = StructureFilter(total_pages=10, include_back_matter=True)
    pages = [p for page in [*body, last] for p in kept_all.push(page)] + kept_all.finish()
    assert "Proceedings" in pages[-1].text and kept_all.skipped == []


# -- the corpus ----------------------------------------------------------------------------


def test_freeculture_front_and_back_matter() -> None:
    structure, kept = run_filter(raw_pages(corpus_pdf("freeculture.pdf")), filename="freeculture.pdf")
    assert structure.title == "Free Culture"
    assert [(s.first, s.last, s.reason) for s in structure.skipped] == [
        (2, 2, "licence"),
        (7, 7, "licence"),
        (8, 8, "dedication"),
        (9, 11, "table_of_contents"),
        (313, 336, "references"),
        (337, 338, "acknowledgements"),
        (339, 352, "index"),
    ]
    numbers = [p.number for p in kept]
    assert 12 in numbers and 312 in numbers  # the preface and the last page of the conclusion
    assert not any("Quayle, Dan" in p.text for p in kept)


def test_tracemonkey_keeps_title_and_abstract_and_drops_the_references() -> None:
    structure, kept = run_filter(raw_pages(corpus_pdf("tracemonkey.pdf")), filename="tracemonkey.pdf")
    assert structure.title == "Trace-based Just-in-Time Type Specialization for Dynamic Languages"
    assert kept[0].number == 1 and "Abstract" in kept[0].text
    assert {s.reason for s in structure.skipped} == {"acknowledgements", "references"}
    text = "\n".join(p.text for p in kept)
    assert "Dynamo: A transparent dynamic optimization system" not in text
    assert "Conclusions" in text or "CONCLUSIONS" in text.upper()


@pytest.mark.parametrize(
    "name",
    [
        "Seige_of_Vicksburg_Sample_OCR.pdf",
        "GeoBase_NHNC1_Data_Model_UML_EN.pdf",
        "squality-63833-jinx-ship.pdf",
        "squality-63392-doorway-to-kal-jmar.pdf",
        "google-doc-document.pdf",
    ],
)
def test_documents_without_back_matter_lose_nothing(name: str) -> None:
    raw = raw_pages(corpus_pdf(name))
    structure, kept = run_filter(raw, filename=name)
    assert structure.skipped == []
    assert sum(len(p.text) for p in kept) >= 0.95 * sum(len(p.text) for p in clean_pages_batch(raw))
    assert structure.title


def test_pdf_outline_reads_bookmarks_labels_and_metadata() -> None:
    import pypdf

    reader = pypdf.PdfReader(corpus_pdf("freeculture.pdf"))
    outline = pdf_outline(reader)
    assert outline.title == "Free Culture"
    assert any(entry.title.strip().upper() == "INDEX" for entry in outline.entries)
    assert len(outline.page_labels) == 352
    with_outline = StructureFilter(total_pages=352, outline=outline)
    assert with_outline.title == "Free Culture"


def test_ingestion_reports_skipped_pages_title_and_a_warning() -> None:
    progress: list[IngestProgress] = []
    chunks = read_document(corpus_pdf("tracemonkey.pdf"), on_progress=progress.append)
    final = progress[-1]
    assert final.finished
    assert [s.reason for s in final.skipped] == ["acknowledgements", "references"]
    assert any("include_back_matter" in w for w in final.warnings)
    assert final.title == chunks[0].title == chunks[-1].title
    assert chunks[0].title is not None and chunks[0].title.startswith("Trace-based")
    assert not any("Dynamo: A transparent dynamic" in " ".join(c.text.split()) for c in chunks)
    kept = read_document(corpus_pdf("tracemonkey.pdf"), options=IngestOptions(include_back_matter=True))
    assert any("Dynamo: A transparent dynamic" in " ".join(c.text.split()) for c in kept)


# -- the PDF worker's outline message --------------------------------------------------------


async def test_the_pdf_worker_sends_the_metadata_title_and_outline_before_the_pages() -> None:
    from summarizer.ingest.pdf import PdfOpened, PdfOutlineRead, PdfPage, extract_pages

    kinds: list[type] = []
    outlines: list[PdfOutlineRead] = []
    async for event in extract_pages(corpus_pdf("freeculture.pdf").read_bytes()):
        kinds.append(type(event))
        if isinstance(event, PdfOutlineRead):
            outlines.append(event)
    assert kinds.index(PdfOpened) < kinds.index(PdfOutlineRead) < kinds.index(PdfPage)
    assert kinds.count(PdfOutlineRead) == 1
    outline = outlines[0].outline
    assert outline.title == "Free Culture"
    assert len(outline.entries) >= 50
    index = [e for e in outline.entries if e.title.strip().upper() == "INDEX"]
    assert index and index[0].page == 339 and index[0].depth == 0


def test_a_hostile_outline_message_is_cut_to_plain_values() -> None:
    from summarizer.ingest.pdf import _parse_outline

    entries = [["Intro", 1, 0], ["bad", "2", 0], ["x", True, 0], "junk", ["Index", 9, 1], ["short", 1]]
    outline = _parse_outline(["outline", "T" * 5000, entries])
    assert outline.title == "T" * 1000
    assert [(e.title, e.page, e.depth) for e in outline.entries] == [("Intro", 1, 0), ("Index", 9, 1)]
    assert _parse_outline(["outline", 7, {"a": 1}]).title is None
    assert len(_parse_outline(["outline", None, [["a", 1, 0]] * 5000]).entries) == 2000


@pytest.mark.parametrize(
    ("name", "title", "final", "index_from"),
    [
        # metadata titles: pdf_outline gives them, the first page has a subtitle or a longer heading;
        # freeculture.pdf's image-only cover, OCR'd, completes it (for the last chunk and the reduce)
        (
            "freeculture.pdf",
            "Free Culture",
            FREE_CULTURE_TITLE,
            339,
        ),
        (
            "GeoTopo-komprimiert.pdf",
            "Geometrie und Topologie",
            "Geometrie und Topologie",
            114,
        ),  # "Index" bookmark
    ],
)
def test_pdf_ingestion_uses_the_metadata_title_and_the_outline(
    name: str, title: str, final: str, index_from: int
) -> None:
    progress: list[IngestProgress] = []
    chunks = read_document(corpus_pdf(name), on_progress=progress.append)
    assert {chunk.title for chunk in chunks[:-1]} == {title}
    assert chunks[-1].title == final
    assert progress[-1].title == final
    index = [s for s in progress[-1].skipped if s.reason == "index"]
    assert index and index[0].first == index_from


def test_a_placeholder_metadata_title_leaves_the_heading() -> None:
    from summarizer.ingest.structure import PdfOutline

    structure = StructureFilter(total_pages=3, filename="scan.pdf")
    structure.use_outline(PdfOutline(title="Binder1.pdf"))
    assert structure.title is None
    structure.push(Page(1, "The Siege of Vicksburg\n\n" + PROSE))
    structure.finish()
    assert structure.title == "The Siege of Vicksburg"
