"""``web/js/errors.js`` has friendly words for every :class:`~summarizer.errors.ErrorCode`.

The JavaScript file is read as text and its ``FRIENDLY`` object literal is scanned
in Python (no browser, no JavaScript engine), the way ``tests/test_protocol.py``
checks ``docs/protocol.md``: a code added to ``ErrorCode`` makes this test fail
until the page can explain it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from summarizer.errors import ErrorCode

ERRORS_JS = Path(__file__).resolve().parent.parent / "web" / "js" / "errors.js"

# Codes only the page itself produces (it never gets them from the server).
PAGE_ONLY = {"unreachable", "unsupported_file", "upload_interrupted"}

_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def _skip_string(text: str, i: int) -> int:
    """Index just after the string literal starting at ``text[i]`` (a quote or backtick)."""
    quote = text[i]
    i += 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    raise AssertionError("unterminated string literal in errors.js")


def _skip_comment(text: str, i: int) -> int:
    """Index just after a ``//`` or ``/* */`` comment at ``i``, or ``i`` if there is none."""
    if text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end + 1
    if text.startswith("/*", i):
        end = text.find("*/", i + 2)
        assert end >= 0, "unterminated comment in errors.js"
        return end + 2
    return i


def object_literal(text: str, name: str) -> str:
    """The source of ``const <name> = { ... }`` (braces included), strings and comments respected."""
    match = re.search(rf"\bconst\s+{re.escape(name)}\s*=\s*\{{", text)
    assert match, f"no `const {name} = {{` in errors.js"
    start = match.end() - 1
    depth, i = 0, start
    while i < len(text):
        after = _skip_comment(text, i)
        if after != i:
            i = after
            continue
        ch = text[i]
        if ch in "\"'`":
            i = _skip_string(text, i)
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
        i += 1
    raise AssertionError(f"unbalanced braces in `{name}`")


def top_level_entries(literal: str) -> dict[str, str]:
    """``key -> value source`` for the properties of an object literal's outermost level."""
    entries: dict[str, str] = {}
    depth, i = 0, 0
    key: str | None = None
    value_start = 0
    while i < len(literal):
        after = _skip_comment(literal, i)
        if after != i:
            i = after
            continue
        ch = literal[i]
        if ch in "\"'`":
            i = _skip_string(literal, i)
            continue
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            if depth == 1 and key is not None:
                entries[key] = literal[value_start:i].strip().rstrip(",").strip()
                key = None
            depth -= 1
        elif depth == 1 and ch == "," and key is not None:
            entries[key] = literal[value_start:i].strip()
            key = None
        elif depth == 1 and key is None:
            ident = _IDENT.match(literal, i)
            if ident:
                rest = literal[ident.end() :].lstrip()
                if rest.startswith(":"):
                    key = ident.group()
                    assert key not in entries, f"`{key}` is defined twice (the last one wins in JavaScript)"
                    value_start = literal.index(":", ident.end()) + 1
                    i = value_start
                    continue
                i = ident.end()
                continue
        i += 1
    return entries


def friendly_words() -> dict[str, dict[str, str]]:
    """``code -> {"title", "hint"}`` as ``errors.js`` defines ``FRIENDLY``."""
    text = ERRORS_JS.read_text(encoding="utf-8")
    out: dict[str, dict[str, str]] = {}
    for code, value in top_level_entries(object_literal(text, "FRIENDLY")).items():
        source = object_literal(text, value) if _IDENT.fullmatch(value) else value
        fields = {k: v.strip("\"'`") for k, v in top_level_entries(source).items()}
        out[code] = fields
    return out


def test_scanner_reads_a_known_shape() -> None:
    text = (
        'const SHARED = { title: "T, with {braces}", hint: "H: colon" };\n'
        "export const FRIENDLY = {\n  // a comment: with a colon\n"
        "  one: SHARED,\n  two: { title: 'x', hint: `y` },\n};"
    )
    entries = top_level_entries(object_literal(text, "FRIENDLY"))
    assert entries == {"one": "SHARED", "two": "{ title: 'x', hint: `y` }"}
    with pytest.raises(AssertionError, match="`one` is defined twice"):
        top_level_entries("{ one: 1, two: 2, one: 3 }")
    assert top_level_entries(object_literal(text, "SHARED")) == {
        "title": '"T, with {braces}"',
        "hint": '"H: colon"',
    }


def test_errors_js_covers_every_error_code() -> None:
    words = friendly_words()
    codes = {c.value for c in ErrorCode}
    missing = sorted(codes - set(words))
    assert not missing, f"web/js/errors.js has no words for: {', '.join(missing)}"
    unknown = sorted(set(words) - codes - PAGE_ONLY)
    assert not unknown, f"web/js/errors.js names codes that ErrorCode does not have: {', '.join(unknown)}"


def test_every_entry_has_a_title_and_a_hint() -> None:
    for code, fields in friendly_words().items():
        assert fields.get("title", "").strip(), f"{code}: no title"
        assert fields.get("hint", "").strip(), f"{code}: no hint"
