"""Helpers shared by the benchmarks: corpus, timing, statistics, processes and servers.

Nothing here measures anything by itself; each ``bench/<name>.py`` module does one
benchmark and returns a plain dict of figures (JSON-serializable) that
:mod:`bench.report` renders.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from summarizer.ingest import Chunk, read_document

__all__ = [
    "CORPUS",
    "ROOT",
    "Context",
    "ProcessUsage",
    "ServerProcess",
    "TreeSampler",
    "document_text",
    "machine_info",
    "percentile",
    "proc_cpu_s",
    "run_measured",
    "server_process",
    "versions",
]

ROOT = Path(__file__).resolve().parent.parent
"""The repository checkout."""

CORPUS = ROOT.parent / "shared" / "corpus"
"""``../shared/corpus`` beside the checkout (never copied into the repository)."""


@dataclass
class Context:
    """What every benchmark gets: the mode and a cache of parsed documents.

    Attributes:
        quick: Short run (smaller inputs, fewer repeats).
        first_token_s: The latency model's first-token latency (seconds).
        token_delay_s: The latency model's delay between tokens (seconds).
        tokens: Tokens per latency-model answer.
    """

    quick: bool = False
    first_token_s: float = 0.3
    token_delay_s: float = 0.01
    tokens: int = 60
    _chunks: dict[str, list[Chunk]] = field(default_factory=dict)

    def pdf(self, name: str) -> Path:
        """Path of ``pdf/<name>`` in the shared corpus."""
        return CORPUS / "pdf" / name

    def chunks(self, name: str) -> list[Chunk]:
        """The chunks of ``pdf/<name>`` with default options, read once per run."""
        if name not in self._chunks:
            self._chunks[name] = read_document(self.pdf(name))
        return self._chunks[name]

    def repeats(self, full: int, quick: int = 1) -> int:
        """Repetitions for this mode."""
        return quick if self.quick else full

    def log(self, message: str) -> None:
        """Print a progress line to stderr."""
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def model_args(self) -> list[str]:
        """Command-line flags passing the latency model's settings to :mod:`bench.server_proc`."""
        return [
            "--first-token-s",
            str(self.first_token_s),
            "--token-delay-s",
            str(self.token_delay_s),
            "--tokens",
            str(self.tokens),
        ]


def document_text(chunks: Sequence[Chunk]) -> str:
    """The cleaned document text rebuilt from overlapping chunks (by their offsets).

    Characters between two chunks that no chunk covers (white space the
    chunker skipped) become a blank line.
    """
    parts: list[str] = []
    end = 0
    for chunk in chunks:
        if chunk.start >= end:
            if parts:
                parts.append("\n\n")
            parts.append(chunk.text)
        else:
            parts.append(chunk.text[end - chunk.start :])
        end = max(end, chunk.end)
    return "".join(parts)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) of ``values`` by linear interpolation; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    """The median, NaN if empty."""
    return statistics.median(values) if values else math.nan


# ---------------------------------------------------------------------------
# machine and versions


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    return math.nan


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, RAM, OS, Python and the load average right now."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu": _cpu_model(),
        "ram_gib": _ram_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "loadavg": [round(x, 2) for x in load],
    }


_PACKAGES = (
    "langchain-core",
    "langchain-classic",
    "langgraph",
    "starlette",
    "uvicorn",
    "websockets",
    "pypdf",
    "pydantic",
    "numpy",
    "rouge-score",
)


def versions() -> dict[str, str]:
    """Installed versions of the packages that matter to the figures."""
    out: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# ---------------------------------------------------------------------------
# processes


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def proc_cpu_s(pid: int, *, children: bool = False) -> float:
    """CPU seconds (user + system) of process ``pid`` from ``/proc/<pid>/stat``.

    With ``children``, the CPU of its reaped children instead (``cutime + cstime``).
    NaN if the process is gone.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.nan
    # fields[0] is field 3 (state): utime/stime are fields 14/15, cutime/cstime 16/17.
    first = 13 if children else 11
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeSampler:
    """Samples the summed RSS of a process and all its descendants from ``/proc``.

    Used as a context manager around a process's life; stops by itself when the
    block ends. ``peak_tree_mib`` is the largest sum seen (sampling every
    ``interval`` seconds, so a short spike can be missed).
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_tree_kib = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _run(self) -> None:
        while not self._stop.is_set():
            if Path("/proc").is_dir():
                tree = _children()
                pending: list[int] = [self.pid]
                seen: list[int] = []
                while pending and len(seen) < 1000:
                    pid = pending.pop()
                    seen.append(pid)
                    pending.extend(tree.get(pid, []))
                total = sum(_rss_kib(pid) for pid in seen)
                self.peak_tree_kib = max(self.peak_tree_kib, total)
                self.peak_processes = max(self.peak_processes, len(seen))
            self._stop.wait(self.interval)

    @property
    def peak_tree_mib(self) -> float:
        """Largest summed RSS seen (MiB)."""
        return self.peak_tree_kib / 1024

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass(frozen=True)
class ProcessUsage:
    """Outcome and resource use of one child process.

    Attributes:
        returncode: Exit status (negative: killed by that signal).
        wall_s: Seconds from start to exit.
        cpu_s: User + system CPU seconds of the process and its reaped descendants.
        maxrss_mib: Peak RSS of the largest single process among them (MiB), from ``wait4``.
        tree_peak_mib: Peak of the summed RSS of the process tree, sampled (MiB).
        stdout: What it printed.
        stderr: Its error output (last 4,000 characters).
    """

    returncode: int
    wall_s: float
    cpu_s: float
    maxrss_mib: float
    tree_peak_mib: float
    stdout: str
    stderr: str


