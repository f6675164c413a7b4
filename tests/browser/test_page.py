"""The web page in headless Chromium against a real server: upload, progress, cards, summary,
cancel, errors, XSS safety, keyboard, phone width, dropped connections (reconnect and resume)
and reopening recent jobs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ..conftest import SAMPLES, corpus_file
from .conftest import (
    ACK_WINDOW_BYTES,
    FRAME_BYTES,
    Watched,
    drop_file,
    open_page,
    screenshot,
    wait_for_phase,
    watch,
)

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
    statuses = page.eval_on_selector_all(
        "#stages li:not([hidden])", "items => items.map(li => li.dataset.status)"
    )
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
    page.wait_for_function(
        "() => document.querySelectorAll('#cards .chunk-card').length >= 4", timeout=60_000
    )
    assert page.evaluate("document.body.dataset.phase") == "processing"
    # Mid-run the bar shows a real percentage (not NaN), short of 100.
    page.wait_for_function("() => window.__summarizer.percent > 0", timeout=30_000)
    assert 0 < page.evaluate("window.__summarizer.percent") < 100
    page.wait_for_function(
        "() => document.querySelector('#cards .chunk-card[data-state=done]')", timeout=30_000
    )
    screenshot(page, "midrun-freeculture.png")
    # The book's first page has no text layer: a server that can OCR reads it (the OCR step
    # shows); one that cannot warns, shown without getting in the way. The cover is OCR'd
    # beside the first chunks (at a lower priority): its step may come after them.
    for _ in range(300):
        if watched.events("warning") or any(e["stage"] == "ocr" for e in watched.events("progress")):
            break
        page.wait_for_timeout(100)
    if any(e["stage"] == "ocr" for e in watched.events("progress")):
        # The frame is seen on the wire a moment before the page has drawn it.
        page.locator("#stages li[data-stage='ocr']").wait_for(state="visible", timeout=5_000)
    else:
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
        page.wait_for_function("() => window.__pickerOpened === true", timeout=5_000)
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


def unique_events(watched: Watched, kind: str | None = None) -> list[dict[str, Any]]:
    """The job's events as the server logged them: each ``seq`` once, in order (resends dropped)."""
    by_seq = {e["seq"]: e for e in watched.events() if e.get("seq")}
    return [by_seq[n] for n in sorted(by_seq) if kind is None or by_seq[n]["type"] == kind]


def test_dropped_socket_reconnects_with_resume_and_applies_events_once(watched: Watched) -> None:
    page = watched.page
    # Resume five events early: the server sends them again, and the page must drop them.
    page.evaluate("window.__summarizer.reconnect.rewind = 5")
    drop_file(page, corpus_file("pdf", "tracemonkey.pdf"))
    page.wait_for_function(
        "() => document.querySelectorAll('#cards .chunk-card').length >= 3", timeout=30_000
    )
    # The socket drops mid-job (as a network failure would); the job goes on on the server.
    assert page.evaluate("window.__summarizer.dropConnection()") is True
    assert wait_for_phase(page, "done", "error", "cancelled", timeout_s=60) == "done"

    # The page reconnected by itself, with `resume` for its job from the last event it had.
    messages = watched.client_messages()
    assert [m["type"] for m in messages].count("start") == 1
    (resume,) = [m for m in messages if m["type"] == "resume"]
    (accepted,) = unique_events(watched, "accepted")
    assert resume["job_id"] == accepted["job_id"]
    assert resume["last_seq"] > 5
    (resumed,) = watched.events("resumed")
    assert resumed["seq"] == 0 and resumed["state"] in ("processing", "done")
    assert page.evaluate("window.__summarizer.reconnects") == 1
    # The five events sent again were dropped: every event was applied exactly once.
    assert page.evaluate("window.__summarizer.duplicates") == 5

    # One card per chunk, each with its summary once; the final summary is the protocol's.
    (document,) = unique_events(watched, "document")
    chunk_summaries = sorted(unique_events(watched, "chunk.summary"), key=lambda e: e["index"])
    assert len(chunk_summaries) == document["chunks"] > 3
    assert card_texts(page) == [e["text"] for e in chunk_summaries]
    assert page.locator("#overview .cell").count() == document["chunks"]
    (summary,) = unique_events(watched, "summary")
    assert page.evaluate("window.__summarizer.lastSummary") == summary["text"]
    assert squash(page.inner_text("#summary-body")) == squash(summary["text"])
    assert page.locator("#job-alert").is_hidden()


