"""Real server processes on free loopback ports, restartable on the same port and data.

:class:`ServerProc` is the one start / wait / kill / stop implementation; the
servers the tests run (``tests.echo_server``, ``tests.slow_server``, replicas
behind HAProxy) differ only in their command line and environment.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on ``127.0.0.1:port``."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class ServerProc:
    """``python -m <module> <args...>`` in a subprocess, on a port chosen once.

    Args:
        module: The server module (run with ``-m``, from the repository root).
        args: Its arguments (``{port}`` is replaced by the port).
        env: Extra environment variables (on top of this process's).
        stop_timeout_s: How long :meth:`stop` waits after SIGTERM before SIGKILL (seconds).
    """

    def __init__(
        self,
        module: str,
        args: list[str],
        *,
        env: dict[str, str] | None = None,
        stop_timeout_s: float = 15.0,
    ) -> None:
        self.port = free_port()
        self.module = module
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.stop_timeout_s = stop_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The WebSocket URL (``ws://127.0.0.1:<port>/ws``)."""
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def base(self) -> str:
        """The HTTP base URL (``http://127.0.0.1:<port>``)."""
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        """Start the process without waiting for it to listen."""
        argv = [a.replace("{port}", str(self.port)) for a in self.args]
        self.proc = subprocess.Popen([sys.executable, "-m", self.module, *argv], cwd=ROOT, env=self.env)

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the process and wait until it accepts connections.

        Raises:
            RuntimeError: It did not listen within ``timeout_s`` seconds.
        """
        self.spawn()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if port_open(self.port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"the server process ({self.module}) did not start")

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        """Wait until ``GET /healthz`` answers 200.

        Raises:
            RuntimeError: It did not within ``timeout_s`` seconds.
        """
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server process ({self.module}) did not become healthy")

    def kill(self) -> None:
        """SIGKILL the process and reap it."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout_s``; nothing if it is not running."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rss_bytes(self) -> int:
        """The process's resident set size (bytes), from ``/proc``."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")


class EchoServer(ServerProc):
    """``python -m tests.echo_server`` in a subprocess.

    Args:
        data: Data directory (kept across restarts).
        env: Extra ``SUMMARIZER_*`` environment variables.
    """

    def __init__(self, data: Path, env: dict[str, str] | None = None) -> None:
        super().__init__("tests.echo_server", ["{port}", str(data)], env=env)
        self.data = data
