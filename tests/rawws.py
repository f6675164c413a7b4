"""A bare-bones WebSocket client on a plain socket, for hostile clients that a library would not be.

It performs the opening handshake with any ``Host`` and ``Origin``, sends masked
text frames, and otherwise does nothing: it does not read, does not answer
pings, does not close. Tests use it for silent and never-reading clients.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from typing import Any


def handshake(
    port: int, *, host: str | None = None, origin: str | None = None, rcvbuf: int | None = None
) -> tuple[socket.socket, int]:
    """Open ``/ws`` on 127.0.0.1:``port``; returns the socket and the HTTP status (101 on success)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /ws HTTP/1.1",
        f"Host: {host or f'127.0.0.1:{port}'}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        piece = sock.recv(1)
        if not piece:
            break
        head += piece
    status = int(head.split(b" ", 2)[1]) if head else 0
    return sock, status


def frame(payload: bytes, opcode: int = 1) -> bytes:
    """One masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return header + mask + masked


def send_json(sock: socket.socket, message: dict[str, Any]) -> None:
    """Send one JSON text frame."""
    sock.sendall(frame(json.dumps(message).encode()))


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bool, int]:
    """Read everything until the server closes the TCP connection.

    Returns:
        ``(closed, bytes read)``: ``closed`` is ``False`` if the connection was
        still open after ``timeout`` seconds of silence.
    """
    sock.settimeout(timeout)
    total = 0
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True, total
            total += len(data)
    except (ConnectionResetError, BrokenPipeError):
        return True, total
    except TimeoutError:
        return False, total
