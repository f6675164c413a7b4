"""The PDF worker process: ``python -m summarizer.ingest.worker``.

:mod:`summarizer.ingest.pdf` starts this module as a plain subprocess (never
through :mod:`multiprocessing`, whose ``spawn`` and ``forkserver`` re-import
the caller's ``__main__``: a user's script without an
``if __name__ == "__main__":`` guard would run again in the worker). The two
talk over the worker's standard streams with length-prefixed frames
(:func:`write_frame`, :func:`read_frame`): a 4-byte big-endian length, then
the payload.

* parent → worker (stdin): one JSON frame with the job's settings
  (:class:`WorkerConfig` as a dict), then one frame with the PDF bytes; stdin
  then stays open, and its end (EOF) means the parent is gone: the worker
  kills its process group (itself and any Tesseract it started). With
  ``WorkerConfig.ranges`` set, the worker reads only the page ranges the parent
  hands out: it asks with ``["want"]`` and the parent answers on stdin with
  ``["range", start, stop]`` (0-based page indexes, ``stop`` excluded) or
  ``["end"]`` (nothing left). Several workers then share one document, each
  asking for the next range when it has one in hand (a prefetch), so the first
  pages go to the first worker and the load balances itself.
* worker → parent (stdout): JSON arrays, first ``["ready"]`` (pypdf imported
  and configured, before any job: a prewarmed worker pays nothing at its job),
  then ``["opened", pages]``,
  ``["outline", title, [[bookmark, page, depth], ...]]`` (the metadata title
  or ``null`` and the outline, see :func:`summarizer.ingest.structure.pdf_outline`),
  ``["page", number, text, has_images, blank, error, ocr, deferred]`` in page order,
  ``["cover", number, text, has_images, blank, error, ocr]`` (the OCR of a
  page sent earlier with ``deferred`` true, see :data:`COVER_PAGES`),
  ``["notice", logger, message]``, ``["ocr_plan", pages]``,
  ``["ocr_unavailable", reason]``, ``["want"]`` (ranges mode) and finally ``["done"]`` or
  ``["failed", reason, detail]``.

JSON, not pickle: the parent never unpickles what a process parsing a hostile
file sends. The worker's own stdout file descriptor is moved aside before
anything runs, so a stray ``print`` cannot corrupt the frames.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import logging
import os
import queue
import signal
import struct
import sys
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, Final

__all__ = ["EXIT_OUT_OF_MEMORY", "PYPDF_LIMITS", "WorkerConfig", "main", "read_frame", "write_frame"]

EXIT_OUT_OF_MEMORY: Final = 3
"""Exit status when the worker ran out of memory and could not even report it."""

FRAME_HEADER: Final = struct.Struct(">I")
"""A frame's length prefix: 4 bytes, big-endian, unsigned (payload bytes)."""

PYPDF_LIMITS: Final[dict[str, int]] = {
    # Per-stream decompression caps (bytes): stop zip bombs long before RLIMIT_AS.
    "zlib_maximum_output_length": 75_000_000,
    "lzw_maximum_output_length": 75_000_000,
    "run_length_maximum_output_length": 75_000_000,
    "brotli_maximum_output_length": 75_000_000,
    "maximum_declared_stream_length": 75_000_000,
    "stream_decoding_work_maximum_length": 300_000_000,
    # Content-stream tokens per page (pypdf default 2,000,000): a page with
    # millions of operators would take ~10 s of pure Python; real pages stay
    # far below 100,000.
    "stream_parsing_work_maximum_count": 500_000,
    # Form XObjects drawn per page during text extraction.
    "xform_maximum_invocations_per_extraction": 5_000,
    # Page tree: entries and depth (a cyclic or absurd tree fails fast).
    "page_tree_maximum_entries": 100_000,
    "page_tree_maximum_depth": 100,
}
"""Values passed to :func:`pypdf.overwrite_configuration` in the worker."""

