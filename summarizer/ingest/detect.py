"""Decide what kind of document an upload is: PDF, plain text or Markdown.

The declared media type, the file name's extension and the first bytes all
count. Magic bytes win over names: a real PDF is read as a PDF whatever it is
called, and a file declared as a PDF that does not contain the ``%PDF-``
header within its first :data:`MAGIC_WINDOW` bytes is refused with
``not_a_pdf`` rather than being summarized as binary junk.
"""

from __future__ import annotations

import codecs
from pathlib import PurePath
from typing import Literal

from summarizer.errors import ErrorCode, NoTextError, UnsupportedDocument

__all__ = ["MAGIC_WINDOW", "PDF_MAGIC", "DocumentKind", "detect_kind"]

DocumentKind = Literal["pdf", "text", "markdown"]
"""The three kinds of document the ingestion pipeline reads."""

PDF_MAGIC = b"%PDF-"
"""The PDF header. Readers (pypdf included) accept it anywhere in the first KiB."""

MAGIC_WINDOW = 1024
"""How many leading bytes :func:`detect_kind` looks at (bytes)."""

_PDF_MEDIA_TYPES = frozenset(
    {
        "application/pdf",
        "application/x-pdf",
        "application/acrobat",
        "applications/vnd.pdf",
        "text/pdf",
        "text/x-pdf",
    }
)
_MARKDOWN_MEDIA_TYPES = frozenset({"text/markdown", "text/x-markdown", "text/x-gfm"})
_GENERIC_MEDIA_TYPES = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/x-download"}
)
_TEXTLIKE_MEDIA_TYPES = frozenset(
    {"application/json", "application/xml", "application/x-yaml", "application/yaml"}
)
_MARKDOWN_EXTENSIONS = frozenset({".md", ".markdown", ".mdown", ".mkd", ".mkdn", ".mdx"})
_TEXT_EXTENSIONS = frozenset(
    {".txt", ".text", ".log", ".csv", ".tsv", ".rst", ".org", ".adoc", ".json", ".xml", ".yaml"}
)

# Leading bytes of common binary formats people upload by mistake.
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (e.g. .docx, .odt, .epub)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a legacy Microsoft Office file (.doc, .xls)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{\\rtf", "an RTF document"),
)

# C0 control characters that never occur in ordinary text (TAB, LF, FF, CR and
# ESC are allowed).
_CONTROL_BYTES = frozenset(set(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D, 0x1B}) | {0x7F}


def detect_kind(filename: str, media_type: str, head: bytes) -> DocumentKind:
    """Classify an upload from its name, declared media type and first bytes.

    Args:
        filename: The client's file name (only its extension is used; may be empty).
        media_type: The declared media type, e.g. ``"application/pdf"`` or
            ``"text/markdown; charset=utf-8"`` (parameters are ignored; may be empty).
        head: The first bytes of the upload, at least :data:`MAGIC_WINDOW` bytes
            unless the whole document is shorter.

    Returns:
        ``"pdf"``, ``"text"`` or ``"markdown"``.

    Raises:
        NoTextError: ``empty_document`` when ``head`` is empty (a zero-byte upload).
        UnsupportedDocument: ``not_a_pdf`` when declared as a PDF (by media type,
            or by a ``.pdf`` name with a generic media type) without the PDF
            header; ``bad_encoding`` for UTF-16/UTF-32 text; else
            ``unsupported_media_type`` for binary data or another media type.
    """
    if not head:
        raise NoTextError(
            f"{_describe(filename)} is empty (0 bytes): there is nothing to summarize.",
            code=ErrorCode.EMPTY_DOCUMENT,
        )
    mime = media_type.split(";", 1)[0].strip().lower()
    extension = PurePath(filename).suffix.lower() if filename else ""
    window = head[:MAGIC_WINDOW]

    if PDF_MAGIC in window:
        return "pdf"
    declared_pdf = mime in _PDF_MEDIA_TYPES or (mime in _GENERIC_MEDIA_TYPES and extension == ".pdf")
    if declared_pdf:
        raise UnsupportedDocument(
            f"{_describe(filename)} was sent as a PDF (media type {media_type or 'not given'!r}) "
            f"but is not one: its first {MAGIC_WINDOW} bytes contain no '%PDF-' header. "
            "Upload the original PDF file, or declare the right media type.",
            code=ErrorCode.NOT_A_PDF,
        )

    _refuse_binary(filename, window)

    if mime in _MARKDOWN_MEDIA_TYPES or (
        extension in _MARKDOWN_EXTENSIONS and (mime in _GENERIC_MEDIA_TYPES or mime == "text/plain")
    ):
        return "markdown"
    if (
        mime.startswith("text/")
        or mime in _TEXTLIKE_MEDIA_TYPES
        or mime in _GENERIC_MEDIA_TYPES
        or extension in _TEXT_EXTENSIONS
        or extension in _MARKDOWN_EXTENSIONS
    ):
        return "text"
    raise UnsupportedDocument(
        f"{_describe(filename)} has media type {media_type!r}, which cannot be summarized: "
        "send a PDF (application/pdf), plain text (text/plain) or Markdown (text/markdown).",
        code=ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    )


def _refuse_binary(filename: str, window: bytes) -> None:
    """Raise if ``window`` is clearly not UTF-8 text.

    Raises:
        UnsupportedDocument: ``bad_encoding`` for UTF-16/32 byte-order marks,
            ``unsupported_media_type`` for known binary formats, NUL bytes or
            many control characters.
    """
    for bom, name in (
        (codecs.BOM_UTF32_LE, "UTF-32"),
        (codecs.BOM_UTF32_BE, "UTF-32"),
        (codecs.BOM_UTF16_LE, "UTF-16"),
        (codecs.BOM_UTF16_BE, "UTF-16"),
    ):
        if window.startswith(bom):
            raise UnsupportedDocument(
                f"{_describe(filename)} is {name} text; only UTF-8 is supported. "
                "Save it as UTF-8 and upload it again.",
                code=ErrorCode.BAD_ENCODING,
            )
    for signature, what in _BINARY_SIGNATURES:
        if window.startswith(signature):
            raise UnsupportedDocument(
                f"{_describe(filename)} looks like {what}, not text, Markdown or PDF. "
                "Convert it to PDF or plain text first.",
                code=ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            )
    nul = window.find(b"\x00")
    controls = sum(1 for byte in window if byte in _CONTROL_BYTES)
    if nul >= 0 or controls > max(8, len(window) // 20):
        where = f"a NUL byte at offset {nul}" if nul >= 0 else f"{controls} control bytes"
        raise UnsupportedDocument(
            f"{_describe(filename)} is binary data ({where} in its first {len(window)} bytes), "
            "not text. Send a PDF, plain text or Markdown.",
            code=ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        )


def _describe(filename: str) -> str:
    """``"'report.pdf'"`` or ``"The upload"`` for messages."""
    return f"{filename!r}" if filename else "The upload"
