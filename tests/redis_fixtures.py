"""A real ``redis-server`` on a free loopback port, AOF on, in a temporary directory.

Used by the Redis store tests (``tests/test_store_contract.py``, ``tests/test_redis*.py``).
No system service and no fixed port; the tests that need it are skipped when
``redis-server`` is not installed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from .serverproc import free_port

__all__ = ["RedisServer", "free_port", "redis_server"]

REDIS_SERVER = shutil.which("redis-server") or (
    "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
)


@dataclass
class RedisServer:
    """One ``redis-server`` process that can be stopped and started again on the same port and data.

    Attributes:
        port: Its TCP port on 127.0.0.1.
        dir: Its data directory (AOF files).
    """

    port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 30.0) -> None:
        """Start it and wait until it answers PING (``timeout_s`` seconds at most)."""
        assert REDIS_SERVER is not None
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            time.sleep(0.05)
        raise RuntimeError("redis-server did not answer PING")

    def stop(self, kill: bool = False) -> None:
        """Stop it (SIGTERM: AOF flushed; ``kill``: SIGKILL)."""
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A session-wide Redis (tests use distinct key prefixes or flush it)."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    pytest.importorskip("redis")
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
