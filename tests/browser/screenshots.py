"""Take the screenshots of the page in ``docs/screenshots/``.

Run from the checkout (needs Chromium at /usr/bin/chromium, the ``playwright``
package and the corpus at ../shared/corpus)::

    python -m tests.browser.screenshots [--out docs/screenshots]

It starts a real server, drops corpus documents onto the page in headless
Chromium (the same helpers as the browser tests) and saves:

* ``start.png``: the page before a document is chosen;
* ``midrun-freeculture-early.png``: a 352-page book seconds after the drop: pages still
  being read, the first chunk summaries streaming in, several at once;
* ``midrun-freeculture.png``: the same book a third of the way through its chunks;
* ``finished-freeculture.png``: the same book, summarized;
* ``finished-tracemonkey-phone.png``: a paper, summarized, at phone width;
* ``error-encrypted.png``: a password-protected PDF, explained.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .conftest import (
    CORPUS_DIR,
    ROOT,
    drop_file,
    launch_browser,
    open_page,
    page_server,
    screenshot,
    wait_for_phase,
)

DESKTOP = {"width": 1280, "height": 1000}
MIDRUN = {"width": 1280, "height": 1180}
PHONE = {"width": 390, "height": 844}


def take(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    saved: list[Path] = []
    with page_server() as url, sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            saved += _start(browser, url, out)
            saved += _freeculture(browser, url, out)
            saved += _phone(browser, url, out)
            saved += _encrypted(browser, url, out)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="output folder")
    args = parser.parse_args(argv)
    for path in take(args.out):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":  # the PDF worker's forkserver re-imports __main__: keep this guard
    sys.exit(main())