def test_dropped_upload_gives_up_then_try_again_resumes_it(watched: Watched) -> None:
    page = watched.page
    page.evaluate("Object.assign(window.__summarizer.reconnect, {baseMs: 20, maxMs: 40, attempts: 2})")
    pdf = corpus_file("pdf", "GeoBase_NHNC1_Data_Model_UML_EN.pdf")  # 360 kB: three frames
    refuse = True
    connections: list[dict[str, list[Any]]] = []

    def route(ws: Any) -> None:
        log: dict[str, list[Any]] = {"up": [], "down": []}
        connections.append(log)
        number = len(connections)
        if number > 1 and refuse:
            ws.close(code=1011)  # the server cannot be reached for now
            return
        server = ws.connect_to_server()

        def upstream(message: str | bytes) -> None:
            log["up"].append(message)
            server.send(message)
            if number == 1 and sum(isinstance(m, bytes) for m in log["up"]) == 2:
                ws.close(code=1011)  # the connection drops in the middle of the upload

        def downstream(message: str | bytes) -> None:
            log["down"].append(message)
            ws.send(message)

        ws.on_message(upstream)
        if number == 1:
            # Only the first connection's few events go through Python; later ones are
            # forwarded by Playwright itself (thousands of token events would be slow here).
            server.on_message(downstream)

    page.route_web_socket(re.compile(r".*/ws$"), route)
    drop_file(page, pdf)
    # The page tries to reconnect (twice, as tuned above), then says the connection was lost.
    assert wait_for_phase(page, "error", "done", timeout_s=30) == "error"
    alert = page.locator("#job-alert")
    assert alert.get_attribute("data-code") == "connection_lost"
    assert "connection to the server was lost" in alert.inner_text().lower()
    assert page.evaluate("window.__summarizer.reconnects") == 2
    assert len(connections) == 3

    # Try again resumes the job (no second `start`) and uploads only the bytes the server lacks.
    refuse = False
    page.click("#job-alert [data-action=retry]")
    assert wait_for_phase(page, "done", "error", timeout_s=30) == "done"
    assert len(connections) == 4
    first = connections[0]
    started = json.loads(first["up"][0])
    assert started["type"] == "start"
    job_id = json.loads(first["down"][0])["job_id"]
    last = connections[-1]
    resume = json.loads(last["up"][0])
    assert resume == {"type": "resume", "job_id": job_id, "last_seq": 0}
    resumed = page.evaluate("window.__summarizer.lastResumed")
    assert resumed["job_id"] == job_id and resumed["state"] == "uploading"
    assert 0 <= resumed["received"] < pdf.stat().st_size
    assert sum(len(m) for m in last["up"] if isinstance(m, bytes)) == pdf.stat().st_size - resumed["received"]
    assert all(
        json.loads(m)["type"] != "start" for c in connections[1:] for m in c["up"] if isinstance(m, str)
    )
    assert json.loads(last["up"][-1])["type"] == "end"
    assert page.evaluate("window.__summarizer.lastSummary")
    assert (
        page.locator("#cards .chunk-card[data-state='done']").count()
        == page.locator("#overview .cell").count()
        > 1
    )


def test_recent_jobs_reopen_a_finished_job_after_reload(watched: Watched, base_url: str) -> None:
    page = watched.page
    drop_file(page, SAMPLES / "documents" / "zen-of-python.md")
    assert wait_for_phase(page, "done", "error", timeout_s=30) == "done"
    (summary,) = watched.events("summary")
    cards = card_texts(page)
    shown = page.inner_text("#summary-body")
    job_id = summary["job_id"]

    # After a reload the job is listed under "Recent jobs"; opening it replays its log.
    page.reload()
    page.wait_for_function("() => document.querySelector('#server-status').dataset.status === 'ok'")
    recent = page.locator("#recent")
    assert recent.is_visible()
    item = page.locator(f"#recent-list .recent-open[data-job-id='{job_id}']")
    assert "zen-of-python.md" in item.inner_text() and "done" in item.inner_text()
    watched.sent.clear()
    item.click()
    assert wait_for_phase(page, "done", "error", timeout_s=30) == "done"
    assert watched.client_messages() == [{"type": "resume", "job_id": job_id, "last_seq": 0}]
    assert page.evaluate("window.__summarizer.lastSummary") == summary["text"]
    assert page.inner_text("#summary-body") == shown
    assert card_texts(page) == cards
    assert page.locator("#overall").get_attribute("aria-valuenow") == "100"
    assert page.inner_text("#file-name") == "zen-of-python.md"

    # A job the server no longer knows (expired) is explained and removed from the list.
    page.click("#again")
    wait_for_phase(page, "idle")
    page.evaluate(
        """() => {
          const list = JSON.parse(localStorage.getItem("summarizer.jobs"));
          list.unshift({job_id: "0".repeat(32), filename: "old.pdf", size: 10,
                        started: Date.now() - 1e8, state: "done"});
          localStorage.setItem("summarizer.jobs", JSON.stringify(list));
        }"""
    )
    page.reload()
    page.wait_for_function("() => document.querySelector('#server-status').dataset.status === 'ok'")
    page.click(f"#recent-list .recent-open[data-job-id='{'0' * 32}']")
    alert = page.locator("#intake-alert")
    alert.wait_for(state="visible")
    assert "no longer available" in alert.inner_text() and "old.pdf" in alert.inner_text()
    assert page.evaluate("document.body.dataset.phase") == "idle"
    assert page.locator(f"#recent-list .recent-open[data-job-id='{'0' * 32}']").count() == 0
    assert page.locator(f"#recent-list .recent-open[data-job-id='{job_id}']").count() == 1


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


_CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""


def test_page_runs_under_its_content_security_policy(browser: Any, base_url: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        context.add_init_script(_CSP_WATCH)
        page = context.new_page()
        watched = watch(page)
        response = page.goto(base_url)
        assert response is not None
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        page.wait_for_function("() => document.querySelector('#server-status').dataset.status === 'ok'")
        # A whole job (upload over the WebSocket, streamed cards, the summary, the icons) ...
        drop_file(page, SAMPLES / "documents" / "zen-of-python.md")
        assert wait_for_phase(page, "done", "error", timeout_s=60) == "done"
        assert page.evaluate("window.__summarizer.lastSummary")
        page.click("#cards .chunk-toggle")  # and some interaction
        # ... violates nothing: no violation event, no "Refused to ..." console error.
        assert page.evaluate("window.__cspViolations") == []
        assert watched.console_errors == []
        # The policy is enforced (so the empty list above means something): an inline
        # script injected into the page does not run, and is reported.
        page.evaluate(
            "() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
            " document.body.append(s); }"
        )
        page.wait_for_function("() => window.__cspViolations.length > 0", timeout=10_000)
        assert page.evaluate("typeof window.__inline") == "undefined"
        assert any("script-src" in v for v in page.evaluate("window.__cspViolations"))
    finally:
        context.close()
