"""Page states from issues 13 and 14: a failed chunk, pages left out of the summary, the OCR
stage, and screenshots that show every card filled.

Failed chunks come from a real server whose model is the scripted fake of
``tests/fake_openai.py`` (real ``chunk.failed`` events); the OCR stage from a scripted
WebSocket (``tests/browser/stub.py``) until the server emits it.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ..conftest import corpus_file
from .conftest import (
    Watched,
    drop_file,
    fault_page_server,
    open_page,
    poisoned_pages,
    screenshot,
    wait_for_phase,
    watch,
)
from .stub import JOB_ID, ScriptedSocket, emit_ocr_rest, emit_ocr_stage

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture(scope="module")
def fault_server(browser: Any) -> Iterator[tuple[str, Any]]:
    with fault_page_server() as served:
        yield served


def stat(page: Any, term: str) -> str | None:
    """The value of the summary's fact ``term`` ("Left out", "OCR", ...), or ``None``."""
    return page.evaluate(
        """(term) => {
          for (const row of document.querySelectorAll('#summary-stats .stat')) {
            if (row.querySelector('dt').textContent === term) return row.querySelector('dd').textContent;
          }
          return null;
        }""",
        term,
    )


def test_failed_chunk_shows_its_reason_not_its_partial_text(
    context: Any, fault_server: tuple[str, Any]
) -> None:
    url, fake = fault_server
    fake.reset()
    watched = open_page(context, url)
    page = watched.page
    page.select_option("#opt-model", "openai:fake-stall-2")
    drop_file(page, poisoned_pages(3, ()), name="three-pages.txt")
    assert wait_for_phase(page, "done", "error", "cancelled", timeout_s=120) == "done"

    # The server streamed part of chunk 0, then gave it up: a real chunk.failed.
    events = watched.events()
    (failed,) = [e for e in events if e["type"] == "chunk.failed"]
    assert failed["index"] == 0 and failed["code"] == "model_timeout"
    at_failure = events.index(failed)
    partial = [e["text"] for e in events[:at_failure] if e["type"] == "chunk.token" and e["index"] == 0]
    assert partial, "the fake should have streamed words before stalling"

    # The card is failed, says why, and no longer shows the discarded words or "writing…".
    card = page.locator("#chunk-0")
    assert card.get_attribute("data-state") == "failed"
    assert card.get_attribute("data-code") == "model_timeout"
    assert card.locator(".chunk-badge").inner_text() == "failed"
    body = card.locator(".chunk-body").inner_text()
    assert body.startswith("Left out of the summary: the model took too long to answer.")
    assert failed["message"] in body and "[model_timeout]" in body
    assert "".join(partial).strip() not in body
    assert page.locator("#overview .cell[data-index='0']").get_attribute("data-state") == "failed"
    assert "writing" not in page.inner_text("#cards")
    assert page.locator("#cards .chunk-card[data-state='done']").count() == 2
    # The summary came anyway, and says what it lacks.
    (summary,) = watched.events("summary")
    assert summary["missing_pages"] == [[1, 1]]
    assert stat(page, "Left out") == "1 page: 1"
    assert page.locator("#summary-missing").is_visible()
    screenshot(page, "failed-chunk.png")
    assert watched.console_errors == []


def test_missing_pages_are_counted_and_shown_as_ranges(context: Any, fault_server: tuple[str, Any]) -> None:
    url, fake = fault_server
    fake.reset()
    watched = open_page(context, url)
    page = watched.page
    assert page.input_value("#opt-model") == "openai:fake-poison"
    drop_file(page, poisoned_pages(), name="harbour-survey.txt")
    assert wait_for_phase(page, "done", "error", "cancelled", timeout_s=180) == "done"

    (summary,) = watched.events("summary")
    assert summary["missing_pages"] == [[12, 14], [30, 30]]
    # Four pages, as ranges (not "2 pages: 12,14, 30,30").
    assert stat(page, "Left out") == "4 pages: 12–14, 30"
    note = page.locator("#summary-missing")
    assert note.is_visible()
    assert note.inner_text().startswith("Pages 12–14, 30 are not covered by this summary: 4 chunks")
    failed = page.locator("#cards .chunk-card[data-state='failed']")
    assert [int(i) for i in failed.evaluate_all("cards => cards.map(c => c.dataset.index)")] == [
        11,
        12,
        13,
        29,
    ]
    assert set(failed.evaluate_all("cards => cards.map(c => c.dataset.code)")) == {"provider_unavailable"}
    assert page.locator("#overview .cell[data-state='failed']").count() == 4
    assert page.locator("#cards .chunk-card[data-state='done']").count() == 28
    screenshot(page, "missing-pages.png")
    assert watched.console_errors == []


