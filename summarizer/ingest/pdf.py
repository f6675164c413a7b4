"""PDF text extraction (and OCR) in a separate, killable, memory-capped process.

pypdf is pure Python and a hostile PDF can make it spin or allocate without
bound, so every document is parsed by its own worker process:

* the worker is its own program, ``python -m summarizer.ingest.worker``
  (:mod:`summarizer.ingest.worker`), started with :mod:`subprocess` and
  spoken to over its stdin/stdout with length-prefixed JSON frames. It never
  imports the caller's ``__main__`` (as :mod:`multiprocessing` does), so a
  script without an ``if __name__ == "__main__":`` guard works;
* its address space is capped with ``RLIMIT_AS`` (``parse_memory_bytes``) and
  pypdf's own resource limits are tightened (:data:`PYPDF_LIMITS`);
* it sends each page's text back as soon as it is extracted (or OCR'd); a
  parent-side thread drains the pipe into an :class:`asyncio.Queue`, so
  extraction keeps going while the event loop is busy and pages are yielded
  one by one;
* it runs in its own process group, killed as a whole (with any Tesseract
  process it started) on a wall-clock timeout (``parse_timeout_s``), when the
  consumer stops (``asyncio.CancelledError``, ``aclose()``) and on any error.

A worker that cannot start is an ``internal_error`` that says so; only what
the worker reports about the file becomes a document error.

pypdf's warnings (it logs a lot about repaired files and fonts) are forwarded
from the worker as :class:`PdfNotice` events instead of being printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any, Final

from summarizer.errors import (
    DamagedDocument,
    DocumentError,
    EncryptedDocument,
    ErrorCode,
    LimitExceeded,
    SummarizerError,
)
from summarizer.ingest.source import DocumentFile
from summarizer.ingest.structure import OutlineEntry, PdfOutline
from summarizer.ingest.worker import EXIT_OUT_OF_MEMORY, FRAME_HEADER, PYPDF_LIMITS, WorkerConfig, write_frame

__all__ = [
    "PROCESS_NAME",
    "PYPDF_LIMITS",
    "WORKER_MODULE",
    "PdfCoverRead",
    "PdfEvent",
    "PdfNotice",
    "PdfOcrPlan",
    "PdfOcrUnavailable",
    "PdfOpened",
    "PdfOutlineRead",
    "PdfPage",
    "extract_pages",
    "live_workers",
    "prewarm",
    "spare_workers",
    "stop_prewarmed",
    "unreadable_reason",
    "worker_command",
]

logger = logging.getLogger(__name__)

PROCESS_NAME: Final = "summarizer-pdf-worker"
"""Name of the parent-side threads that own a worker (``<name>-pump``)."""

WORKER_MODULE: Final = "summarizer.ingest.worker"
"""The module the worker runs (``python -m``)."""

_POLL_INTERVAL_S: Final = 0.1
"""How often the pump thread checks for a stop request or the deadline (seconds)."""
_TEXT_LIMIT_FACTOR: Final = 2
"""The worker is stopped once it has sent this many times ``max_text_chars``
characters of raw text (headers, footers and all), bounding parent memory."""
_STDERR_TAIL_BYTES: Final = 2000
"""How much of a worker's stderr a start failure quotes (bytes)."""
RANGE_PAGES: Final = 4
"""Pages per range handed to a worker when several share a document."""
SPLIT_MIN_PAGES: Final = 24
"""Documents with fewer pages are read by one worker (a second one would not pay for its start)."""
SPLIT_LATEST_PAGES: Final = 32
"""Pages handed to the first worker after which the others start even if ``split_gate`` is not set."""
_WEDGE_MARGIN_BYTES: Final = 4 * 1024**2
"""A worker whose address space is this close to its limit cannot even allocate an arena (bytes)."""
_WEDGE_S: Final = 1.0
"""How long a worker may sit at its memory limit without a word before it counts as out of memory (s)."""

_live_lock = threading.Lock()
_live: set[int] = set()


def live_workers() -> list[int]:
    """Process group ids of the workers this process has started and not yet reaped.

    A group id is the worker's pid; the group also holds any Tesseract process
    the worker started, and it is killed as a whole.

    Returns:
        Group ids (integers), in no particular order.
    """
    with _live_lock:
        return sorted(_live)


_spare_lock = threading.Lock()
# Idle started workers, their stderr and the environment they were started with.
_spares: list[tuple[subprocess.Popen[bytes], IO[bytes], dict[str, str]]] = []
_spare_target = 0
_parsing = 0  # documents this process's workers are reading now (under _spare_lock)
_parsing_ended = threading.Condition(_spare_lock)
_refill_pending = False  # a thread waits to start the spares taken (under _spare_lock)

