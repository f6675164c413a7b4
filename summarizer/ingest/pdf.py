"""PDF text extraction in a separate, killable, memory-capped process.

pypdf is pure Python and a hostile PDF can make it spin or allocate without
bound, so every document is parsed by its own worker process:

* the worker is started from a clean process (``forkserver`` where available,
  else ``spawn``; never a plain ``fork`` of the threaded server);
* its address space is capped with ``RLIMIT_AS`` (``parse_memory_bytes``) and
  pypdf's own resource limits are tightened (:data:`PYPDF_LIMITS`);
* it sends each page's text back over a pipe as soon as it is extracted; a
  parent-side thread drains the pipe into an :class:`asyncio.Queue`, so
  extraction keeps going while the event loop is busy and pages are yielded
  one by one;
* it is killed on a wall-clock timeout (``parse_timeout_s``), when the
  consumer stops (``asyncio.CancelledError``, ``aclose()``) and on any error.

pypdf's warnings (it logs a lot about repaired files and fonts) are forwarded
from the worker as :class:`PdfNotice` events instead of being printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
import multiprocessing
import os
import re
import threading
import time
import unicodedata
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Final, cast

from summarizer.errors import (
    DamagedDocument,
    DocumentError,
    EncryptedDocument,
    ErrorCode,
    LimitExceeded,
    SummarizerError,
)

__all__ = [
    "PROCESS_NAME",
    "PYPDF_LIMITS",
    "START_METHOD",
    "PdfEvent",
    "PdfNotice",
    "PdfOpened",
    "PdfPage",
    "extract_pages",
    "unreadable_reason",
]

logger = logging.getLogger(__name__)

PROCESS_NAME: Final = "summarizer-pdf-worker"
"""Name of every worker process (see :func:`multiprocessing.active_children`)."""

START_METHOD: Final = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
"""How workers are started. ``forkserver`` forks each worker from a small
single-threaded server that has this module preloaded, so a worker starts in
milliseconds instead of re-importing the application (about a second with
``spawn``); both are safe in a threaded, asyncio process, unlike ``fork``."""

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

_EXIT_OUT_OF_MEMORY: Final = 3
"""Worker exit status when it ran out of memory and could not even report it."""

_POLL_INTERVAL_S: Final = 0.1
"""How often the pump thread checks for a stop request or the deadline (seconds)."""
_MAX_NOTICES: Final = 50
_MAX_DETAIL_CHARS: Final = 300
_TEXT_LIMIT_FACTOR: Final = 2
"""The worker is stopped once it has sent this many times ``max_text_chars``
characters of raw text (headers, footers and all), bounding parent memory."""


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
        text: Text as pypdf extracted it (``""`` if none or on error).
        has_images: For pages without text: whether the page draws images
            (a scan that needs OCR). ``False`` for pages with text.
        blank: For pages without text: whether the content stream is empty.
        error: Why the page could not be read (``"LimitReachedError: ..."``),
            or ``None``.
    """

    number: int
    text: str
    has_images: bool = False
    blank: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class PdfNotice:
    """A warning pypdf logged while reading (usually about a repaired file).

    Attributes:
        source: The pypdf logger name, e.g. ``"pypdf._reader"``.
        message: The warning text.
    """

    source: str
    message: str


PdfEvent = PdfOpened | PdfPage | PdfNotice
"""What :func:`extract_pages` yields."""


