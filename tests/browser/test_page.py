"""The web page in headless Chromium against a real server: upload, progress, cards, summary,
cancel, errors, XSS safety, keyboard, phone width and a dropped connection."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ..conftest import SAMPLES, corpus_file
from .conftest import ACK_WINDOW_BYTES, FRAME_BYTES, Watched, drop_file, open_page, screenshot, wait_for_phase

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def card_texts(page: Any) -> list[str]:
    return list(page.eval_on_selector_all("#cards .chunk-body", "nodes => nodes.map(n => n.textContent)"))


def test_tracemonkey_is_summarized_with_progress_cards_and_summary(watched: Watched) -> None:
    page = watched.page
    pdf = corpus_file("pdf", "tracemonkey.pdf")
    drop_file(page, pdf)
    assert wait_for_phase(page, "done", "error", "cancelled") == "done"
    screenshot(page, "finished-tracemonkey.png")

    # The progress bar reached 100 % and every stage is done (combining only if it was needed).
    bar = page.locator("#overall")
    assert bar.get_attribute("aria-valuenow") == "100"
    assert page.evaluate("window.__summarizer.percent") == 100
    statuses = page.eval_on_selector_all("#stages li", "items => items.map(li => li.dataset.status)")
    combined = "done" if watched.events("collapse") else "skipped"
    assert statuses == ["done", "done", "done", combined, "done"]
    assert "14 pages" in page.inner_text("#file-meta")

    # One card per chunk, in document order, each with the chunk's summary as the protocol sent it.
    (document,) = watched.events("document")
    chunk_summaries = sorted(watched.events("chunk.summary"), key=lambda e: e["index"])
    assert len(chunk_summaries) == document["chunks"] > 1
    texts = card_texts(page)
    assert len(texts) == document["chunks"]
    assert all(t.strip() for t in texts)
    assert texts == [e["text"] for e in chunk_summaries]
    assert page.locator("#overview .cell[data-state='done']").count() == document["chunks"]
    first_pages = page.locator("#cards .chunk-card").first.locator(".chunk-pages").inner_text()
    assert re.fullmatch(r"pages? \d+(–\d+)?", first_pages)

    # The final summary equals the protocol's `summary.text`, and the panel shows it.
    (summary,) = watched.events("summary")
    assert summary["text"].strip()
    assert page.evaluate("window.__summarizer.lastSummary") == summary["text"]
    assert squash(page.inner_text("#summary-body")) == squash(summary["text"])
    assert page.locator("#copy").is_enabled() and page.locator("#download").is_enabled()

    # The upload went in binary slices within the server's ack window.
    binary = [len(m) for m in watched.sent if isinstance(m, bytes)]
    assert sum(binary) == pdf.stat().st_size
    assert max(binary) <= FRAME_BYTES
    assert 0 < page.evaluate("window.__summarizer.maxInFlight") <= ACK_WINDOW_BYTES
    assert [m["type"] for m in watched.client_messages()] == ["start", "end"]

    # Clicking a cell of the overview scrolls its card into view; arrow keys move between cells.
    page.set_viewport_size({"width": 1280, "height": 600})
    last = page.locator("#overview .cell").last
    index = int(last.get_attribute("data-index") or 0)
    last.click()
    page.wait_for_function(
        "(id) => { const r = document.getElementById(id).getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= innerHeight; }",
        arg=f"chunk-{index}",
        timeout=5_000,
    )
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.dataset.index") == str(index - 1)

    # Copy puts the summary on the clipboard.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("#copy")
    assert page.evaluate("navigator.clipboard.readText()") == summary["text"]
    assert "copied" in page.inner_text("#toast").lower()

    # Download gives the summary as Markdown.
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "tracemonkey.summary.md"
    assert summary["text"].strip() in Path(download.path()).read_text(encoding="utf-8")


def test_cancel_a_long_document_midway(watched: Watched) -> None:
    page = watched.page
    drop_file(page, corpus_file("pdf", "freeculture.pdf"))
    # Wait for a few chunk cards, then cancel.
    page.wait_for_function("document.querySelectorAll('#cards .chunk-card').length >= 4", timeout=60_000)
    assert page.evaluate("document.body.dataset.phase") == "processing"
    page.wait_for_function("document.querySelector('#cards .chunk-card[data-state=done]')", timeout=30_000)
    screenshot(page, "midrun-freeculture.png")
    # The book's first page has no text layer: a warning, shown without getting in the way.
    assert watched.events("warning")
    assert page.locator("#warnings").is_visible()
    assert "no text layer" in page.inner_text("#warnings summary")
    page.click("#cancel")
    assert wait_for_phase(page, "cancelled", "done", "error", timeout_s=30) == "cancelled"
    assert {"type": "cancel"} in watched.client_messages()
    assert watched.events("cancelled")
    alert = page.locator("#job-alert")
    assert alert.is_visible() and "Cancelled" in alert.inner_text()
    assert page.inner_text("#headline") == "Cancelled"
    # Cards written before the cancel stay; nothing is left "writing".
    assert page.locator("#cards .chunk-card[data-state='done']").count() >= 1
    assert page.locator("#overview .cell[data-state='running']").count() == 0
    assert page.locator("#cancel").is_hidden() and page.locator("#again").is_visible()
    assert page.evaluate("window.__summarizer.lastSummary") is None
    screenshot(page, "cancelled-freeculture.png")


@pytest.mark.parametrize(
    ("name", "code", "words"),
    [
        ("encrypted-rc4-password.pdf", "encrypted_pdf", "password-protected"),
        ("image-only-ccitt.pdf", "no_text", "no text"),
    ],
)
def test_unreadable_pdf_shows_a_readable_error(watched: Watched, name: str, code: str, words: str) -> None:
    page = watched.page
    drop_file(page, corpus_file("bad", name))
    assert wait_for_phase(page, "error", "done", timeout_s=30) == "error"
    (error,) = watched.events("error")
    assert error["code"] == code
    alert = page.locator("#job-alert")
    assert alert.get_attribute("data-code") == code
    text = alert.inner_text()
    assert words in text.lower()
    assert error["message"] in text  # the server's own words, as details
    assert page.locator("#cancel").is_hidden()
    screenshot(page, f"error-{code}.png")
    if code == "encrypted_pdf":
        # The page offers to enter the password (the corpus README gives it) and tries again.
        page.fill("#secret-encrypted_pdf", "openpassword")
        page.click("#job-alert button[type=submit]")
        assert wait_for_phase(page, "done", "error", timeout_s=30) == "done"
        start = [m for m in watched.client_messages() if m["type"] == "start"][-1]
        assert start["options"]["password"] == "openpassword"
        assert page.evaluate("window.__summarizer.lastSummary")


def test_document_text_is_never_html(watched: Watched) -> None:
    page = watched.page
    script = "<script>window.__pwned=1</script>"
    img = '<img src=x onerror="window.__pwned=1">'
    text = (
        f"The attacker wrote {script} into the report to test the viewer.\n\n"
        f"The second paragraph adds an image tag {img} that must stay plain text.\n\n"
        "A summary must show these tags literally, as text, and never run them in the browser.\n"
    )
    drop_file(page, text.encode(), name="attack <b>bold</b>.txt")
    assert wait_for_phase(page, "done", "error", timeout_s=30) == "done"
    page.wait_for_timeout(200)  # give an injected onerror handler the chance to run
    assert page.evaluate("typeof window.__pwned") == "undefined"
    cards = "\n".join(card_texts(page))
    summary = page.inner_text("#summary-body")
    for payload in (script, img):
        assert payload in cards
        assert payload in summary
    assert page.locator("#job img, #job script, #job b").count() == 0
    assert page.inner_text("#file-name") == "attack <b>bold</b>.txt"


def test_unsupported_file_is_refused_before_upload(watched: Watched) -> None:
    page = watched.page
    drop_file(page, b"PK\x03\x04 not really a document", name="report.docx")
    alert = page.locator("#intake-alert")
    alert.wait_for(state="visible")
    assert "not supported" in alert.inner_text()
    assert "report.docx" in alert.inner_text()
    assert page.evaluate("document.body.dataset.phase") == "idle"
    assert watched.sent == []  # nothing went to the server


def test_keyboard_picker_and_phone_width(browser: Any, base_url: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    try:
        watched = open_page(context, base_url)
        page = watched.page
        # The drop zone is a focusable button reached with Tab, with a visible focus ring.
        for _ in range(8):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "dropzone":
                break
        assert page.evaluate("document.activeElement.id") == "dropzone"
        assert page.evaluate("getComputedStyle(document.activeElement).boxShadow") != "none"
        # Enter opens the file picker (the hidden <input type=file> is clicked); the native
        # dialog is suppressed and the file set directly, as a user's choice would.
        page.evaluate(
            "document.getElementById('file-input').addEventListener('click',"
            " (e) => { window.__pickerOpened = true; e.preventDefault(); })"
        )
        page.keyboard.press("Enter")
        page.wait_for_function("window.__pickerOpened === true", timeout=5_000)
        page.set_input_files("#file-input", str(SAMPLES / "documents" / "zen-of-python.md"))
        assert wait_for_phase(page, "done", "error", timeout_s=30) == "done"
        assert page.evaluate("window.__summarizer.lastSummary")
        # Readable at phone width: nothing wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "finished-phone.png")
        # Cards collapse and expand from the keyboard.
        toggle = page.locator("#cards .chunk-toggle").first
        toggle.focus()
        page.keyboard.press("Enter")
        assert toggle.get_attribute("aria-expanded") == "false"
        assert page.locator("#cards .chunk-body").first.is_hidden()
        # "New document" goes back to the drop zone.
        page.click("#again")
        assert wait_for_phase(page, "idle") == "idle"
        assert page.locator("#dropzone").is_visible()
        assert watched.console_errors == []
    finally:
        context.close()


def test_dropped_connection_is_reported_and_retry_works(watched: Watched) -> None:
    page = watched.page
    connections = 0

    def route(ws: Any) -> None:
        nonlocal connections
        connections += 1
        server = ws.connect_to_server()
        if connections == 1:
            # The first connection drops as soon as the first chunk starts.
            def forward(message: str | bytes) -> None:
                ws.send(message)
                if isinstance(message, str) and '"chunk.started"' in message:
                    ws.close(code=1011, reason="")

            server.on_message(forward)

    page.route_web_socket(re.compile(r".*/ws$"), route)
    drop_file(page, SAMPLES / "documents" / "zen-of-python.md")
    assert wait_for_phase(page, "error", "done", timeout_s=30) == "error"
    alert = page.locator("#job-alert")
    assert alert.get_attribute("data-code") == "connection_lost"
    assert "connection to the server was lost" in alert.inner_text().lower()
    page.click("#job-alert [data-action=retry]")
    assert wait_for_phase(page, "done", "error", timeout_s=30) == "done"
    assert connections == 2
    assert page.evaluate("window.__summarizer.lastSummary")


def test_server_unreachable_is_said_in_words(browser: Any) -> None:
    from .conftest import page_server

    context = browser.new_context()
    try:
        with page_server() as url:
            watched = open_page(context, url)
        page = watched.page
        drop_file(page, b"Some text that will never reach the server.", name="note.txt")
        assert wait_for_phase(page, "error", timeout_s=30) == "error"
        text = page.inner_text("#job-alert")
        assert "cannot be reached" in text
        assert page.locator("#job-alert [data-action=retry]").is_visible()
        # Chromium itself logs the failed WebSocket handshake; nothing else may be logged.
        others = [e for e in watched.console_errors if "WebSocket connection to" not in e]
        assert others == []
    finally:
        context.close()


def test_markdown_renderer_builds_only_safe_nodes(watched: Watched) -> None:
    source = (
        "# Findings\n\nSome **bold**, *emphasis*, `code` and ~~old~~ text.\n\n- one\n- two\n\n"
        "3. three\n4. four\n\n> quoted\n\n```\n<b>not bold</b>\n```\n\n"
        "[safe](https://example.com/a?b=1) [unsafe](javascript:alert(1)) <img src=x onerror=alert(1)> "
        "a_b_c and 2 * 3 * 4 stay as they are.\n"
    )
    html = watched.page.evaluate(
        """async (source) => {
          const { renderMarkdown } = await import(new URL("js/markdown.js", location.href));
          const box = document.createElement("div");
          renderMarkdown(box, source);
          return box.innerHTML;
        }""",
        source,
    )
    assert html.startswith("<h3>Findings</h3><p>Some <strong>bold</strong>, <em>emphasis</em>, <code>code")
    assert "<del>old</del>" in html
    assert "<ul><li>one</li><li>two</li></ul>" in html
    assert '<ol start="3"><li>three</li><li>four</li></ol>' in html
    assert "<blockquote><p>quoted</p></blockquote>" in html
    assert "<pre><code>&lt;b&gt;not bold&lt;/b&gt;</code></pre>" in html
    link = '<a href="https://example.com/a?b=1" rel="noopener noreferrer nofollow" target="_blank">safe</a>'
    assert link in html
    assert "[unsafe](javascript:alert(1)) &lt;img src=x onerror=alert(1)&gt;" in html
    assert "a_b_c and 2 * 3 * 4 stay as they are." in html
    assert "<img" not in html and "javascript:" not in html.split("[unsafe](")[0]
