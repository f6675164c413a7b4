"""Take the screenshots of the page in ``docs/screenshots/``.

Run from the checkout (needs Chromium at /usr/bin/chromium, the ``playwright``
package and the corpus at ../shared/corpus)::

    python -m tests.browser.screenshots [--out docs/screenshots]

It starts a real server, drops corpus documents onto the page in headless
Chromium (the same helpers as the browser tests) and saves:

* ``start.png``: the page before a document is chosen;
* ``midrun-freeculture-early.png``: a 352-page book seconds after the drop: pages still
  being read, the first chunk summaries streaming in, several at once;
* ``midrun-freeculture.png``: the same book once it is parsed (one cell per chunk), part way
  through its chunks;
* ``finished-freeculture.png``: the same book, summarized;
* ``finished-tracemonkey-phone.png``: a paper, summarized, at phone width;
* ``error-encrypted.png``: a password-protected PDF, explained;
* ``failed-chunk.png``: a chunk that streamed a few words, then failed (``chunk.failed``,
  ``model_timeout``) — its card says why; the summary says what it lacks;
* ``missing-pages.png``: a 32-page document whose chunks for pages 12–14 and 30 failed
  (HTTP 500): "4 pages: 12–14, 30", every card shown filled (full page);
* ``ocr-stage.png``: a scanned PDF during the ``ocr`` stage.

The failed chunks are real: the server's model is the scripted OpenAI-compatible fake of
``tests/fake_openai.py``. The OCR stage comes from a real server when it can OCR (the
``ocr`` option and setting exist, ``tesseract`` and ``pypdfium2`` are installed): pages 1–8 of
``squality-63833-jinx-ship.pdf`` rendered at 200 dpi into a PDF with no text layer.
Until then it comes from a scripted event stream (``tests/browser/stub.py``); force
either with ``--ocr-source server|stub``. ``--only NAME ...`` takes some of the shots,
e.g. ``--only ocr`` once OCR has landed.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from .conftest import (
    CORPUS_DIR,
    ROOT,
    drop_file,
    fault_page_server,
    launch_browser,
    open_page,
    page_server,
    poisoned_pages,
    screenshot,
    wait_for_phase,
    watch,
)
from .stub import ScriptedSocket, emit_ocr_stage

DESKTOP = {"width": 1280, "height": 1000}
MIDRUN = {"width": 1280, "height": 1180}
PHONE = {"width": 390, "height": 844}


SHOTS = ("start", "freeculture", "phone", "encrypted", "failed", "ocr")


def take(out: Path, only: tuple[str, ...] = SHOTS, ocr_source: str = "auto") -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved: list[Path] = []
    with page_server() as url, sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            if "start" in only:
                saved += _start(browser, url, out)
            if "freeculture" in only:
                saved += _freeculture(browser, url, out)
            if "phone" in only:
                saved += _phone(browser, url, out)
            if "encrypted" in only:
                saved += _encrypted(browser, url, out)
            if "failed" in only:
                saved += _failed(browser, out)
            if "ocr" in only:
                source = ocr_source if ocr_source != "auto" else ("server" if server_can_ocr() else "stub")
                saved += _ocr_server(browser, out) if source == "server" else _ocr_stub(browser, url, out)
        finally:
            browser.close()
    return saved


def _start(browser: Any, url: str, out: Path) -> list[Path]:
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        watched = open_page(context, url)
        shot = screenshot(watched.page, "start.png", full_page=False, directory=out)
        assert not watched.console_errors, watched.console_errors
        return [shot]
    finally:
        context.close()


def _freeculture(browser: Any, url: str, out: Path) -> list[Path]:
    context = browser.new_context(viewport=DESKTOP)
    try:
        watched = open_page(context, url)
        page = watched.page
        drop_file(page, CORPUS_DIR / "pdf" / "freeculture.pdf")
        page.set_viewport_size(MIDRUN)
        # Early: the first chunks written, the next ones streaming, pages still being read.
        page.wait_for_function(
            "() => document.querySelectorAll('#cards .chunk-card[data-state=done]').length >= 4 &&"
            " document.querySelectorAll('#cards [data-state=running] .chunk-body:not(.empty)').length >= 2",
            timeout=120_000,
            polling=50,
        )
        early = screenshot(page, "midrun-freeculture-early.png", full_page=False, directory=out)
        # Later: the book is parsed (one cell per chunk), a third of it summarized.
        page.wait_for_function(
            "() => document.querySelectorAll('#overview .cell[data-state=done]').length >= 80 &&"
            " !document.getElementById('chunk-count').textContent.endsWith('+') &&"
            " document.querySelectorAll('#cards [data-state=running] .chunk-body:not(.empty)').length >= 2",
            timeout=120_000,
            polling=50,
        )
        midrun = screenshot(page, "midrun-freeculture.png", full_page=False, directory=out)
        page.set_viewport_size(DESKTOP)
        wait_for_phase(page, "done", "error", "cancelled", timeout_s=300)
        page.evaluate("window.scrollTo(0, 0)")
        finished = screenshot(page, "finished-freeculture.png", full_page=False, directory=out)
        assert not watched.console_errors, watched.console_errors
        return [early, midrun, finished]
    finally:
        context.close()


def _phone(browser: Any, url: str, out: Path) -> list[Path]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    try:
        watched = open_page(context, url)
        page = watched.page
        drop_file(page, CORPUS_DIR / "pdf" / "tracemonkey.pdf")
        wait_for_phase(page, "done", "error", "cancelled", timeout_s=120)
        page.evaluate("window.scrollTo(0, 0)")
        shot = screenshot(page, "finished-tracemonkey-phone.png", full_page=False, directory=out)
        assert not watched.console_errors, watched.console_errors
        return [shot]
    finally:
        context.close()


def _encrypted(browser: Any, url: str, out: Path) -> list[Path]:
    context = browser.new_context(viewport={"width": 1280, "height": 640})
    try:
        watched = open_page(context, url)
        page = watched.page
        drop_file(page, CORPUS_DIR / "bad" / "encrypted-rc4-password.pdf")
        wait_for_phase(page, "error", "done", timeout_s=60)
        page.evaluate("document.activeElement.blur()")
        shot = screenshot(page, "error-encrypted.png", full_page=False, directory=out)
        assert not watched.console_errors, watched.console_errors
        return [shot]
    finally:
        context.close()


def _failed(browser: Any, out: Path) -> list[Path]:
    saved: list[Path] = []
    with fault_page_server() as (url, fake):
        context = browser.new_context(viewport=DESKTOP)
        try:
            # A chunk that streams two words, stalls, is retried, stalls again: chunk.failed.
            fake.reset()
            watched = open_page(context, url)
            page = watched.page
            page.select_option("#opt-model", "openai:fake-stall-2")
            drop_file(page, poisoned_pages(3, ()), name="three-pages.txt")
            wait_for_phase(page, "done", "error", "cancelled", timeout_s=120)
            page.wait_for_selector("#chunk-0[data-state=failed]", timeout=10_000)
            page.evaluate("() => window.scrollTo(0, 0)")
            saved.append(screenshot(page, "failed-chunk.png", directory=out))
            assert not watched.console_errors, watched.console_errors
            page.close()
            # Pages 12-14 and 30 fail (HTTP 500 for chunks with POISON): missing_pages [[12,14],[30,30]].
            fake.reset()
            watched = open_page(context, url)
            page = watched.page
            drop_file(page, poisoned_pages(), name="harbour-survey.txt")
            wait_for_phase(page, "done", "error", "cancelled", timeout_s=180)
            page.wait_for_selector("#summary-missing:not([hidden])", timeout=10_000)
            page.evaluate("() => window.scrollTo(0, 0)")
            saved.append(screenshot(page, "missing-pages.png", directory=out))
            assert not watched.console_errors, watched.console_errors
        finally:
            context.close()
    return saved


def server_can_ocr() -> bool:
    """Whether this checkout's server can OCR: the ``ocr`` option exists, Tesseract and pypdfium2 are here."""
    import importlib.util
    import shutil

    from summarizer.protocol import StartOptions
    from summarizer.settings import Settings

    return (
        "ocr" in StartOptions.model_fields
        and "ocr" in Settings.model_fields
        and shutil.which("tesseract") is not None
        and importlib.util.find_spec("pypdfium2") is not None
        and importlib.util.find_spec("PIL") is not None
    )


