"""Security headers for the HTTP responses of the app, above all the page's ``Content-Security-Policy``.

The page (``web/``) loads only its own files: ES modules, one style sheet, an
SVG icon; it has no inline script, no inline ``style`` attribute and no
``eval``. So the policy allows exactly that, and the WebSocket back to the host
that served the page. Everything the server sends is shown as text (see
``web/js/markdown.js``); the policy is the second line of defence should that
ever break.

:class:`SecurityHeaders` is a pure ASGI middleware: it adds headers to each
``http.response.start`` (without buffering bodies, so streamed responses stay
streamed), keeps headers a route set itself, and passes WebSockets and
lifespan events through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "SecurityHeaders", "content_security_policy", "security_headers"]

CONTENT_SECURITY_POLICY: tuple[tuple[str, str], ...] = (
    ("default-src", "'none'"),
    ("script-src", "'self'"),
    ("style-src", "'self'"),
    ("img-src", "'self' data:"),
    ("font-src", "'self'"),
    ("connect-src", "'self'"),
    ("manifest-src", "'self'"),
    ("base-uri", "'none'"),
    ("form-action", "'none'"),
    ("frame-ancestors", "'none'"),
    ("object-src", "'none'"),
)
"""The policy's directives, in order. ``connect-src`` also gets the page's own
``ws://``/``wss://`` origin (see :func:`content_security_policy`)."""

# A Host header as browsers send it: a name or an IPv4/IPv6 literal, and a port.
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


def content_security_policy(host: str | None = None) -> str:
    """The ``Content-Security-Policy`` value for a page served to ``host``.

    Args:
        host: The request's ``Host`` header (e.g. ``"127.0.0.1:8000"``), or ``None``.
            When it looks like a host name, ``ws://host`` and ``wss://host`` are added
            to ``connect-src``: CSP level 3 lets ``'self'`` match them, but older
            browsers (Safari before 15.4) do not. Anything else is ignored, so a
            forged header cannot inject directives.

    Returns:
        The header value, directives separated by ``"; "``.
    """
    parts = []
    for name, value in CONTENT_SECURITY_POLICY:
        if name == "connect-src" and host and _HOST.match(host):
            value = f"{value} ws://{host} wss://{host}"
        parts.append(f"{name} {value}")
    return "; ".join(parts)


def security_headers(host: str | None = None) -> list[tuple[str, str]]:
    """Every header :class:`SecurityHeaders` adds, as ``(name, value)`` pairs (names in lower case).

    Args:
        host: The request's ``Host`` header, or ``None`` (see :func:`content_security_policy`).
    """
    return [
        ("content-security-policy", content_security_policy(host)),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
    ]


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class SecurityHeaders:
    """ASGI middleware adding :func:`security_headers` to every HTTP response.

    A header the response already has (set by a route) is kept as it is.

    Args:
        app: The ASGI app to wrap.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = _header(scope.get("headers", []), b"host")
        extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in security_headers(host)]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {key.lower() for key, _ in headers}
                headers.extend((k, v) for k, v in extra if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