REFILL_MAX_DELAY_S: Final = 10.0
"""Longest the replacement of a taken spare waits for this process's parsing to end (s).

A spare's start is a fresh interpreter importing pypdf: 0.3 s of CPU. Started at
once, the replacements of the two workers a book takes compete on two cores with
the very pages whose first chunk the user waits for (first chunk token of
``freeculture.pdf`` 1.02-1.14 of its reference, against 0.87-0.95 with the start
deferred, interleaved runs of ``bench.user_path``'s measure). So they start when
no document is being parsed, or after this delay under a steady stream of PDFs.
"""


def prewarm(count: int = 1) -> None:
    """Keep ``count`` workers started and idle, ready for the next documents.

    A worker's start (a fresh interpreter importing pypdf: 0.1-0.5 s) then
    happens before the upload, not after it: the next document is handed to an
    idle worker that already loaded pypdf, and a new spare is started for the
    one after once no document is being parsed (at most
    :data:`REFILL_MAX_DELAY_S` later), so that its start takes no CPU from the
    pages being read. Spares are not in :func:`live_workers` until they take a job;
    one whose parent dies sees the end of its stdin and exits. Call it at
    server start; :func:`stop_prewarmed` at shutdown.

    Args:
        count: Idle workers to keep (0 to 8).

    Raises:
        ValueError: If ``count`` is out of range.
    """
    global _spare_target
    if not 0 <= count <= 8:
        raise ValueError(f"count must be 0 to 8 workers, got {count}")
    with _spare_lock:
        _spare_target = count
    _replenish()


def spare_workers() -> list[int]:
    """Process ids of the idle prewarmed workers (see :func:`prewarm`), in start order."""
    with _spare_lock:
        return [process.pid for process, _, _ in _spares]


def stop_prewarmed() -> None:
    """Stop keeping idle workers and end the ones started (blocking, up to 5 s each)."""
    global _spare_target
    with _spare_lock:
        _spare_target = 0
        spares = list(_spares)
        _spares.clear()
    for process, stderr, _ in spares:
        _kill_group(process)
        with contextlib.suppress(Exception):
            process.wait(5.0)
        _close_pipes(process)
        stderr.close()


def _spawn(
    command: list[str], stderr: IO[bytes], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env if env is not None else _worker_env(),
        start_new_session=True,  # its own process group, killed as a whole
        close_fds=True,
    )


def _replenish() -> None:
    """Start spares up to the target (in the calling thread)."""
    while True:
        with _spare_lock:
            if len(_spares) >= _spare_target:
                return
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - kept open with the spare
        env = _worker_env()
        try:
            process = _spawn(worker_command(), stderr, env)
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            stderr.close()
            logger.warning("cannot prewarm a PDF worker: %s", exc)
            return
        with _spare_lock:
            if len(_spares) < _spare_target:
                _spares.append((process, stderr, env))
                continue
        _kill_group(process)  # the target went down meanwhile
        with contextlib.suppress(Exception):
            process.wait(5.0)
        _close_pipes(process)
        stderr.close()
        return


def _take_spare(command: list[str]) -> tuple[subprocess.Popen[bytes], IO[bytes]] | None:
    """An idle prewarmed worker for ``command`` (and start its replacement), or ``None``.

    A spare started under another environment than today's (``PATH``, say, which
    decides whether Tesseract is found) is not the worker asked for: it is ended.
    """
    if command != worker_command():
        return None
    taken = None
    env = _worker_env()
    stale: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
    with _spare_lock:
        while _spares and taken is None:
            process, stderr, started_with = _spares.pop(0)
            if process.poll() is None and started_with == env:
                taken = (process, stderr)
            else:
                stale.append((process, stderr))
        wanted = _spare_target > 0
    for process, stderr in stale:
        _kill_group(process)
        with contextlib.suppress(Exception):
            process.wait(5.0)
        _close_pipes(process)
        stderr.close()
    if wanted:
        _refill_later()
    return taken


def _refill_later() -> None:
    """Start the missing spares once no document is being parsed (see :data:`REFILL_MAX_DELAY_S`)."""
    global _refill_pending
    with _spare_lock:
        if _refill_pending:
            return
        _refill_pending = True

    def refill() -> None:
        global _refill_pending
        deadline = time.monotonic() + REFILL_MAX_DELAY_S
        with _parsing_ended:
            while _parsing and (left := deadline - time.monotonic()) > 0:
                _parsing_ended.wait(left)
            _refill_pending = False
        _replenish()

    threading.Thread(target=refill, name=PROCESS_NAME + "-prewarm", daemon=True).start()


def _parsing_started() -> None:
    global _parsing
    with _spare_lock:
        _parsing += 1


def _parsing_stopped() -> None:
    global _parsing
    with _parsing_ended:
        _parsing -= 1
        if not _parsing:
            _parsing_ended.notify_all()


def _close_pipes(process: subprocess.Popen[bytes]) -> None:
    for stream in (process.stdin, process.stdout):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.close()


def worker_command() -> list[str]:
    """The command that starts a worker: this interpreter, ``-m`` :data:`WORKER_MODULE`.

    Returns:
        ``[sys.executable, "-m", "summarizer.ingest.worker"]``.
    """
    return [sys.executable, "-m", WORKER_MODULE]


