"""Browser tests: the page at ``/`` in real headless Chromium, driven by Playwright.

Chromium comes from Debian's ``chromium`` package (``/usr/bin/chromium``, or
``$SUMMARIZER_CHROMIUM``); Playwright's own browser downloads are never used.
Without Chromium or the ``playwright`` package the tests are skipped.

The helpers here are shared with ``python -m tests.browser.screenshots``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from summarizer.settings import Settings

from ..conftest import CORPUS

CORPUS_DIR = CORPUS

CHROMIUM = Path(os.environ.get("SUMMARIZER_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"

# Small frames and a small ack window, so that even a 1 MB PDF exercises flow control.
FRAME_BYTES = 128 * 1024
ACK_WINDOW_BYTES = 256 * 1024

MEDIA_TYPES = {".pdf": "application/pdf", ".txt": "text/plain", ".md": "text/markdown"}


def chromium_available() -> bool:
    return CHROMIUM.exists()


def server_settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    """Settings for a test server: env-independent defaults, small frames and window."""
    values: dict[str, Any] = {"max_frame_bytes": FRAME_BYTES, "ack_window_bytes": ACK_WINDOW_BYTES}
    if data_dir is not None and "data_dir" in Settings.model_fields:
        values["data_dir"] = data_dir
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@contextlib.contextmanager
def page_server(**overrides: Any) -> Iterator[str]:
    """A real uvicorn server in a thread; yields the page's http:// URL."""
    from summarizer.cli import running_server

    data_dir = Path(tempfile.mkdtemp(prefix="summarizer-browser-"))
    try:
        with running_server(server_settings(data_dir, **overrides)) as ws_url:
            yield ws_url.replace("ws://", "http://", 1).removesuffix("ws")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


# The fault page server: a scripted OpenAI-compatible model (tests/fake_openai.py) behind
# a real summarizer server, for pages with real ``chunk.failed`` events.
FAULT_MODELS = ("openai:fake-poison", "openai:fake-stall-2")


@contextlib.contextmanager
def fault_page_server(**overrides: Any) -> Iterator[tuple[str, Any]]:
    """A page server whose models are ``tests.fake_openai`` faults; yields ``(url, fake)``.

    ``openai:fake-poison`` fails (HTTP 500) every chunk whose text contains ``POISON``;
    ``openai:fake-stall-2`` streams two words and stalls on its first two calls, so with
    one retry and one call at a time, chunk 0 streams partial text, then fails with
    ``model_timeout``. Call ``fake.reset()`` before each job.
    """
    from ..fake_openai import FakeOpenAI

    with FakeOpenAI(stall_s=3.0).running() as fake:
        values: dict[str, Any] = {
            "model": FAULT_MODELS[0],
            "models": list(FAULT_MODELS),
            "base_url": fake.url,
            "max_retries": 1,
            "retry_base_s": 0.01,
            "retry_max_s": 0.05,
            "read_timeout_s": 10.0,
            "stall_timeout_s": 0.5,
            "concurrency": 1,
            "chunk_size": 480,
            "chunk_overlap": 0,
        }
        values.update(overrides)
        with page_server(**values) as url:
            yield url, fake


def poisoned_pages(pages: int = 32, poisoned: tuple[int, ...] = (12, 13, 14, 30)) -> bytes:
    """A text document of ``pages`` form-feed separated pages, one chunk each (chunk size 480).

    The ``poisoned`` pages end with ``POISON``: ``openai:fake-poison`` fails their chunks, so
    the summary's ``missing_pages`` are exactly those pages as ranges ([[12, 14], [30, 30]]).
    """

    def page(n: int) -> str:
        # Every page the same length, 455 characters (463 with POISON): the chunker cuts a
        # 480-character chunk at a paragraph break (pages are joined by one) only in the
        # window's last 6 % (451-478), so with these lengths each chunk is one page.
        text = " ".join(
            f"Page {n:03d} sentence {i} tells about harbour {n:03d}{i}, its old lighthouse, the keeper's"
            " logbook and the ships it saw then."
            for i in range(4)
        )
        return text + (" POISON." if n in poisoned else "")

    return "\f".join(page(n) for n in range(1, pages + 1)).encode("utf-8")


def launch_browser(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)