COVER_PAGES: Final = 2
"""Leading image-only pages of a document with a text layer whose OCR does not hold up the pages after them.

Such a page is a cover: its text (title, subtitle) becomes the document's title
(:meth:`summarizer.ingest.structure.StructureFilter.use_cover`), not a chunk.
The page is sent at once with ``deferred`` true and no text, and its OCR follows
as a ``cover`` message: the first chunk (page 2 on) no longer waits one to two
seconds of Tesseract. A scan (at least half of its pages image-only) and
``ocr="force"`` defer nothing: there every page is content.
"""

_MAX_NOTICES: Final = 50
_MAX_DETAIL_CHARS: Final = 300


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """What one worker is asked to do (sent as the first frame, a JSON object).

    Attributes:
        password: Tried after the empty password if the PDF is encrypted.
        memory_bytes: Address space the worker may add to its start-up size (bytes).
        ocr: ``"off"``, ``"auto"`` (textless pages with images) or ``"force"`` (every page).
        ocr_languages: Tesseract language codes joined by ``+`` (default ``"eng"``).
        ocr_workers: Pages OCR'd at once (Tesseract processes), at least 1.
        ocr_page_timeout_s: Wall-clock limit of one page's OCR (seconds).
        ocr_dpi: Rendering resolution for OCR (dots per inch).
        ocr_max_pixels: Largest rendered image (pixels); bigger pages are rendered smaller.
        ranges: Read only the page ranges the parent hands out (``want`` / ``range``);
            ``False`` (default): every page, in order.
        secondary: A worker started to share the document's ranges with the first
            one, which sends the OCR plan: it sends none and loads the OCR engine
            only for a page of its own that needs it (saving the plan's scan of
            every page, the engine's check and its libraries' memory).
    """

    password: str | None = None
    memory_bytes: int = 1024**3
    ocr: str = "off"
    ocr_languages: str = "eng"
    ocr_workers: int = 1
    ocr_page_timeout_s: float = 60.0
    ocr_dpi: int = 300
    ocr_max_pixels: int = 25_000_000
    ranges: bool = False
    secondary: bool = False


# --------------------------------------------------------------------------
# Frames