def _worker_env() -> dict[str, str]:
    """The parent's environment, with this copy of the package first on ``PYTHONPATH``.

    So the worker runs the same code as the parent, whatever its working directory.
    OpenMP in Tesseract is limited to one thread: pages run in parallel instead.
    """
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(part for part in (root, env.get("PYTHONPATH", "")) if part)
    env["OMP_THREAD_LIMIT"] = "1"
    env["OPENBLAS_NUM_THREADS"] = "1"  # numpy (imported by pytesseract) reserves less memory
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return env


@dataclass(frozen=True, slots=True)
class PdfOpened:
    """The PDF was opened (and decrypted); its page count is known.

    Attributes:
        pages: Number of pages in the page tree.
    """

    pages: int


@dataclass(frozen=True, slots=True)
class PdfPage:
    """The text of one page, in page order.

    Attributes:
        number: 1-based page number.
        text: Text as pypdf extracted it, or as OCR read it (``""`` if none or on error).
        has_images: For pages without text: whether the page draws images
            (a scan that needs OCR). ``False`` for pages with text.
        blank: For pages without text: whether the content stream is empty.
        error: Why the page could not be read (``"LimitReachedError: ..."``),
            or ``None``.
        ocr: ``True`` when ``text`` comes from OCR.
        deferred: A cover (see :data:`summarizer.ingest.worker.COVER_PAGES`)
            sent without its text while it is OCR'd; a :class:`PdfCoverRead`
            follows.
    """

    number: int
    text: str
    has_images: bool = False
    blank: bool = False
    error: str | None = None
    ocr: bool = False
    deferred: bool = False


@dataclass(frozen=True, slots=True)
class PdfCoverRead:
    """The OCR of a cover page yielded earlier as a ``deferred`` :class:`PdfPage`.

    It may come any time after that page, before the iterator ends.

    Attributes:
        page: The page as OCR read it (``text`` empty, ``error`` set, if OCR failed).
    """

    page: PdfPage


@dataclass(frozen=True, slots=True)
class PdfNotice:
    """A warning pypdf logged while reading (usually about a repaired file).

    Attributes:
        source: The pypdf logger name, e.g. ``"pypdf._reader"``.
        message: The warning text.
    """

    source: str
    message: str


@dataclass(frozen=True, slots=True)
class PdfOcrPlan:
    """OCR is on and available; about this many pages will be OCR'd.

    Attributes:
        pages: Estimated pages to OCR (every page with ``force``; with
            ``auto``, pages that draw images and use no font, an estimate).
    """

    pages: int


@dataclass(frozen=True, slots=True)
class PdfOcrUnavailable:
    """OCR was asked for but cannot run here (sent once, before the pages).

    Attributes:
        reason: Why, and what to install (e.g. ``"pytesseract is not installed ..."``).
    """

    reason: str


@dataclass(frozen=True, slots=True)
class PdfOutlineRead:
    """The PDF's metadata title and outline (bookmarks), sent after :class:`PdfOpened`, before the pages.

    Attributes:
        outline: What :func:`summarizer.ingest.structure.pdf_outline` read
            (without page labels).
    """

    outline: PdfOutline


PdfEvent = PdfOpened | PdfOutlineRead | PdfPage | PdfCoverRead | PdfNotice | PdfOcrPlan | PdfOcrUnavailable
"""What :func:`extract_pages` yields."""


_MAX_OUTLINE_ENTRIES: Final = 2000
_MAX_OUTLINE_TITLE_CHARS: Final = 1000


def _parse_outline(message: Sequence[Any]) -> PdfOutline:
    """The worker's ``["outline", title, entries]`` message as a :class:`PdfOutline`.

    The strings come from the (possibly hostile) file: wrong types are dropped,
    titles are capped at 1,000 characters and the outline at 2,000 entries.
    """
    title = message[1] if len(message) > 1 and isinstance(message[1], str) else None
    raw = message[2] if len(message) > 2 and isinstance(message[2], list) else []
    entries = tuple(
        OutlineEntry(item[0][:_MAX_OUTLINE_TITLE_CHARS], item[1], item[2])
        for item in raw[:_MAX_OUTLINE_ENTRIES]
        if isinstance(item, list)
        and len(item) == 3
        and isinstance(item[0], str)
        and all(isinstance(n, int) and not isinstance(n, bool) for n in item[1:])
    )
    return PdfOutline(title=title[:_MAX_OUTLINE_TITLE_CHARS] if title else None, entries=entries)