async def extract_pages(
    data: bytes,
    *,
    password: str | None = None,
    timeout_s: float = 600.0,
    memory_bytes: int = 2 * 1024**3,
    max_text_chars: int = 20_000_000,
    start_method: str = START_METHOD,
) -> AsyncGenerator[PdfEvent, None]:
    """Extract a PDF's text page by page in a worker process.

    Yields :class:`PdfOpened` first, then one :class:`PdfPage` per page in
    order, with :class:`PdfNotice` events interleaved. The worker is killed
    when the iterator is closed or cancelled, so use it with
    :func:`contextlib.aclosing` if you may stop early.

    Args:
        data: The whole PDF file (bytes).
        password: Tried after the empty password if the PDF is encrypted.
        timeout_s: Wall-clock limit for the worker (seconds), counted from its
            start, independent of how fast pages are consumed.
        memory_bytes: Address-space limit of the worker (bytes).
        max_text_chars: Expected text limit (characters); the worker is
            stopped after sending twice as much raw text.
        start_method: :mod:`multiprocessing` start method (``"forkserver"``
            or ``"spawn"``).

    Yields:
        :data:`PdfEvent` values.

    Raises:
        EncryptedDocument: The PDF needs a password that was not given or is wrong.
        DamagedDocument: pypdf cannot open the file, the page tree is broken,
            the worker ran out of memory or died.
        DocumentError: ``parse_timeout`` when ``timeout_s`` elapsed.
        LimitExceeded: The PDF holds far more text than ``max_text_chars``.
        SummarizerError: ``internal_error`` if the worker cannot be started.
        ValueError: For an unknown ``start_method``.
    """
    if start_method not in ("spawn", "forkserver"):
        raise ValueError(f"start_method must be 'spawn' or 'forkserver', got {start_method!r}")
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    worker = _Worker(
        data,
        password=password,
        timeout_s=timeout_s,
        memory_bytes=memory_bytes,
        max_raw_chars=_TEXT_LIMIT_FACTOR * max_text_chars,
        start_method=start_method,
        post=lambda message: loop.call_soon_threadsafe(queue.put_nowait, message),
    )
    worker.start()
    pages_total: int | None = None
    pages_done = 0
    try:
        while True:
            message = await queue.get()
            kind = message[0]
            if kind == "opened":
                pages_total = message[1]
                yield PdfOpened(pages=message[1])
            elif kind == "page":
                _, number, text, has_images, blank, error = message
                pages_done += 1
                yield PdfPage(number, text, has_images=has_images, blank=blank, error=error)
            elif kind == "notice":
                yield PdfNotice(source=message[1], message=message[2])
            elif kind == "done":
                return
            else:
                raise _worker_error(
                    message,
                    data=data,
                    timeout_s=timeout_s,
                    memory_bytes=memory_bytes,
                    progress=(pages_done, pages_total),
                    max_text_chars=max_text_chars,
                )
    finally:
        worker.stop()


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
    visible = sum(1 for char in text if not char.isspace())
    if visible == 0:
        return None
    glyph_chars = sum(len(match) for match in _GLYPH_RUN.findall(text))
    if glyph_chars >= 0.3 * visible:
        return "glyph names instead of characters (the fonts have no Unicode mapping)"
    bad = sum(1 for char in text if _is_bad_char(char))
    if bad >= 0.3 * visible:
        return "control, private-use or replacement characters instead of text"
    if visible >= 200:
        letters = sum(1 for char in text if char.isalpha())
        if letters < 0.2 * visible:
            return f"only {100 * letters // visible}% letters"
    return None


_GLYPH_RUN = re.compile(r"(?:/[A-Za-z]{1,8}\d{1,5}){2,}")  # /g145/g146, /uni0041/uni0042, /cid7/cid8


def _is_bad_char(char: str) -> bool:
    if char in "\t\n\r\f":
        return False
    return char == "\ufffd" or unicodedata.category(char) in {"Cc", "Co", "Cs"}


# --------------------------------------------------------------------------
# Parent side


class _Worker:
    """Owns one worker process and the thread that drains its pipe."""

    def __init__(
        self,
        data: bytes,
        *,
        password: str | None,
        timeout_s: float,
        memory_bytes: int,
        max_raw_chars: int,
        start_method: str,
        post: Callable[[tuple[Any, ...]], object],
    ) -> None:
        self._data = data
        self._password = password
        self._timeout_s = timeout_s
        self._memory_bytes = memory_bytes
        self._max_raw_chars = max_raw_chars
        self._start_method = start_method
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
        deadline = time.monotonic() + self._timeout_s
        connections: list[Connection] = []
        process: multiprocessing.process.BaseProcess | None = None
        try:
            try:
                process, data_writer, result_reader = self._start(self._start_method, connections)
            except (OSError, RuntimeError) as exc:
                if self._start_method != "forkserver":
                    raise
                logger.warning("Cannot start a PDF worker with forkserver (%s); using spawn", exc)
                process, data_writer, result_reader = self._start("spawn", connections)
            if self._stopped.is_set():
                return
            with contextlib.suppress(OSError):  # the worker died: the pump sees EOF
                data_writer.send_bytes(self._data)
            data_writer.close()
            self._pump(result_reader, process, deadline)
        except BaseException as exc:  # report anything to the loop
            self._post(("crashed", f"{type(exc).__name__}: {exc}"))
        finally:
            if process is not None:
                _kill(process)
                with contextlib.suppress(Exception):
                    process.join(5.0)
            for connection in connections:
                connection.close()

    def _start(
        self, method: str, connections: list[Connection]
    ) -> tuple[multiprocessing.process.BaseProcess, Connection, Connection]:
        """Start a worker; return it with the parent's ends of its two pipes."""
        context = _context(method)
        data_reader, data_writer = context.Pipe(duplex=False)
        result_reader, result_writer = context.Pipe(duplex=False)
        connections += [data_reader, data_writer, result_reader, result_writer]
        process = context.Process(
            target=_worker_main,
            args=(data_reader, result_writer, self._password, self._memory_bytes),
            name=PROCESS_NAME,
            daemon=True,
        )
        process.start()
        data_reader.close()  # the worker's ends: close our copies so EOF is seen
        result_writer.close()
        return process, data_writer, result_reader

    def _pump(
        self, reader: Connection, process: multiprocessing.process.BaseProcess, deadline: float
    ) -> None:
        raw_chars = 0
        while not self._stopped.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill(process)
                self._post(("timeout",))
                return
            try:
                if not reader.poll(min(remaining, _POLL_INTERVAL_S)):
                    continue
                message = reader.recv()
            except (EOFError, OSError):
                process.join(1.0)
                self._post(("exited", process.exitcode))
                return
            if message[0] == "page":
                raw_chars += len(message[2])
                if raw_chars > self._max_raw_chars:
                    _kill(process)
                    self._post(("too_much_text", raw_chars))
                    return
            self._post(message)
            if message[0] in ("done", "failed"):
                return