@dataclass
class Watched:
    """A page with its console errors, page errors and WebSocket frames recorded."""

    page: Any
    console_errors: list[str] = field(default_factory=list)
    received: list[str] = field(default_factory=list)
    sent: list[str | bytes] = field(default_factory=list)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Server events (parsed JSON text frames), optionally of one ``type``."""
        out = [json.loads(raw) for raw in self.received]
        return [e for e in out if kind is None or e.get("type") == kind]

    def client_messages(self) -> list[dict[str, Any]]:
        return [json.loads(m) for m in self.sent if isinstance(m, str)]


def watch(page: Any) -> Watched:
    watched = Watched(page)

    def on_console(message: Any) -> None:
        if message.type == "error":
            watched.console_errors.append(f"console: {message.text}")

    def on_websocket(ws: Any) -> None:
        ws.on("framereceived", lambda payload: watched.received.append(payload))
        ws.on("framesent", lambda payload: watched.sent.append(payload))

    page.on("console", on_console)
    page.on("pageerror", lambda error: watched.console_errors.append(f"pageerror: {error}"))
    page.on("websocket", on_websocket)
    return watched


def open_page(context: Any, base_url: str) -> Watched:
    page = context.new_page()
    watched = watch(page)
    page.goto(base_url)
    page.wait_for_function(
        "() => document.querySelector('#server-status').dataset.status === 'ok'", timeout=60_000
    )
    return watched


_DROP_JS = """
async ({data, name, type}) => {
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const file = new File([bytes], name, {type});
  const transfer = new DataTransfer();
  transfer.items.add(file);
  const target = document.querySelector("main");
  for (const kind of ["dragenter", "dragover", "drop"]) {
    target.dispatchEvent(new DragEvent(kind, {bubbles: true, cancelable: true, dataTransfer: transfer}));
  }
}
"""


def drop_file(page: Any, data: bytes | Path, name: str | None = None, media_type: str | None = None) -> None:
    """Drop a file onto the page with a synthetic ``DataTransfer`` (as a user's drag and drop)."""
    if isinstance(data, Path):
        name = name or data.name
        data = data.read_bytes()
    name = name or "document.txt"
    if media_type is None:
        media_type = MEDIA_TYPES.get(Path(name).suffix.lower(), "")
    encoded = base64.b64encode(data).decode("ascii")
    page.evaluate(_DROP_JS, {"data": encoded, "name": name, "type": media_type})


# Note for waits: pass ``page.wait_for_function`` a function (``"() => ..."``), never a
# bare expression. Playwright polls a bare expression with ``eval``, which the page's
# Content-Security-Policy (script-src 'self', no 'unsafe-eval') refuses; functions are
# sent over CDP and are not subject to it.


def wait_for_phase(page: Any, *phases: str, timeout_s: float = 60) -> str:
    """Wait until ``body[data-phase]`` is one of ``phases``; returns it."""
    page.wait_for_function(
        "(phases) => phases.includes(document.body.dataset.phase)", arg=list(phases), timeout=timeout_s * 1000
    )
    return str(page.evaluate("document.body.dataset.phase"))


_CAPTURE_ON = """() => new Promise((resolve) => {
  document.body.classList.add("capture");
  requestAnimationFrame(() => requestAnimationFrame(() => resolve(true)));
})"""


def screenshot(page: Any, name: str, *, full_page: bool = True, directory: Path = ARTIFACTS) -> Path:
    """Save a screenshot of the page in capture mode.

    Capture mode (``body.capture``) turns off ``content-visibility: auto`` on the chunk
    cards, so a full-page shot shows every card filled, as a person scrolling sees them,
    not the empty boxes the browser leaves for cards it has not rendered.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    page.evaluate(_CAPTURE_ON)
    try:
        page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    finally:
        page.evaluate("() => document.body.classList.remove('capture')")
    return path


# ---------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------


# Module scope, not session: while Playwright's sync API runs, its event loop is the
# running loop of the main thread, so any later test calling ``asyncio.run`` would
# fail. Stopping it when the browser module is done leaves no loop behind.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not chromium_available():
        pytest.skip(f"{CHROMIUM} not found (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    playwright = sync_api.sync_playwright().start()
    try:
        browser = launch_browser(playwright)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="module")
def base_url(browser: Any) -> Iterator[str]:
    with page_server() as url:
        yield url


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def watched(context: Any, base_url: str) -> Iterator[Watched]:
    """The page, freshly loaded; the test fails on any console error or uncaught exception."""
    watched = open_page(context, base_url)
    yield watched
    assert watched.console_errors == []