async def extract_pages(
    data: bytes | DocumentFile,
    *,
    password: str | None = None,
    timeout_s: float = 600.0,
    memory_bytes: int = 2 * 1024**3,
    max_text_chars: int = 20_000_000,
    ocr: str = "off",
    ocr_languages: str = "eng",
    ocr_workers: int = 1,
    ocr_page_timeout_s: float = 60.0,
    ocr_dpi: int = 300,
    ocr_max_pixels: int = 25_000_000,
    workers: int = 1,
    split_gate: threading.Event | None = None,
    command: Sequence[str] | None = None,
) -> AsyncGenerator[PdfEvent, None]:
    """Extract a PDF's text page by page in a worker process.

    Yields :class:`PdfOpened` first, then one :class:`PdfPage` per page in
    order, with :class:`PdfNotice` events interleaved (and, with OCR on,
    :class:`PdfOcrPlan` or :class:`PdfOcrUnavailable` before the pages, and
    :class:`PdfCoverRead` after a ``deferred`` cover page). The
    worker is killed when the iterator is closed or cancelled, so use it with
    :func:`contextlib.aclosing` if you may stop early.

    Args:
        data: The whole PDF file: its bytes, or a :class:`DocumentFile` that
            holds them (each worker then receives them streamed from the file,
            and this process never holds the document).
        password: Tried after the empty password if the PDF is encrypted.
        timeout_s: Wall-clock limit for the worker (seconds), counted from its
            start, independent of how fast pages are consumed; it covers OCR.
        memory_bytes: Address-space limit of the worker (bytes), also applied
            to each Tesseract process it starts.
        max_text_chars: Expected text limit (characters); the worker is
            stopped after sending twice as much raw text.
        ocr: ``"off"`` (default), ``"auto"`` (OCR textless pages that have
            images) or ``"force"`` (OCR every page).
        ocr_languages: Tesseract language codes, ``+``-joined (default ``"eng"``).
        ocr_workers: Pages OCR'd in parallel (default 1).
        ocr_page_timeout_s: Time limit of one page's OCR (seconds, default 60).
        ocr_dpi: Rendering resolution for OCR (dots per inch, default 300).
        ocr_max_pixels: Pixel cap of a rendered page (default 25,000,000).
        workers: Worker processes that may read one document's pages at
            once (default 1). With more than one, the first worker reads the
            first pages while the others start; documents of at least
            :data:`SPLIT_MIN_PAGES` pages (not a scan that OCR will read) are then read
            in ranges of :data:`RANGE_PAGES` pages handed to whichever worker
            asks next, and yielded in page order. Each worker has the memory
            limit, all share the wall-clock limit, and all are killed together.
        split_gate: With ``workers > 1``, the other workers start only once
            this is set (the caller sets it when its first chunk is out) or
            once the first worker was handed :data:`SPLIT_LATEST_PAGES` pages;
            the first worker then has a core of its own for the pages the user
            waits for (``None``, the default: at the first worker's first
            range). Checked when the first worker asks for its next range.
        command: The worker command (default :func:`worker_command`); tests
            pass a broken one.

    Yields:
        :data:`PdfEvent` values.

    Raises:
        EncryptedDocument: The PDF needs a password that was not given or is wrong.
        DamagedDocument: pypdf cannot open the file, the page tree is broken,
            the worker ran out of memory or died while reading it.
        DocumentError: ``parse_timeout`` when ``timeout_s`` elapsed.
        LimitExceeded: The PDF holds far more text than ``max_text_chars``.
        SummarizerError: ``internal_error`` if the worker cannot be started
            (or exits before it is ready); the message says so.
        ValueError: For an unknown ``ocr`` mode.
    """
    if ocr not in ("off", "auto", "force"):
        raise ValueError(f"ocr must be 'off', 'auto' or 'force', got {ocr!r}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[int, tuple[Any, ...]]] = asyncio.Queue()
    config = WorkerConfig(
        password=password,
        memory_bytes=memory_bytes,
        ocr=ocr,
        ocr_languages=ocr_languages,
        ocr_workers=max(1, ocr_workers),
        ocr_page_timeout_s=ocr_page_timeout_s,
        ocr_dpi=ocr_dpi,
        ocr_max_pixels=ocr_max_pixels,
        ranges=workers > 1,
    )
    group = _Group(
        data,
        config=config,
        command=list(command) if command is not None else worker_command(),
        timeout_s=timeout_s,
        max_raw_chars=_TEXT_LIMIT_FACTOR * max_text_chars,
        workers=workers,
        split_gate=split_gate,
        post=lambda index, message: loop.call_soon_threadsafe(queue.put_nowait, (index, message)),
    )
    group.start()
    pages_total: int | None = None
    next_page = 1  # the next page number to yield
    held: dict[int, PdfPage] = {}  # pages that came before an earlier one
    primary_done = False
    said: set[tuple[Any, ...]] = set()  # notices and OCR messages already passed on
    covers: set[int] = set()  # deferred cover pages whose OCR has not come yet
    try:
        while True:
            index, message = await queue.get()
            kind = message[0]
            if kind == "opened":
                if index == 0:
                    pages_total = message[1]
                    yield PdfOpened(pages=message[1])
                elif message[1] != pages_total:
                    raise SummarizerError(
                        f"Two PDF workers saw {pages_total} and {message[1]} pages in the same file; "
                        "please report this.",
                        code=ErrorCode.INTERNAL_ERROR,
                        retryable=True,
                    )
            elif kind == "outline":
                if index == 0:
                    yield PdfOutlineRead(_parse_outline(message))
            elif kind == "page":
                _, number, text, has_images, blank, error, from_ocr, deferred = message
                if not group.owns(index, number) or number < next_page or number in held:
                    raise _stray_page(number)
                if deferred:
                    covers.add(number)
                held[number] = PdfPage(
                    number,
                    text,
                    has_images=has_images,
                    blank=blank,
                    error=error,
                    ocr=from_ocr,
                    deferred=deferred,
                )
                while next_page in held:
                    page = held.pop(next_page)
                    next_page += 1
                    yield page
            elif kind == "cover":
                _, number, text, has_images, blank, error, from_ocr = message
                if number not in covers:
                    raise _stray_page(number)
                covers.discard(number)
                yield PdfCoverRead(
                    PdfPage(number, text, has_images=has_images, blank=blank, error=error, ocr=from_ocr)
                )
            elif kind in ("notice", "ocr_plan", "ocr_unavailable"):
                if (index == 0 or kind != "ocr_plan") and message not in said:
                    said.add(message)
                    if kind == "notice":
                        yield PdfNotice(source=message[1], message=message[2])
                    elif kind == "ocr_plan":
                        yield PdfOcrPlan(pages=message[1])
                    else:
                        yield PdfOcrUnavailable(reason=message[1])
            elif kind == "done":
                primary_done = primary_done or index == 0
                if group.finished(index) and pages_total is not None and next_page <= pages_total:
                    raise SummarizerError(
                        f"The PDF workers ended without page {next_page}; please report this.",
                        code=ErrorCode.INTERNAL_ERROR,
                        retryable=True,
                    )
            elif index != 0 and kind in ("not_started", "not_ready") and not group.claimed(index):
                logger.warning("a second PDF worker could not start: %s", message[1:])
                group.finished(index)  # the others read its share
            else:
                raise _worker_error(
                    message,
                    data=data,
                    timeout_s=timeout_s,
                    memory_bytes=memory_bytes,
                    progress=(next_page - 1, pages_total),
                    max_text_chars=max_text_chars,
                )
            if primary_done and pages_total is not None and next_page > pages_total:
                if covers:
                    raise SummarizerError(
                        f"The PDF worker ended without the OCR of cover page {min(covers)}; "
                        "please report this.",
                        code=ErrorCode.INTERNAL_ERROR,
                        retryable=True,
                    )
                return
    finally:
        group.stop()


def _stray_page(number: int) -> SummarizerError:
    return SummarizerError(
        f"A PDF worker sent page {number}, which it was not asked for or which came twice; "
        "please report this.",
        code=ErrorCode.INTERNAL_ERROR,
        retryable=True,
    )


def unreadable_reason(text: str) -> str | None:
    """Say why extracted text is garbage, or return ``None`` if it looks like text.

    Detects glyph-name dumps (``/g145/g146...``, from fonts without a Unicode
    map), control/private-use/replacement characters, and text that is
    mostly not letters.

    Args:
        text: A page's text (best after cleaning: no dot leaders or page numbers).

    Returns:
        A short human-readable reason, or ``None``.
    """
    # Counted with C loops (map, a character class): this runs on every page of a book.
    visible = len(text) - sum(map(str.isspace, text))
    if visible == 0:
        return None
    glyph_chars = sum(len(match) for match in _GLYPH_RUN.findall(text))
    if glyph_chars >= 0.3 * visible:
        return "glyph names instead of characters (the fonts have no Unicode mapping)"
    bad = len(text) - len(_BAD_CHARS.sub("", text))
    if bad >= 0.3 * visible:
        return "control, private-use or replacement characters instead of text"
    if visible >= 200:
        letters = sum(map(str.isalpha, text))
        if letters < 0.2 * visible:
            return f"only {100 * letters // visible}% letters"
    return None


_GLYPH_RUN = re.compile(r"(?:/[A-Za-z]{1,8}\d{1,5}){2,}")  # /g145/g146, /uni0041/uni0042, /cid7/cid8


_BAD_CHARS = re.compile(
    "[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f"  # Cc, but tab, line feed, form feed and carriage return
    "\ud800-\udfff"  # Cs (lone surrogates)
    "\ue000-\uf8ff\U000f0000-\U000ffffd\U00100000-\U0010fffd"  # Co (private use)
    "\ufffd]"  # the replacement character
)
"""The characters :func:`_is_bad_char` refuses, as one character class."""


def _is_bad_char(char: str) -> bool:
    if char in "\t\n\r\f":
        return False
    return char == "\ufffd" or unicodedata.category(char) in {"Cc", "Co", "Cs"}


# --------------------------------------------------------------------------
# Parent side


class _Group:
    """The workers reading one document, the page ranges they took and their shared limits.

    The first worker starts at once and reads from page 1. With ``workers > 1``
    it runs in ranges mode: its first ``want`` (sent after ``opened`` and any
    ``ocr_plan``) once ``split_gate`` is set (or :data:`SPLIT_LATEST_PAGES`
    pages were handed out) decides whether more workers are worth starting (at least
    :data:`SPLIT_MIN_PAGES` pages, not a scan: OCR planned for fewer than half
    the pages); every ``want`` is answered
    with the next :data:`RANGE_PAGES` pages not yet taken, or ``end``. Pump
    threads call into it, so everything is under one lock.
    """

    def __init__(
        self,
        data: bytes | DocumentFile,
        *,
        config: WorkerConfig,
        command: list[str],
        timeout_s: float,
        max_raw_chars: int,
        workers: int,
        split_gate: threading.Event | None = None,
        post: Callable[[int, tuple[Any, ...]], object],
    ) -> None:
        self._data = data
        self._config = config
        self._command = command
        self._deadline = time.monotonic() + timeout_s
        self._max_raw_chars = max_raw_chars
        self._wanted = workers
        self._split_gate = split_gate
        self._post = post
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._finished: set[int] = set()
        self._stopped = False
        self._raw_chars = 0
        self._pages: int | None = None
        self._ocr_planned = False
        self._split_decided = False
        self._next = 0  # first page index not yet handed out
        self._owner: list[int] = []  # page index -> the worker that took it
        self._counted = False  # counted in ``_parsing`` (between start and stop)

    def start(self) -> None:
        """Start the first worker; the document counts as being parsed until :meth:`stop`."""
        with self._lock:
            self._counted = True
        _parsing_started()
        self._add()

    def _add(self) -> None:
        with self._lock:
            if self._stopped:
                return
            index = len(self._workers)
            worker = _Worker(
                self._data,
                config=self._config if index == 0 else replace(self._config, secondary=True),
                command=self._command,
                deadline=self._deadline,
                max_frame_bytes=6 * self._max_raw_chars + 65536,
                group=self,
                post=lambda message: self._post(index, message),
            )
            self._workers.append(worker)
        worker.start()

    def stop(self) -> None:
        """Ask every worker's pump thread to kill its worker (non-blocking); start no more."""
        with self._lock:
            self._stopped = True
            workers = list(self._workers)
            counted, self._counted = self._counted, False
        for worker in workers:
            worker.stop()
        if counted:
            _parsing_stopped()

    def add_text(self, characters: int) -> bool:
        """Count raw page text of any worker; ``False`` once over the limit (characters)."""
        with self._lock:
            self._raw_chars += characters
            return self._raw_chars <= self._max_raw_chars

    def note(self, message: tuple[Any, ...]) -> None:
        """See what the first worker learned: the page count and whether OCR is planned."""
        with self._lock:
            if message[0] == "opened" and self._pages is None:
                self._pages = int(message[1])
                self._owner = [-1] * self._pages
            elif message[0] == "ocr_plan" and 2 * int(message[1]) >= (self._pages or 0):
                self._ocr_planned = True  # a scan: OCR's own threads are the parallelism

    def want(self, worker: _Worker) -> tuple[Any, ...]:
        """Answer a worker's ``want``: the next pages, or ``end``; may start more workers first."""
        more = 0
        with self._lock:
            index = self._workers.index(worker)
            gate_open = self._split_gate is None or self._split_gate.is_set()
            if not self._split_decided and index == 0 and (gate_open or self._next >= SPLIT_LATEST_PAGES):
                self._split_decided = True
                if (self._pages or 0) >= SPLIT_MIN_PAGES and not self._ocr_planned:
                    more = self._wanted - 1
            count = self._pages or 0
            if self._next >= count:
                answer: tuple[Any, ...] = ("end",)
            else:
                start, stop = self._next, min(count, self._next + RANGE_PAGES)
                self._next = stop
                self._owner[start:stop] = [index] * (stop - start)
                answer = ("range", start, stop)
        for _ in range(more):
            self._add()
        return answer

    def owns(self, index: int, number: int) -> bool:
        """Whether worker ``index`` was to read page ``number`` (1-based)."""
        if not self._config.ranges:
            return index == 0
        with self._lock:
            return 1 <= number <= len(self._owner) and self._owner[number - 1] == index

    def claimed(self, index: int) -> bool:
        """Whether worker ``index`` took any page."""
        with self._lock:
            return index in self._owner

    def finished(self, index: int) -> bool:
        """Mark worker ``index`` as finished; whether every started worker now is."""
        with self._lock:
            self._finished.add(index)
            return len(self._finished) == len(self._workers)


class _Worker:
    """Owns one worker process and the thread that drains its stdout."""

    def __init__(
        self,
        data: bytes | DocumentFile,
        *,
        config: WorkerConfig,
        command: list[str],
        deadline: float,
        max_frame_bytes: int,
        group: _Group,
        post: Callable[[tuple[Any, ...]], object],
    ) -> None:
        self._data = data
        self._config = config
        self._command = command
        self._deadline = deadline
        # A JSON frame holds at most ~6 bytes per character (escapes) plus framing.
        self._max_frame_bytes = max_frame_bytes
        self._group = group
        self._post_to_loop = post
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=PROCESS_NAME + "-pump", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the pump thread to kill the worker (within :data:`_POLL_INTERVAL_S`); non-blocking.

        Only the pump thread touches the process, so two threads never race
        to reap it.
        """
        self._stopped.set()

    def _post(self, message: tuple[Any, ...]) -> None:
        try:
            self._post_to_loop(message)
        except RuntimeError:  # the event loop is closed: nobody is listening
            self._stopped.set()

    def _run(self) -> None:
        deadline = self._deadline
        process: subprocess.Popen[bytes] | None = None
        spare = _take_spare(self._command)
        with spare[1] if spare is not None else tempfile.TemporaryFile() as stderr:
            try:
                try:
                    process = spare[0] if spare is not None else _spawn(self._command, stderr)
                except (OSError, ValueError, subprocess.SubprocessError) as exc:
                    self._post(("not_started", f"{type(exc).__name__}: {exc}"))
                    return
                with _live_lock:
                    _live.add(process.pid)
                if self._stopped.is_set():
                    return
                self._pump(process, stderr, deadline)
            except BaseException as exc:  # report anything to the loop
                self._post(("crashed", f"{type(exc).__name__}: {exc}"))
            finally:
                if process is not None:
                    _kill_group(process)
                    with contextlib.suppress(Exception):
                        process.wait(5.0)
                    for stream in (process.stdin, process.stdout):
                        with contextlib.suppress(Exception):
                            if stream is not None:
                                stream.close()
                    with _live_lock:
                        _live.discard(process.pid)

    def _send_document(self, stdin: IO[bytes]) -> None:
        header = json.dumps(asdict(self._config)).encode("utf-8")
        try:
            write_frame(stdin, header)
            if isinstance(self._data, DocumentFile):
                stdin.write(FRAME_HEADER.pack(self._data.size))
                self._data.copy_to(stdin)  # an unreadable file raises: the pump reports it
                stdin.flush()
            else:
                write_frame(stdin, self._data)
        except (BrokenPipeError, ConnectionResetError):  # the worker died: the pump sees EOF
            pass
        # stdin stays open: its EOF tells the worker that this process is gone.

    def _pump(self, process: subprocess.Popen[bytes], stderr: IO[bytes], deadline: float) -> None:
        assert process.stdin is not None and process.stdout is not None
        fd = process.stdout.fileno()
        buffer = bytearray()
        ready = False
        silent_since = time.monotonic()
        while not self._stopped.is_set():
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                _kill_group(process)
                self._post(("timeout",))
                return
            readable, _, _ = select.select([fd], [], [], min(remaining, _POLL_INTERVAL_S))
            if not readable:
                if not _near_memory_limit(process.pid):
                    silent_since = time.monotonic()
                elif time.monotonic() - silent_since >= _WEDGE_S:
                    # At its address-space limit and silent: CPython 3.11 can spin
                    # for ever unwinding a MemoryError it has no memory to handle.
                    _kill_group(process)
                    self._post(("failed", "memory", "stuck at the memory limit"))
                    return
                continue
            silent_since = time.monotonic()
            try:
                piece = os.read(fd, 1 << 20)
            except OSError:
                piece = b""
            if not piece:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(1.0)
                if ready:
                    self._post(("exited", process.returncode))
                else:
                    self._post(("not_ready", process.returncode, _tail(stderr)))
                return
            buffer += piece
            while len(buffer) >= FRAME_HEADER.size:
                (size,) = FRAME_HEADER.unpack_from(buffer)
                if size > self._max_frame_bytes:
                    _kill_group(process)
                    self._post(("too_much_text", size))
                    return
                if len(buffer) < FRAME_HEADER.size + size:
                    break
                payload = bytes(buffer[FRAME_HEADER.size : FRAME_HEADER.size + size])
                del buffer[: FRAME_HEADER.size + size]
                message = tuple(json.loads(payload))
                kind = message[0]
                if kind == "ready":
                    ready = True
                    self._send_document(process.stdin)
                    continue
                if kind == "want":
                    with contextlib.suppress(OSError):  # the worker died: the pump sees EOF
                        write_frame(process.stdin, json.dumps(self._group.want(self)).encode("utf-8"))
                    continue
                if kind in ("page", "cover") and not self._group.add_text(len(message[2])):
                    _kill_group(process)
                    self._post(("too_much_text", 0))
                    return
                if kind in ("opened", "ocr_plan"):
                    self._group.note(message)
                self._post(message)
                if kind in ("done", "failed"):
                    return


def _near_memory_limit(pid: int) -> bool:
    """Whether process ``pid`` has less than :data:`_WEDGE_MARGIN_BYTES` of address space left."""
    try:
        with open(f"/proc/{pid}/limits", encoding="ascii") as limits:
            line = next((line for line in limits if line.startswith("Max address space")), "")
        soft = line.split()[3]
        if not soft.isdigit():
            return False  # unlimited
        with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
            size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return False
    return int(soft) - size < _WEDGE_MARGIN_BYTES


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker's process group (the worker and its Tesseract processes)."""
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        process.kill()


def _tail(stderr: IO[bytes]) -> str:
    """The last lines a worker wrote to stderr, for a start failure's message."""
    try:
        stderr.seek(0, os.SEEK_END)
        size = stderr.tell()
        stderr.seek(max(0, size - _STDERR_TAIL_BYTES))
        text = stderr.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _worker_error(
    message: tuple[Any, ...],
    *,
    data: bytes | DocumentFile,
    timeout_s: float,
    memory_bytes: int,
    progress: tuple[int, int | None],
    max_text_chars: int,
) -> Exception:
    """Turn a failure message from the pump thread into the error to raise."""
    kind = message[0]
    pages_done, pages_total = progress
    if kind == "timeout":
        where = f"after {pages_done} of {pages_total} pages" if pages_total else "before any page"
        return DocumentError(
            f"Parsing the PDF took longer than {timeout_s:g} s (options.parse_timeout_s) and was "
            f"stopped {where}. The file may be malformed; try re-saving it as a new PDF.",
            code=ErrorCode.PARSE_TIMEOUT,
        )
    if kind == "too_much_text":
        return LimitExceeded(
            f"The PDF holds more than {max_text_chars:,} characters of text (options.max_text_chars); "
            "split it into smaller documents.",
            code=ErrorCode.DOCUMENT_TOO_LARGE,
        )
    if kind == "failed":
        reason, detail = message[1], message[2]
        if reason == "no_password":
            return EncryptedDocument(
                "The PDF is encrypted: send its password in options.password.",
                code=ErrorCode.ENCRYPTED_PDF,
            )
        if reason == "wrong_password":
            return EncryptedDocument(
                "The PDF is encrypted and the password in options.password does not open it; "
                "check the password and try again.",
                code=ErrorCode.ENCRYPTED_PDF,
            )
        if reason == "unsupported_encryption":
            return EncryptedDocument(
                f"The PDF is encrypted with a method this server cannot decrypt ({detail}); "
                "remove the password protection and upload it again.",
                code=ErrorCode.ENCRYPTED_PDF,
            )
        if reason == "internal":
            return SummarizerError(
                f"The PDF worker process could not start ({detail}). This is a problem with the "
                "server's installation, not with the PDF.",
                code=ErrorCode.INTERNAL_ERROR,
                retryable=True,
            )
        if reason == "memory":
            return _out_of_memory(memory_bytes)
        return DamagedDocument(
            f"The PDF is damaged and cannot be read ({detail}){_truncation_hint(data)}. "
            "Try opening it in a PDF viewer and saving (or printing) it as a new PDF.",
            code=ErrorCode.DAMAGED_PDF,
        )
    if kind == "exited":
        exitcode = message[1]
        if exitcode == EXIT_OUT_OF_MEMORY:
            return _out_of_memory(memory_bytes)
        how = (
            f"was killed by signal {-exitcode}"
            if exitcode and exitcode < 0
            else f"exited with status {exitcode}"
        )
        return DamagedDocument(
            f"The PDF parser {how} while reading this file; it is probably malformed. "
            "Try saving (or printing) it as a new PDF.",
            code=ErrorCode.DAMAGED_PDF,
        )
    if kind == "not_started":
        return SummarizerError(
            f"The PDF worker process could not be started ({message[1]}). This is a problem "
            "with the server's installation or resources, not with the PDF.",
            code=ErrorCode.INTERNAL_ERROR,
            retryable=True,
        )
    if kind == "not_ready":
        exitcode, detail = message[1], message[2]
        how = (
            f"was killed by signal {-exitcode}"
            if exitcode and exitcode < 0
            else f"exited with status {exitcode}"
        )
        return SummarizerError(
            f"The PDF worker process could not start: it {how} before it was ready"
            f"{f' ({detail})' if detail else ''}. This is a problem with the server's "
            "installation or resources, not with the PDF.",
            code=ErrorCode.INTERNAL_ERROR,
            retryable=True,
        )
    return SummarizerError(  # "crashed": a bug or an exhausted host, not the document
        f"The PDF worker process could not be run ({message[1]}); please report this.",
        code=ErrorCode.INTERNAL_ERROR,
        retryable=True,
    )


def _out_of_memory(memory_bytes: int) -> DamagedDocument:
    return DamagedDocument(
        f"Parsing the PDF needed more than the {memory_bytes / 1024**2:,.0f} MiB memory limit "
        "(options.parse_memory_bytes) and was stopped; the file is probably malformed "
        "(e.g. a decompression bomb).",
        code=ErrorCode.DAMAGED_PDF,
    )


def _truncation_hint(data: bytes | DocumentFile) -> str:
    tail = data.tail(4096) if isinstance(data, DocumentFile) else data[-4096:]
    if b"%%EOF" not in tail:
        return "; it looks truncated: there is no %%EOF marker at its end"
    return ""