def _scripted_upload(context: Any, base_url: str, on_end: Any) -> tuple[Any, Watched, ScriptedSocket]:
    """A page whose socket is scripted, once it dropped a scanned PDF; ``on_end`` runs at its ``end``."""
    page = context.new_page()
    watched = watch(page)
    sock = ScriptedSocket(page, on_end=on_end)
    page.goto(base_url)
    page.wait_for_function(
        "() => document.querySelector('#server-status').dataset.status === 'ok'", timeout=60_000
    )
    drop_file(page, b"%PDF-1.7\n% a scanned report (the scripted server never reads it)\n", name="scan.pdf")
    return page, watched, sock


def test_ocr_stage_pages_and_badges_from_a_scripted_stream(context: Any, base_url: str) -> None:
    page, watched, sock = _scripted_upload(context, base_url, emit_ocr_stage)

    # During the OCR stage: its own step with pages done / total, the headline, the ETA.
    ocr = page.locator("#stages li[data-stage='ocr']")
    page.wait_for_function(
        "() => document.querySelector('#stages li[data-stage=ocr]').dataset.status === 'active' &&"
        " document.querySelector('#chunk-1 .chunk-body')?.textContent.length > 0",
        timeout=30_000,
    )
    assert ocr.is_visible()
    assert ocr.locator(".stage-detail").inner_text() == "5 / 10"
    assert "OCR 5 of 10 pages" in page.inner_text("#headline")
    assert "of OCR" in page.inner_text("#eta")
    # The bar moved past the upload, and tells a number (the OCR share is part of reading the pages).
    percent = page.evaluate("window.__summarizer.percent")
    assert isinstance(percent, int) and 10 <= percent <= 50, percent
    assert page.locator("#overall").get_attribute("aria-valuenow") == str(percent)
    # The chunk made from OCR'd text says so; the one from the text layer does not.
    assert page.locator("#chunk-1 .chunk-ocr").is_visible()
    assert page.locator("#chunk-0 .chunk-ocr").is_hidden()
    assert page.locator("#overview .cell[data-index='1']").get_attribute("data-ocr") == "true"
    assert page.locator("#overview .cell[data-index='0']").get_attribute("data-ocr") is None
    screenshot(page, "ocr-stage.png", full_page=False)

    # The rest of the job: which pages were OCR'd, badges on every chunk made from them.
    emit_ocr_rest(sock)
    assert wait_for_phase(page, "done", "error", timeout_s=30) == "done"
    assert ocr.get_attribute("data-status") == "done"
    assert "OCR: pages 3–12" in page.inner_text("#file-meta")
    assert stat(page, "OCR") == "10 pages: 3–12"
    assert page.locator("#cards .chunk-ocr:visible").count() == 5
    assert [m["type"] for m in sock.client] == ["start", "end"]
    assert watched.console_errors == []


def test_ocr_stage_stays_hidden_for_documents_with_a_text_layer(watched: Watched) -> None:
    page = watched.page
    drop_file(page, corpus_file("pdf", "tracemonkey.pdf"))
    assert wait_for_phase(page, "done", "error", timeout_s=120) == "done"
    assert page.locator("#stages li[data-stage='ocr']").is_hidden()
    assert page.locator("#cards .chunk-ocr:visible").count() == 0
    assert stat(page, "OCR") is None


_DARK_PIXELS = """async ({data, x, y, w, h}) => {
  const img = new Image();
  img.src = "data:image/png;base64," + data;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const g = canvas.getContext("2d");
  g.drawImage(img, x, y, w, h, 0, 0, w, h);
  const px = g.getImageData(0, 0, w, h).data;
  let dark = 0;
  for (let i = 0; i < px.length; i += 4) if (px[i] + px[i + 1] + px[i + 2] < 384) dark += 1;
  return dark;
}"""

_LAST_BODY_BOX = """() => {
  const cards = document.querySelectorAll('#cards .chunk-card');
  const r = cards[cards.length - 1].querySelector('.chunk-body').getBoundingClientRect();
  return {x: Math.round(r.left + scrollX), y: Math.round(r.top + scrollY),
          w: Math.max(1, Math.round(r.width)), h: Math.max(1, Math.round(Math.min(r.height, 60)))};
}"""


def dark_pixels(page: Any, png: bytes, box: dict[str, int]) -> int:
    """Dark (text) pixels of a PNG screenshot in ``box`` (page coordinates), counted in the browser."""
    return int(page.evaluate(_DARK_PIXELS, {"data": base64.b64encode(png).decode("ascii"), **box}))


