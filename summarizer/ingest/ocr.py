"""OCR of PDF pages: render with PDFium, read with Tesseract, clean OCR noise.

Runs inside the PDF worker process (:mod:`summarizer.ingest.worker`), under
its memory limit and wall clock. The engine is the Debian ``tesseract``
program (5.x) driven through :mod:`pytesseract`: each page is one
``tesseract`` process, killed after ``timeout_s``, which inherits the worker's
``RLIMIT_AS`` and runs in the worker's process group (so it dies with it).
A crash of Tesseract on one page costs that page, not the worker.

Pages are rendered with :mod:`pypdfium2` (PDFium, Apache-2.0/BSD wheels) to
8-bit grayscale at ``dpi``, shrunk so the image never exceeds ``max_pixels``
(and :data:`MAX_SIDE_PIXELS` per side): a huge page costs at most
``max_pixels`` bytes. PDFium is not thread-safe, so rendering is serialized;
Tesseract runs in parallel.

:func:`clean_ocr_text` removes what OCR adds and text layers do not have:
words hyphenated across lines, ligature characters, stray marks at the
margins (gutter bars, specks read as punctuation), before the general cleaner
(:mod:`summarizer.ingest.clean`) sees the page.

This module needs the ``ocr`` extra (``pip install 'summarizer[ocr]'``) and
the ``tesseract-ocr`` system package; :func:`unavailable_reason` says what is
missing. Importing it needs neither.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import threading
from typing import TYPE_CHECKING, Final

from summarizer.ingest.clean import LIGATURE_MAP

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = [
    "INSTALL_HINT",
    "MAX_SIDE_PIXELS",
    "PageRenderer",
    "clean_ocr_text",
    "recognize",
    "render_scale",
    "unavailable_reason",
]

INSTALL_HINT: Final = (
    "pip install 'summarizer[ocr]' (pytesseract, pypdfium2, Pillow) and apt-get install tesseract-ocr"
)
"""What to install for OCR, as the ``no_text`` error says it."""

MAX_SIDE_PIXELS: Final = 12_000
"""Longest side of a rendered page (pixels); Tesseract refuses more than 32,767."""


def unavailable_reason(languages: str) -> str | None:
    """Why OCR cannot run here, with what to install; ``None`` when it can.

    Args:
        languages: Tesseract language codes joined by ``+`` (e.g. ``"eng+deu"``).

    Returns:
        A sentence fragment such as ``"the OCR packages are not installed (...)"``, or ``None``.
    """
    missing_packages = [name for name in ("pytesseract", "pypdfium2", "PIL") if not _installed(name)]
    if missing_packages:
        names = ", ".join("Pillow" if name == "PIL" else name for name in missing_packages)
        return f"the OCR packages are not installed on the server ({names} missing): {INSTALL_HINT}"
    headroom = _address_space_left()
    if headroom is not None and headroom < LIBRARY_ADDRESS_SPACE_BYTES:
        # Loading them would fail somewhere inside, and OpenBLAS (under numpy)
        # then calls exit(1) instead of raising: say it before trying.
        return (
            "the OCR libraries do not fit in the worker's memory limit "
            f"(options.parse_memory_bytes; they need about {LIBRARY_ADDRESS_SPACE_BYTES // 1024**2} MiB "
            f"of address space, {headroom // 1024**2} MiB are left)"
        )
    try:
        import PIL.Image  # noqa: F401
        import pypdfium2  # noqa: F401
        import pytesseract
    except ImportError as exc:  # installed, but its library cannot be loaded
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        detail = (lines[-1] if lines else type(exc).__name__)[:200]
        if "map segment" in detail or "memory" in detail.lower():
            return (
                "the OCR libraries do not fit in the worker's memory limit "
                f"(options.parse_memory_bytes; loading failed: {detail})"
            )
        return f"the OCR packages cannot be loaded ({detail}): {INSTALL_HINT}"
    try:
        pytesseract.get_tesseract_version()
        installed = set(pytesseract.get_languages(config=""))
    except Exception:  # TesseractNotFoundError, or a broken installation
        return f"the tesseract program is not installed on the server: {INSTALL_HINT}"
    missing = [code for code in languages.split("+") if code and code not in installed]
    if missing:
        packages = " ".join(f"tesseract-ocr-{code.lower().replace('_', '-')}" for code in missing)
        return (
            f"the Tesseract language {'pack' if len(missing) == 1 else 'packs'} {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed on the server: apt-get install {packages} "
            f"(installed: {', '.join(sorted(installed - {'osd'})) or 'none'})"
        )
    return None


LIBRARY_ADDRESS_SPACE_BYTES: Final = 112 * 1024**2
"""Address space that loading Pillow, pypdfium2 and pytesseract (numpy, OpenBLAS) adds (bytes; ~90 MiB)."""


def _address_space_left() -> int | None:
    """Bytes this process may still map under its ``RLIMIT_AS``, or ``None`` without a limit."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/statm", encoding="ascii") as statm:
            size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError, IndexError):
        return None
    return max(0, soft - size)