def scanned_pdf(source: Path, pages: range, dpi: int = 200) -> bytes:
    """Pages of ``source`` rendered at ``dpi`` into a new PDF with no text layer (in memory)."""
    import io

    import pypdfium2  # type: ignore[import-not-found]

    pdf = pypdfium2.PdfDocument(str(source))
    images = [pdf[i].render(scale=dpi / 72).to_pil().convert("L") for i in pages]
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return buffer.getvalue()


_OCR_ACTIVE = (
    "document.querySelector('#stages li[data-stage=ocr]').dataset.status === 'active' &&"
    " parseInt(document.querySelector('#stages li[data-stage=ocr] .stage-detail').textContent, 10) >= 1"
)


def _ocr_wait_and_shoot(page: Any, out: Path) -> Path:
    """Shoot during the OCR stage: at best once a chunk made from OCR'd text streams, else as it goes."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.wait_for_function(f"() => {_OCR_ACTIVE}", timeout=120_000, polling=50)
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_function(
            f"() => !({_OCR_ACTIVE}) || document.querySelector('#cards .chunk-ocr:not([hidden])')",
            timeout=60_000,
            polling=50,
        )
    return screenshot(page, "ocr-stage.png", full_page=False, directory=out)


def _ocr_server(browser: Any, out: Path) -> list[Path]:
    data = scanned_pdf(CORPUS_DIR / "pdf" / "squality-63833-jinx-ship.pdf", range(8))
    with page_server() as url:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            watched = open_page(context, url)
            drop_file(watched.page, data, name="jinx-ship-scanned.pdf")
            shot = _ocr_wait_and_shoot(watched.page, out)
            assert not watched.console_errors, watched.console_errors
            return [shot]
        finally:
            context.close()


def _ocr_stub(browser: Any, url: str, out: Path) -> list[Path]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        watched = watch(page)
        ScriptedSocket(page, on_end=emit_ocr_stage)
        page.goto(url)
        page.wait_for_function("() => document.querySelector('#server-status').dataset.status === 'ok'")
        drop_file(page, b"%PDF-1.7\n% scanned\n", name="scanned-report.pdf")
        page.wait_for_function(
            "() => document.querySelector('#chunk-1 .chunk-body')?.textContent.length > 0", timeout=30_000
        )
        shot = _ocr_wait_and_shoot(page, out)
        assert not watched.console_errors, watched.console_errors
        return [shot]
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="output folder")
    parser.add_argument("--only", nargs="+", choices=SHOTS, default=list(SHOTS), help="take only these shots")
    parser.add_argument(
        "--ocr-source",
        choices=("auto", "server", "stub"),
        default="auto",
        help="where the OCR stage comes from (auto: the server if it can OCR, else a scripted stream)",
    )
    args = parser.parse_args(argv)
    for path in take(args.out, tuple(args.only), args.ocr_source):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":  # the PDF worker's forkserver re-imports __main__: keep this guard
    sys.exit(main())