def test_full_page_screenshots_show_every_card_filled(watched: Watched, tmp_path: Any) -> None:
    page = watched.page
    drop_file(page, corpus_file("pdf", "tracemonkey.pdf"))
    assert wait_for_phase(page, "done", "error", timeout_s=120) == "done"
    page.evaluate("() => window.scrollTo(0, 0)")
    assert page.locator("#cards .chunk-card").count() > 8
    last_body = "document.querySelector('#cards .chunk-card:last-child .chunk-body')"
    # For a person scrolling, far cards are not rendered (content-visibility: auto) ...
    assert page.evaluate(f"() => {last_body}.checkVisibility({{contentVisibilityAuto: true}})") is False
    plain = page.screenshot(full_page=True, animations="disabled")
    assert dark_pixels(page, plain, page.evaluate(_LAST_BODY_BOX)) == 0  # an empty box, as in the issue
    # ... but the screenshot helper (capture mode) renders every card, so its text shows.
    page.evaluate("() => document.body.classList.add('capture')")
    box = page.evaluate(_LAST_BODY_BOX)
    assert page.evaluate(f"() => {last_body}.checkVisibility({{contentVisibilityAuto: true}})") is True
    page.evaluate("() => document.body.classList.remove('capture')")
    path = screenshot(page, "full-page-capture.png", directory=tmp_path)
    assert dark_pixels(page, path.read_bytes(), box) > 50
    # The helper leaves the page as it was.
    assert page.evaluate("() => document.body.classList.contains('capture')") is False


def test_ocr_of_a_scanned_pdf_on_a_real_server(context: Any, base_url: str) -> None:
    """Once the server can OCR (issue 14): a real scan shows the stage, the pages and the badges."""
    from .screenshots import scanned_pdf, server_can_ocr

    if not server_can_ocr():
        pytest.skip("this server cannot OCR yet (no `ocr` setting, tesseract or pypdfium2)")
    watched = open_page(context, base_url)
    page = watched.page
    data = scanned_pdf(corpus_file("pdf", "squality-63833-jinx-ship.pdf"), range(3))
    drop_file(page, data, name="jinx-ship-scanned.pdf")
    assert wait_for_phase(page, "done", "error", "cancelled", timeout_s=300) == "done"
    assert watched.events("progress") and any(e["stage"] == "ocr" for e in watched.events("progress"))
    (document,) = watched.events("document")
    assert document["ocr_pages"] == [[1, 3]]
    assert page.locator("#stages li[data-stage='ocr']").get_attribute("data-status") == "done"
    assert "OCR: pages 1–3" in page.inner_text("#file-meta")
    assert stat(page, "OCR") == "3 pages: 1–3"
    ocr_chunks = [e["index"] for e in watched.events("chunk.started") if e.get("ocr")]
    assert ocr_chunks
    shown = page.locator("#cards .chunk-ocr:visible").evaluate_all(
        "badges => badges.map(b => Number(b.closest('.chunk-card').dataset.index))"
    )
    assert sorted(shown) == sorted(set(ocr_chunks))
    assert watched.console_errors == []


def test_a_job_that_moved_to_another_replica_is_resumed_not_shown_as_failed(
    context: Any, base_url: str
) -> None:
    """The replica the page is connected to lost the job to another one (it was paused past its
    lease): it says ``server_busy`` with ``job_id: null`` and closes with 1013. The page resumes
    (``resume`` with its last seq) and shows the job through to its summary, with no error."""
    import json

    def moved(sock: ScriptedSocket) -> None:
        emit_ocr_stage(sock)
        error = {
            "type": "error",
            "job_id": None,
            "seq": 0,
            "code": "server_busy",
            "message": "Job moved to another replica; reconnect and resume to follow it.",
            "retryable": True,
        }
        sock.ws.send(json.dumps(error))
        sock.ws.close(code=1013, reason="server_busy")

    page, watched, sock = _scripted_upload(context, base_url, moved)
    deadline = time.monotonic() + 30
    while not any(m["type"] == "resume" for m in sock.client):
        assert time.monotonic() < deadline, f"the page did not resume: {sock.client}"
        page.wait_for_timeout(100)
    resume = next(m for m in sock.client if m["type"] == "resume")
    assert resume["job_id"] == JOB_ID and resume["last_seq"] <= sock.seq
    sock.emit("resumed", state="processing", last_seq=sock.seq, received=sock.size, messages=1)
    emit_ocr_rest(sock)
    assert wait_for_phase(page, "done", "error", timeout_s=30) == "done"
    assert "moved" not in page.inner_text("body").lower()
    assert [m["type"] for m in sock.client] == ["start", "end", "resume"]
    assert watched.console_errors == []