_preload_lock = threading.Lock()
_preload_set = False


_Context = multiprocessing.context.SpawnContext | multiprocessing.context.ForkServerContext


def _context(method: str) -> _Context:
    """The multiprocessing context; a forkserver preloads this module once."""
    global _preload_set
    context = cast(_Context, multiprocessing.get_context(method))
    if isinstance(context, multiprocessing.context.ForkServerContext):
        with _preload_lock:
            if not _preload_set:
                context.set_forkserver_preload([__name__])
                _preload_set = True
    return context


def _kill(process: multiprocessing.process.BaseProcess) -> None:
    with contextlib.suppress(Exception):
        if process.pid is not None and process.exitcode is None:
            process.kill()


def _worker_error(
    message: tuple[Any, ...],
    *,
    data: bytes,
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
        if reason == "memory":
            return _out_of_memory(memory_bytes)
        return DamagedDocument(
            f"The PDF is damaged and cannot be read ({detail}){_truncation_hint(data)}. "
            "Try opening it in a PDF viewer and saving (or printing) it as a new PDF.",
            code=ErrorCode.DAMAGED_PDF,
        )
    if kind == "exited":
        exitcode = message[1]
        if exitcode == _EXIT_OUT_OF_MEMORY:
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


def _truncation_hint(data: bytes) -> str:
    if b"%%EOF" not in data[-4096:]:
        return "; it looks truncated: there is no %%EOF marker at its end"
    return ""


# --------------------------------------------------------------------------
# Worker side (runs in the child process)


def _worker_main(
    data_conn: Connection, result_conn: Connection, password: str | None, memory_bytes: int
) -> None:
    """Entry point of the worker process: receive the PDF, send page texts."""
    try:
        _limit_memory(memory_bytes)
        _configure_pypdf(result_conn)
        data = data_conn.recv_bytes()
        data_conn.close()
        _extract(data, password, result_conn)
    except MemoryError:
        gc.collect()
        try:
            result_conn.send(("failed", "memory", ""))
        except BaseException:  # no memory even to report it
            os._exit(_EXIT_OUT_OF_MEMORY)
    except BaseException as exc:  # report, never print a traceback
        with contextlib.suppress(BaseException):
            result_conn.send(("failed", "damaged", _describe(exc)))
    finally:
        with contextlib.suppress(BaseException):
            result_conn.close()


def _address_space_bytes() -> int:
    """The process's current virtual memory size (bytes), 0 if unknown."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _limit_memory(memory_bytes: int) -> None:
    """Cap the worker's address space at its size now plus ``memory_bytes``.

    The baseline (the interpreter, and whatever the start method imported with
    the parent's main module) is not the parser's doing; ``memory_bytes`` is what
    parsing may add on top of it.
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

    def __init__(self, connection: Connection) -> None:
        super().__init__(logging.WARNING)
        self._connection = connection
        self._seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        if len(self._seen) >= _MAX_NOTICES:
            return
        try:
            text = record.getMessage()[:_MAX_DETAIL_CHARS]
            if text in self._seen:
                return
            self._seen.add(text)
            self._connection.send(("notice", record.name, text))
        except Exception:  # logging must never break extraction
            return


def _configure_pypdf(connection: Connection) -> None:
    import pypdf

    configuration = pypdf.get_configuration().with_overwrites(disable_legacy_handling=True, **PYPDF_LIMITS)
    pypdf.overwrite_configuration(configuration)
    handler = _ForwardHandler(connection)
    for name in ("pypdf", "py.warnings"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.propagate = False
        log.setLevel(logging.WARNING)
    logging.captureWarnings(True)


def _extract(data: bytes, password: str | None, connection: Connection) -> None:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError

    send = connection.send
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except MemoryError:
        raise
    except Exception as exc:  # pypdf raises many types
        send(("failed", "damaged", _describe(exc)))
        return
    if reader.is_encrypted:
        candidates = [""] if password is None else ["", password]
        try:
            opened = any(reader.decrypt(candidate) != PasswordType.NOT_DECRYPTED for candidate in candidates)
        except DependencyError as exc:
            send(("failed", "unsupported_encryption", _describe(exc)))
            return
        except MemoryError:
            raise
        except Exception as exc:
            send(("failed", "damaged", _describe(exc)))
            return
        if not opened:
            send(("failed", "no_password" if password is None else "wrong_password", ""))
            return
    try:
        pages = reader.pages
        count = len(pages)
    except MemoryError:
        raise
    except Exception as exc:
        send(("failed", "damaged", f"its page tree is broken: {_describe(exc)}"))
        return
    send(("opened", count))
    for index in range(count):
        try:
            page = pages[index]
            text = page.extract_text()
        except MemoryError:
            raise
        except Exception as exc:  # one bad page must not end the document
            send(("page", index + 1, "", False, False, _describe(exc)))
            continue
        has_images = blank = False
        if not text.strip():
            has_images, blank = _inspect_textless(page)
        send(("page", index + 1, text, has_images, blank, None))
    send(("done",))


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