def _installed(name: str) -> bool:
    """Whether a top-level package can be found (without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def render_scale(width_pt: float, height_pt: float, *, dpi: int, max_pixels: int) -> float:
    """The rendering scale (pixels per point) for a page, within the pixel caps.

    Args:
        width_pt: Page width (points, 1/72 inch).
        height_pt: Page height (points).
        dpi: Wanted resolution (dots per inch).
        max_pixels: Largest image (pixels, width × height).

    Returns:
        ``dpi / 72``, reduced so that the image (each side rounded up) has at
        most ``max_pixels`` pixels and no side longer than :data:`MAX_SIDE_PIXELS`.
    """
    width_pt, height_pt = max(width_pt, 1.0), max(height_pt, 1.0)
    scale = dpi / 72
    scale = min(scale, math.sqrt(max_pixels / (width_pt * height_pt)))
    scale = min(scale, MAX_SIDE_PIXELS / max(width_pt, height_pt))
    while scale > 1e-6 and math.ceil(width_pt * scale) * math.ceil(height_pt * scale) > max_pixels:
        scale *= 0.995  # PDFium rounds each side up
    return scale


class PageRenderer:
    """Renders pages of one PDF to grayscale images (thread-safe: one page at a time).

    Args:
        data: The PDF file (bytes); opened by PDFium on the first :meth:`render`.
        dpi: Resolution (dots per inch, default 300, what Tesseract reads best).
        max_pixels: Pixel cap per page (default 25,000,000: 25 MB of grayscale).
    """

    def __init__(self, data: bytes, *, dpi: int = 300, max_pixels: int = 25_000_000) -> None:
        self._data = data
        self._dpi = dpi
        self._max_pixels = max_pixels
        self._lock = threading.Lock()
        self._document: object | None = None

    def render(self, index: int, dpi: int | None = None) -> Image:
        """Render page ``index`` (0-based).

        Args:
            index: Page index.
            dpi: Resolution of this page (dots per inch; default: the renderer's).

        Returns:
            An 8-bit grayscale :class:`PIL.Image.Image`.

        Raises:
            pypdfium2.PdfiumError: PDFium cannot open the file or the page.
        """
        import pypdfium2

        with self._lock:
            if self._document is None:
                self._document = pypdfium2.PdfDocument(self._data)
            document = self._document
            assert isinstance(document, pypdfium2.PdfDocument)
            page = document[index]
            try:
                width, height = page.get_size()
                scale = render_scale(width, height, dpi=dpi or self._dpi, max_pixels=self._max_pixels)
                bitmap = page.render(scale=scale, grayscale=True)
                try:
                    image: Image = bitmap.to_pil().convert("L")
                    return image
                finally:
                    bitmap.close()
            finally:
                page.close()

    def close(self) -> None:
        """Close the PDFium document."""
        with self._lock:
            document, self._document = self._document, None
        close = getattr(document, "close", None)
        if close is not None:
            close()


def recognize(image: Image, *, languages: str = "eng", timeout_s: float = 60.0) -> str:
    """Read the text of one page image with Tesseract.

    The image goes to Tesseract as an uncompressed PGM file (no PNG encoding).

    Args:
        image: The page (grayscale).
        languages: Tesseract language codes joined by ``+``.
        timeout_s: Time limit (seconds); Tesseract is killed after it.

    Returns:
        The text, lines separated by ``"\\n"``, paragraphs by ``"\\n\\n"``.

    Raises:
        RuntimeError: ``"Tesseract process timeout"`` after ``timeout_s``.
        pytesseract.TesseractError: Tesseract failed (the message has its stderr).
    """
    import pytesseract

    with tempfile.TemporaryDirectory(prefix="summarizer-ocr-") as folder:
        path = os.path.join(folder, "page.pgm")
        image.save(path)
        return str(pytesseract.image_to_string(path, lang=languages, timeout=timeout_s))


# --------------------------------------------------------------------------
# OCR noise

_LIGATURES: Final = str.maketrans(
    {
        **LIGATURE_MAP,
        "\u00ad": "",  # soft hyphen
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\x0c": "\n",  # Tesseract's page separator
    }
)

_HYPHENATED: Final = re.compile(r"(\w)[-\u00ac]\n[ \t]*([a-z])")
"""A lower-case word broken at a line end: ``exam-\\nple`` (also with ``¬``)."""

_MARGIN_EDGE: Final = re.compile(r"^[ \t]*[|¦‖!]+[ \t]+|[ \t]+[|¦‖]+[ \t]*$", re.MULTILINE)
"""Bars at a line's start or end: the gutter or a page edge read as ``|``."""

_SPACES: Final = re.compile(r"[ \t]{2,}")


def clean_ocr_text(text: str) -> str:
    """Remove OCR noise from one page's text.

    * ligature characters (``ﬁ`` → ``fi``), soft hyphens and odd hyphens;
    * words broken across lines: ``exam-`` / ``ple`` → ``example`` when the
      second half starts lower-case (``well-`` / ``Known`` is kept);
    * stray marks at the margins: lines with at most 3 visible characters and
      no letter or digit (specks, ``~``, ``_``, ``'``), and ``|`` bars at a
      line's edge;
    * runs of spaces, and blank lines beyond one in a row.

    Args:
        text: Tesseract's output for one page.

    Returns:
        The cleaned text (may be empty).
    """
    text = text.translate(_LIGATURES)
    text = _HYPHENATED.sub(r"\1\2", text)
    text = _MARGIN_EDGE.sub("", text)
    lines: list[str] = []
    for line in text.split("\n"):
        line = _SPACES.sub(" ", line).strip()
        visible = line.replace(" ", "")
        if visible and len(visible) <= 3 and not any(char.isalnum() for char in visible):
            continue  # a speck
        if not line and (not lines or not lines[-1]):
            continue
        lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Reporting helpers (used by the job to build ``progress`` and ``document``)


def page_ranges(numbers: list[int]) -> list[tuple[int, int]]:
    """Page numbers as sorted ``(first, last)`` ranges: ``[1, 2, 3, 7]`` → ``[(1, 3), (7, 7)]``."""
    ranges: list[tuple[int, int]] = []
    for number in sorted(set(numbers)):
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], number)
        else:
            ranges.append((number, number))
    return ranges


def ocr_eta(elapsed_s: float, done: int, total: int) -> float | None:
    """Seconds until the OCR stage ends at the pace so far, or ``None`` before the first page.

    Args:
        elapsed_s: Seconds since the stage started.
        done: Pages OCR'd.
        total: Pages to OCR (an estimate while the PDF is read).
    """
    if done <= 0:
        return None
    return round(max(0.0, elapsed_s / done * (total - done)), 1)
