"""Every early refusal of a short POST body reads (and drops) the rest of it first, so that a
client still sending gets the answer and a clean close, not a reset connection.

Old code drained only for a bad token and for errors raised inside the handler: a 415 (not
``multipart/form-data``) or a 413 (``Content-Length`` over a small limit) answered at once
and closed with the body unread, and the client saw ``ECONNRESET``.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from summarizer.cli import running_server
from summarizer.settings import Settings

pytestmark = pytest.mark.e2e

BODY_BYTES = 1_000_000
"""Short (under the server's 4 MiB drain bound), yet more than the kernel buffers hold unread."""


def post_raw(port: int, headers: dict[str, str], size: int) -> tuple[bytes, str]:
    """Send a whole POST at once, wait, then read: the answer, and how the connection ended."""
    head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"127.0.0.1:{port}", **headers}.items())
    request = f"POST /v1/jobs HTTP/1.1\r\n{head}Content-Length: {size}\r\n\r\n".encode() + b"x" * size
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        try:
            sock.sendall(request)
        except OSError as exc:
            return b"", f"send failed: {exc!r}"
        time.sleep(0.5)  # the server has answered and closed by now
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except OSError as exc:
            return answer, f"reset: {exc!r}"
    return answer, "closed"


@pytest.mark.parametrize(
    ("settings", "headers", "status", "code"),
    [
        (Settings(), {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        (
            Settings(max_document_bytes=100_000),
            {"Content-Type": "multipart/form-data; boundary=b"},
            413,
            "document_too_large",
        ),
        (
            Settings(token="s3cret"),
            {"Content-Type": "multipart/form-data; boundary=b", "Authorization": "Bearer wrong"},
            401,
            "unauthorized",
        ),
    ],
    ids=["415-not-a-form", "413-content-length", "401-bad-token"],
)
def test_an_early_refusal_of_a_short_body_is_read_then_closed_cleanly(
    settings: Settings, headers: dict[str, str], status: int, code: str
) -> None:
    with running_server(settings) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        answer, ending = post_raw(port, headers, BODY_BYTES)
    assert ending == "closed", (ending, answer[:200])
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split(b" ")[1] == str(status).encode()
    assert b"connection: close" in head.lower()
    assert json.loads(body)["code"] == code