def write_frame(stream: IO[bytes], payload: bytes) -> None:
    """Write one length-prefixed frame and flush.

    Args:
        stream: A binary stream (a pipe).
        payload: The frame's bytes (at most 4 GiB - 1).

    Raises:
        OSError: The other end is closed (``BrokenPipeError``).
    """
    stream.write(FRAME_HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def read_frame(stream: IO[bytes]) -> bytes | None:
    """Read one length-prefixed frame.

    Args:
        stream: A binary stream (a pipe).

    Returns:
        The payload, or ``None`` at end of stream (also mid-frame).
    """
    header = _read_exactly(stream, FRAME_HEADER.size)
    if header is None:
        return None
    return _read_exactly(stream, FRAME_HEADER.unpack(header)[0])


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    parts: list[bytes] = []
    left = size
    while left:
        part = stream.read(left)
        if not part:
            return None
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


class _Channel:
    """Thread-safe sender of JSON frames to the parent."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, *message: object) -> None:
        payload = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")
        with self._lock:
            write_frame(self._stream, payload)


# --------------------------------------------------------------------------
# Entry point


def main() -> int:
    """Run one worker on this process's stdin and stdout.

    Returns:
        The exit status (0; :data:`EXIT_OUT_OF_MEMORY` if even reporting failed).
    """
    # Frames go to a private copy of fd 1; fd 1 itself goes to stderr, so that
    # nothing a library prints can corrupt them.
    channel = _Channel(os.fdopen(os.dup(1), "wb"))
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    stdin = sys.stdin.buffer
    try:
        try:
            # Before the job and before the memory limit: a prewarmed worker has
            # pypdf loaded when its document comes (~0.3 s), and the limit counts
            # what parsing adds, not the library.
            _configure_pypdf(channel)
            # What parsing imports on first use, imported now and not under the
            # limit: a tight limit fails an import in odd ways (a ValueError from
            # compile, an ImportError from dlopen) that read as a damaged file or
            # a failed page, not as the MemoryError that reports the limit. The
            # outline reader, and pypdf's stream filters (they import subprocess).
            import pypdf._codecs._codecs
            import pypdf.filters  # noqa: F401

            import summarizer.ingest.structure  # noqa: F401
        except ImportError as exc:
            channel.send("failed", "internal", _describe(exc))
            return 0
        channel.send("ready")
        header = read_frame(stdin)
        data = read_frame(stdin)
        if header is None or data is None:
            return 0  # the parent went away before sending the document
        config = WorkerConfig(**json.loads(header))
        ranges = _watch_parent(stdin, ranges=config.ranges)
        _limit_memory(config.memory_bytes)
        _extract(data, config, channel, ranges)
    except MemoryError:
        gc.collect()
        try:
            channel.send("failed", "memory", "")
        except BaseException:  # no memory even to report it
            os._exit(EXIT_OUT_OF_MEMORY)
    except BrokenPipeError:
        return 0
    except BaseException as exc:  # report, never print a traceback
        with contextlib.suppress(BaseException):
            channel.send("failed", "damaged", _describe(exc))
    return 0


class _Ranges:
    """The page ranges the parent hands out (``["range", start, stop]`` frames on stdin).

    The parent-watch thread puts each range in a queue; the extraction loop
    takes them one by one, asking for the next one (``want``) as soon as it
    has taken one, so that a range is always on its way while pages are read.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()

    def put(self, message: list[Any]) -> None:
        """Take one control frame from the parent (``range`` or ``end``)."""
        if message and message[0] == "range":
            self._queue.put((int(message[1]), int(message[2])))
        elif message and message[0] == "end":
            self._queue.put(None)

    def indexes(self, channel: _Channel, count: int) -> Iterator[int]:
        """0-based page indexes to read, range by range, until the parent says ``end``."""
        channel.send("want")
        channel.send("want")  # one range in hand, one on its way
        while True:
            taken = self._queue.get()
            if taken is None:
                return
            channel.send("want")
            start, stop = taken
            yield from range(max(0, start), min(stop, count))


def _watch_parent(stdin: IO[bytes], *, ranges: bool) -> _Ranges | None:
    """Kill this worker's process group once the parent closes stdin (or dies).

    With ``ranges``, the thread also reads the parent's ``range`` / ``end``
    frames (returned :class:`_Ranges`); otherwise it discards whatever comes.
    """
    feed = _Ranges() if ranges else None

    def watch() -> None:
        with contextlib.suppress(BaseException):
            if feed is None:
                while stdin.read(65536):
                    pass
            else:
                while (frame := read_frame(stdin)) is not None:
                    feed.put(json.loads(frame))
        with contextlib.suppress(BaseException):
            if os.getpgrp() == os.getpid():
                os.killpg(os.getpid(), signal.SIGKILL)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    return feed


def _address_space_bytes() -> int:
    """The process's current virtual memory size (bytes), 0 if unknown."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _limit_memory(memory_bytes: int) -> None:
    """Cap the worker's address space at its size now plus ``memory_bytes``.

    The baseline (the interpreter and this module) is not the parser's doing;
    ``memory_bytes`` is what parsing may add on top of it. Processes the
    worker starts (Tesseract) inherit the same limit, each for itself.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = _address_space_bytes() + memory_bytes
    limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


class _ForwardHandler(logging.Handler):
    """Sends pypdf's log records to the parent as ``notice`` messages."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__(logging.WARNING)
        self._channel = channel
        self._seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if len(self._seen) >= _MAX_NOTICES:
            return
        try:
            text = record.getMessage()[:_MAX_DETAIL_CHARS]
            if text in self._seen:
                return
            self._seen.add(text)
            self._channel.send("notice", record.name, text)
        except Exception:  # logging must never break extraction
            return


def _configure_pypdf(channel: _Channel) -> None:
    import pypdf

    configuration = pypdf.get_configuration().with_overwrites(disable_legacy_handling=True, **PYPDF_LIMITS)
    pypdf.overwrite_configuration(configuration)
    handler = _ForwardHandler(channel)
    for name in ("pypdf", "py.warnings"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.propagate = False
        log.setLevel(logging.WARNING)
    logging.captureWarnings(True)


# --------------------------------------------------------------------------
# Extraction


_PageMessage = tuple[int, str, bool, bool, str | None, bool]
"""``(number, text, has_images, blank, error, ocr)``."""

_Pending = tuple[Future[_PageMessage], bool]
"""A page's message (ready, or a future while it is OCR'd) and whether it is a deferred cover."""


def _extract(data: bytes, config: WorkerConfig, channel: _Channel, ranges: _Ranges | None = None) -> None:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError

    send = channel.send
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except MemoryError:
        raise
    except Exception as exc:  # pypdf raises many types
        send("failed", "damaged", _describe(exc))
        return
    password = config.password
    if reader.is_encrypted:
        candidates = [""] if password is None else ["", password]
        try:
            opened = any(reader.decrypt(candidate) != PasswordType.NOT_DECRYPTED for candidate in candidates)
        except DependencyError as exc:
            send("failed", "unsupported_encryption", _describe(exc))
            return
        except MemoryError:
            raise
        except Exception as exc:
            send("failed", "damaged", _describe(exc))
            return
        if not opened:
            send("failed", "no_password" if password is None else "wrong_password", "")
            return
    try:
        pages = reader.pages
        count = len(pages)
    except MemoryError:
        raise
    except Exception as exc:
        send("failed", "damaged", f"its page tree is broken: {_describe(exc)}")
        return
    send("opened", count)
    _send_outline(reader, channel)
    ocr = _Ocr.create(data, config, channel, pages, count)
    window: deque[_Pending] = deque()
    covers: deque[Future[_PageMessage]] = deque()  # deferred covers being OCR'd
    text_seen = False  # a page with text was read: no later page is a cover

    def flush(*, keep: int) -> None:
        """Send finished pages in order; wait for the oldest while more than ``keep`` are pending."""
        while covers and covers[0].done():
            send("cover", *covers.popleft().result())
        while window and (window[0][0].done() or len(window) > keep):
            future, deferred = window.popleft()
            send("page", *future.result(), deferred)

    try:
        for index in range(count) if ranges is None else ranges.indexes(channel, count):
            message, to_ocr = _read_page(pages, index, ocr)
            if ocr is not None and to_ocr and not text_seen and ocr.defers_cover(index):
                covers.append(ocr.submit_cover(index, message))
                window.append((_ready(message), True))
            elif ocr is not None and to_ocr and ocr.start():
                window.append((ocr.submit(index, message), False))
            else:
                text_seen = text_seen or bool(message[1].strip())
                window.append((_ready(message), False))
            flush(keep=ocr.window if ocr else 0)
        flush(keep=0)
        while covers:
            send("cover", *covers.popleft().result())
    finally:
        if ocr:
            ocr.close()
    send("done")


def _send_outline(reader: Any, channel: _Channel) -> None:
    """Send the metadata title and the outline (bookmarks), before the pages."""
    from summarizer.ingest.structure import pdf_outline

    try:
        outline = pdf_outline(reader, page_labels=False)  # the labels are not used downstream
    except MemoryError:
        raise
    except Exception:  # pragma: no cover - pdf_outline does not raise
        return
    channel.send("outline", outline.title, [[e.title, e.page, e.depth] for e in outline.entries])


def _read_page(pages: Any, index: int, ocr: _Ocr | None) -> tuple[_PageMessage, bool]:
    """One page's message from its text layer, and whether the page is one for OCR."""
    number = index + 1
    try:
        page = pages[index]
        text = page.extract_text()
    except MemoryError:
        raise
    except Exception as exc:  # one bad page must not end the document
        return (number, "", False, False, _describe(exc), False), False
    has_images = blank = False
    if not text.strip():
        has_images, blank = _inspect_textless(page)
    message = (number, text, has_images, blank, None, False)
    return message, ocr is not None and ocr.wants(text, has_images)