def run_measured(argv: Sequence[str], *, timeout_s: float, cwd: Path | None = None) -> ProcessUsage:
    """Run ``argv`` to completion and measure it with ``os.wait4`` (its own rusage).

    ``wait4`` reports the resource use of that one child and the descendants it
    reaped, unlike ``RUSAGE_CHILDREN`` which mixes every child this process ever had.

    Raises:
        TimeoutError: The process ran longer than ``timeout_s`` (it is killed).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(list(argv), stdout=out, stderr=err, cwd=cwd, stdin=subprocess.DEVNULL)
        with TreeSampler(process.pid) as sampler:
            deadline = started + timeout_s
            while True:
                pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    break
                if time.perf_counter() > deadline:
                    process.kill()
                    os.wait4(process.pid, 0)
                    process.returncode = -9
                    raise TimeoutError(f"{argv[:4]} ran longer than {timeout_s} s")
                time.sleep(0.02)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ProcessUsage(
            returncode=process.returncode,
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            maxrss_mib=usage.ru_maxrss / 1024,
            tree_peak_mib=sampler.peak_tree_mib,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace")[-4000:],
        )


@dataclass
class ServerProcess:
    """A running :mod:`bench.server_proc` child.

    Attributes:
        url: Its WebSocket URL (``ws://127.0.0.1:<port>/ws``).
        pid: Its process id.
        result: What it reported when it stopped (filled in after the ``with`` block).
    """

    url: str
    pid: int
    result: dict[str, Any] = field(default_factory=dict)


_PORT_LINE = re.compile(r"^PORT (\d+)$")


@contextlib.contextmanager
def server_process(
    mode: str, *extra: str, max_seconds: float = 900, module: str = "bench.server_proc"
) -> Iterator[ServerProcess]:
    """Run ``python -m bench.server_proc`` (a server on 127.0.0.1) for the ``with`` block.

    Args:
        mode: ``app`` (our Starlette app under uvicorn) or ``bare`` (a plain
            ``websockets`` server that only acknowledges); ``""`` for a module
            without modes.
        *extra: More flags for :mod:`bench.server_proc`.
        max_seconds: The child exits by itself after this long in any case.
        module: The server module (``bench.model_server`` for the model API;
            its URL is then ``http://127.0.0.1:<port>/v1``).

    Yields:
        The :class:`ServerProcess`; its ``result`` is filled in once the block ends
        (the child's peak RSS, event-loop lag figures, ...).

    Raises:
        RuntimeError: The server did not report its port within 60 seconds.
    """
    with tempfile.TemporaryDirectory(prefix="bench-server-") as folder:
        result_path = Path(folder) / "result.json"
        error_path = Path(folder) / "stderr.txt"
        argv = [
            sys.executable,
            "-m",
            module,
            *([mode] if mode else []),
            "--result",
            str(result_path),
            "--max-seconds",
            str(max_seconds),
            *extra,
        ]
        errors = error_path.open("w")
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
        try:
            port = _read_port(process, error_path)
            url = (
                f"ws://127.0.0.1:{port}/ws"
                if module == "bench.server_proc"
                else f"http://127.0.0.1:{port}/v1"
            )
            server = ServerProcess(url=url, pid=process.pid)
            yield server
        finally:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            errors.close()
            if process.stdout is not None:
                process.stdout.close()
        stderr = error_path.read_text(errors="replace")
        if result_path.exists():
            server.result = json.loads(result_path.read_text())
        server.result["returncode"] = process.returncode
        if stderr.strip():
            server.result["stderr_tail"] = stderr[-2000:]


def _read_port(process: subprocess.Popen[str], error_path: Path) -> int:
    assert process.stdout is not None
    box: list[int] = []

    def reader() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = _PORT_LINE.match(line.strip())
            if match:
                box.append(int(match.group(1)))
                return

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout=60)
    if not box:
        process.kill()
        stderr = error_path.read_text(errors="replace")
        raise RuntimeError(f"the benchmark server did not start: {stderr[-2000:]}")
    return box[0]
