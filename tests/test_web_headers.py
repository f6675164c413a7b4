"""The page's security headers (``summarizer/web_headers.py``) on a real server.

The page itself running under the policy, with no violation, is checked in
Chromium by ``tests/browser/test_page.py::test_page_runs_under_its_content_security_policy``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from summarizer.settings import Settings
from summarizer.web_headers import SecurityHeaders, content_security_policy

WEB = Path(__file__).resolve().parent.parent / "web"


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    from summarizer.cli import running_server

    with running_server(Settings(_env_file=None)) as ws_url:  # type: ignore[call-arg]
        yield ws_url.replace("ws://", "http://", 1).removesuffix("ws")


def directives(value: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in value.split(";"):
        name, *sources = part.split()
        out[name] = sources
    return out


def page_assets() -> list[str]:
    """Every file the page references (``src``/``href`` in index.html, ES module imports)."""
    html = (WEB / "index.html").read_text(encoding="utf-8")
    assets = [m for m in re.findall(r'(?:src|href)="([^"#][^"]*)"', html) if not m.startswith(("http", "./"))]
    for js in sorted((WEB / "js").rglob("*.js")):
        assets.append(js.relative_to(WEB).as_posix())
    return assets


def test_page_and_assets_carry_the_policy(http_url: str) -> None:
    with httpx.Client(base_url=http_url, timeout=30) as client:
        for path in ["", *page_assets()]:
            response = client.get(path)
            assert response.status_code == 200, path
            csp = directives(response.headers["content-security-policy"])
            assert csp["default-src"] == ["'none'"], path
            assert csp["script-src"] == ["'self'"], path  # no 'unsafe-inline', no 'unsafe-eval'
            assert csp["style-src"] == ["'self'"], path
            assert csp["frame-ancestors"] == ["'none'"] and csp["object-src"] == ["'none'"], path
            host = http_url.split("//", 1)[1].rstrip("/")
            assert csp["connect-src"] == ["'self'", f"ws://{host}", f"wss://{host}"], path
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert response.headers["referrer-policy"] == "no-referrer", path


def test_api_keeps_working_with_the_headers(http_url: str) -> None:
    response = httpx.get(f"{http_url}api/config", timeout=30)
    assert response.status_code == 200 and response.json()["protocol"] == 1
    assert "content-security-policy" in response.headers


def test_page_has_no_inline_script_or_style() -> None:
    """What the policy forbids is not in the page: no inline script, handler or style attribute."""
    html = (WEB / "index.html").read_text(encoding="utf-8")
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, tag
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html), "inline script"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"\sstyle\s*=", html), "inline style attribute"
    assert "<style" not in html
    for js in (WEB / "js").rglob("*.js"):
        source = js.read_text(encoding="utf-8")
        assert not re.search(
            r"\beval\(|new Function\(|\.innerHTML\s*=|setAttribute\(\s*[\"']style", source
        ), js


def test_a_forged_host_cannot_add_directives() -> None:
    value = content_security_policy("evil.example; script-src *")
    assert "*" not in value and "evil" not in value
    assert "ws://[::1]:8000" in content_security_policy("[::1]:8000")


async def _call(
    app: Any, scope_type: str = "http", headers: list[tuple[bytes, bytes]] | None = None
) -> list[Any]:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": scope_type, "headers": headers or [(b"host", b"localhost:1")], "path": "/"}
    await SecurityHeaders(app)(scope, receive, send)
    return sent


def test_middleware_keeps_route_headers_streams_and_passes_websockets() -> None:
    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.accept"})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-security-policy", b"sandbox")],
            }
        )
        for part in (b"a", b"b"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    sent = asyncio.run(_call(streaming))
    start = sent[0]
    names = [k for k, _ in start["headers"]]
    assert names.count(b"content-security-policy") == 1
    assert dict(start["headers"])[b"content-security-policy"] == b"sandbox"  # the route's own wins
    assert b"x-content-type-options" in names
    assert [m.get("body") for m in sent[1:]] == [b"a", b"b", b""]  # not buffered, in order
    assert asyncio.run(_call(streaming, "websocket")) == [{"type": "websocket.accept"}]
