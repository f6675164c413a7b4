"""Typeset a plain-text file as a simple multi-page PDF (Helvetica, US Letter).

Used to build ``samples/documents/*.pdf`` from the project's own texts, so the
repository ships PDFs it may redistribute. No dependency beyond the standard
library: it writes the PDF objects directly (PDF 1.4, one content stream per page,
a running head and a page number on every page, which the cleaner must remove).

Usage: python samples/make_pdf.py INPUT.txt OUTPUT.pdf "Running head"
"""

from __future__ import annotations

import sys
import textwrap
import zlib
from pathlib import Path

LINES_PER_PAGE = 46
WIDTH_CHARS = 88


def _escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def layout(text: str) -> list[list[str]]:
    """Wrap paragraphs (separated by blank lines) and cut them into pages of lines."""
    lines: list[str] = []
    for paragraph in text.split("\n\n"):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        lines.extend(textwrap.wrap(paragraph, WIDTH_CHARS, break_on_hyphens=False) or [""])
        lines.append("")
    return [lines[i : i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)]


def build_pdf(text: str, running_head: str) -> bytes:
    """The PDF file's bytes for ``text`` (latin-1 characters only)."""
    pages = layout(text)
    objects: list[bytes] = []
    font_id, pages_id = 3, 2
    page_ids = []
    for number, page_lines in enumerate(pages, start=1):
        ops = [
            "BT",
            "/F1 9 Tf",
            "72 750 Td",
            f"({_escape(running_head)}) Tj",
            "ET",
            "BT",
            "/F1 11 Tf",
            "14 TL",
            "72 720 Td",
        ]
        for line in page_lines:
            ops.append(f"({_escape(line)}) '")
        ops += ["ET", "BT", "/F1 9 Tf", "300 40 Td", f"({number}) Tj", "ET"]
        stream = zlib.compress("\n".join(ops).encode("latin-1"))
        content_id = 4 + 2 * (number - 1) + 1
        page_id = content_id - 1
        page_ids.append(page_id)
        objects.append(
            f"<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> /Contents {content_id} 0 R >>".encode()
        )
        objects.append(
            f"<< /Length {len(stream)} /Filter /FlateDecode >>\nstream\n".encode() + stream + b"\nendstream"
        )
    header = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{i} 0 R' for i in page_ids)}] "
        f"/Count {len(page_ids)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    all_objects = header + objects
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(all_objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(all_objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(all_objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    source, target, head = sys.argv[1:]
    Path(target).write_bytes(build_pdf(Path(source).read_text(encoding="utf-8"), head))