def _ready(message: _PageMessage) -> Future[_PageMessage]:
    future: Future[_PageMessage] = Future()
    future.set_result(message)
    return future


class _Ocr:
    """Renders and OCRs pages on a small thread pool (one Tesseract process per page).

    Whether OCR can run (packages, the ``tesseract`` program, language packs:
    0.3 s) is checked on the first page that needs it, so a PDF with a text
    layer never pays for the check; for a cover (:data:`COVER_PAGES`) it is
    checked on the cover's own thread, beside the pages after it.
    """

    def __init__(self, data: bytes, config: WorkerConfig, channel: _Channel) -> None:
        self._data = data
        self._config = config
        self._channel = channel
        self._available: bool | None = None
        self._renderer: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._cover_pool: ThreadPoolExecutor | None = None
        self._start_lock = threading.Lock()
        self._plan = 0  # pages the ``ocr_plan`` message announces once OCR has started
        self.window = 2 * max(1, config.ocr_workers) + 2
        """Pages at most waiting to be sent (bounds memory and keeps OCR busy)."""
        self.text_layer = False
        """Whether the document has a text layer (under half of its pages look scanned)."""

    @classmethod
    def create(
        cls, data: bytes, config: WorkerConfig, channel: _Channel, pages: Any, count: int
    ) -> _Ocr | None:
        """An OCR engine, or ``None`` when OCR is off; sends ``ocr_plan`` when pages will be OCR'd."""
        if config.ocr == "off":
            return None
        ocr = cls(data, config, channel)
        if config.secondary:
            return ocr  # the first worker sent the plan; :meth:`wants` starts OCR when a page needs it
        planned = count if config.ocr == "force" else _estimate_scanned(pages, count)
        ocr.text_layer = config.ocr == "auto" and 2 * planned < count
        ocr._plan = planned
        if planned and not ocr.text_layer:
            ocr.start()  # a scan: OCR is the work, check it before the first page
        return ocr

    def start(self) -> bool:
        """Check (once) that OCR can run and set it up; says ``ocr_plan``, or ``ocr_unavailable`` if not.

        Thread-safe: the first caller checks, the others wait for its answer.
        """
        with self._start_lock:
            return self._start()

    def _start(self) -> bool:
        if self._available is None:
            self._available = False
            try:
                from summarizer.ingest import ocr as engine

                reason = engine.unavailable_reason(self._config.ocr_languages)
                if reason is None:
                    self._engine = engine
                    self._renderer = engine.PageRenderer(
                        self._data, dpi=self._config.ocr_dpi, max_pixels=self._config.ocr_max_pixels
                    )
                    self._pool = ThreadPoolExecutor(
                        max(1, self._config.ocr_workers), thread_name_prefix="ocr"
                    )
                    self._available = True
                    if self._plan:
                        self._channel.send("ocr_plan", self._plan)
            except MemoryError:
                raise
            except Exception as exc:  # a broken installation
                reason = f"the OCR engine cannot be loaded ({_describe(exc)})"
            if reason is not None:
                self._channel.send("ocr_unavailable", reason)
        return self._available

    def wants(self, text: str, has_images: bool) -> bool:
        """Whether a page is one for OCR: every page with ``force``; else textless pages with images.

        Does not check that OCR can run (see :meth:`start`).
        """
        return self._config.ocr == "force" or (has_images and not text.strip())

    def defers_cover(self, index: int) -> bool:
        """Whether page ``index`` (0-based, image-only, no page with text before it) is a cover to defer.

        See :data:`COVER_PAGES`. Only the worker that reads the first pages
        (not a ``secondary`` one) defers.
        """
        return self.text_layer and not self._config.secondary and index < COVER_PAGES

    def submit(self, index: int, fallback: _PageMessage) -> Future[_PageMessage]:
        """OCR page ``index`` on the pool (call :meth:`start` first); ``fallback``: its text-layer message."""
        assert self._pool is not None
        return self._pool.submit(self._run, index, fallback)

    def submit_cover(self, index: int, fallback: _PageMessage) -> Future[_PageMessage]:
        """OCR a cover on its own thread, which also starts OCR (``fallback`` if OCR cannot run)."""
        if self._cover_pool is None:
            self._cover_pool = ThreadPoolExecutor(
                1, thread_name_prefix="ocr-cover", initializer=_lower_priority
            )
        return self._cover_pool.submit(
            lambda: self._run(index, fallback, COVER_DPI) if self.start() else fallback
        )

    def _run(self, index: int, fallback: _PageMessage, dpi: int | None = None) -> _PageMessage:
        number, text, has_images, blank, _, _ = fallback
        try:
            image = self._renderer.render(index, min(dpi or self._config.ocr_dpi, self._config.ocr_dpi))
            raw = self._engine.recognize(
                image, languages=self._config.ocr_languages, timeout_s=self._config.ocr_page_timeout_s
            )
            del image
        except MemoryError:
            gc.collect()
            reason = "OCR ran out of memory on this page (options.parse_memory_bytes)"
            return (number, text, has_images, blank, reason, False)
        except Exception as exc:
            if text.strip():  # force on a page with text: keep its text layer
                return fallback
            return (number, text, has_images, blank, f"OCR failed: {_describe(exc)}", False)
        cleaned = self._engine.clean_ocr_text(raw)
        if not cleaned.strip():
            return (number, text, has_images, blank, None, False)
        return (number, cleaned, has_images, False, None, True)

    def close(self) -> None:
        for pool in (self._pool, self._cover_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        if self._renderer is not None:
            self._renderer.close()


COVER_DPI: Final = 200
"""Resolution of a cover's OCR (dots per inch; lower if ``ocr_dpi`` is). A cover only gives the
title, in large type: on freeculture.pdf's cover 200 dpi reads the same title and subtitle as
300 dpi with about 0.27 s less CPU (rendering 0.11 s against 0.23, Tesseract 0.37 s against
0.52); 100 dpi lost the heading. Body pages at 200 dpi read at 0.06% CER (the OCR benchmark)."""

COVER_NICENESS: Final = 10
"""Added to the cover thread's nice value (Linux): its rendering and Tesseract yield to the first chunk."""


def _lower_priority() -> None:
    """Lower the calling thread's CPU priority by :data:`COVER_NICENESS`; processes it starts inherit it.

    On Linux the nice value belongs to the thread, not the process (``nice(2)``
    under NPTL), so the page loop and the parent keep theirs. Elsewhere it would
    lower the whole worker: nothing is done there.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.nice(COVER_NICENESS)


def _estimate_scanned(pages: Any, count: int) -> int:
    """Pages that look like scans (images, no fonts), from their resources only (cheap)."""
    found = 0
    for index in range(count):
        with contextlib.suppress(Exception):
            resources = pages[index].get("/Resources")
            resources = resources.get_object() if resources is not None else None
            if resources is not None and "/Font" not in resources and _has_images(resources, depth=0):
                found += 1
    return found


def _inspect_textless(page: Any) -> tuple[bool, bool]:
    """``(has_images, blank)`` for a page that produced no text."""
    has_images = blank = False
    with contextlib.suppress(Exception):
        has_images = _has_images(page.get("/Resources"), depth=0)
    with contextlib.suppress(Exception):
        contents = page.get_contents()
        stream = contents.get_data() if contents is not None else b""
        blank = not stream.strip()
        if not has_images and b"BI" in stream and b"ID" in stream:
            has_images = True  # inline image operators
    return has_images, blank


def _has_images(resources: Any, *, depth: int) -> bool:
    if resources is None or depth > 3:
        return False
    resources = resources.get_object()
    xobjects = resources.get("/XObject")
    if xobjects is None:
        return False
    for reference in xobjects.get_object().values():
        xobject = reference.get_object()
        subtype = xobject.get("/Subtype")
        if subtype == "/Image":
            return True
        if subtype == "/Form" and _has_images(xobject.get("/Resources"), depth=depth + 1):
            return True
    return False


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or "no details"
    if len(text) > _MAX_DETAIL_CHARS:
        text = text[:_MAX_DETAIL_CHARS] + "..."
    name = type(exc).__name__
    if name == "LimitReachedError":
        return f"it exceeds the parser's resource limits: {text}"
    return f"{name}: {text}"


if __name__ == "__main__":
    sys.exit(main())
