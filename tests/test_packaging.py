"""The package as a user installs it: a wheel, in a fresh venv, serving the page from anywhere.

The slow test builds the wheel from a copy of the checkout (``pip wheel
--no-deps --no-build-isolation``: no network), installs it into a new venv
(``--no-deps``; the venv finds the dependencies through a ``.pth`` line naming
this interpreter's site-packages, so nothing is downloaded), runs
``summarizer serve`` from an unrelated directory and fetches ``/`` and every
asset the page references (``index.html``'s links and scripts, the JS modules'
imports, the CSS ``url()``s), recursively.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from .serverproc import free_port

ROOT = Path(__file__).resolve().parent.parent


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_is_listed_in_pyproject() -> None:
    """``[tool.setuptools] packages`` is a list (web/ is mapped into the package): keep it complete."""
    setuptools = _pyproject()["tool"]["setuptools"]  # type: ignore[index]
    listed = set(setuptools["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "summarizer").rglob("__init__.py")
    }
    found |= {"summarizer.web"} | {
        "summarizer.web." + ".".join(d.relative_to(ROOT / "web").parts)
        for d in (ROOT / "web").rglob("*")
        if d.is_dir() and "__pycache__" not in d.parts
    }
    assert listed == found, (
        f"pyproject.toml [tool.setuptools] packages: add {sorted(found - listed)}, "
        f"remove {sorted(listed - found)}"
    )
    assert setuptools["package-dir"] == {"summarizer.web": "web"}


def test_license_is_an_spdx_string() -> None:
    assert _pyproject()["project"]["license"] == "MIT"  # type: ignore[index]


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (name == "src" or (name == "href" and tag == "link")):
                self.refs.append(value)


_JS_IMPORT = re.compile(
    r"""(?:\bimport\s*\(\s*|\bimport\s+(?:[\w*{}\s,$]+\s+from\s+)?|\bexport\s+[\w*{}\s,$]+\s+from\s+)["']([^"']+)["']"""
)
_CSS_URL = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)|@import\s+["']([^"']+)["']""")


def references(url: str, content_type: str, text: str) -> list[str]:
    """Same-site URLs that the page or asset at ``url`` loads."""
    if "html" in content_type:
        parser = _Refs()
        parser.feed(text)
        refs = parser.refs
    elif "javascript" in content_type:
        refs = _JS_IMPORT.findall(text)
    elif "css" in content_type:
        refs = [a or b for a, b in _CSS_URL.findall(text)]
    else:
        refs = []
    out = []
    for ref in refs:
        if ref.startswith(("data:", "#", "http:", "https:", "//", "mailto:")):
            continue
        out.append(urljoin(url, ref).split("#")[0])
    return out


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SUMMARIZER_", "VIRTUAL_ENV"))}
    env["PIP_NO_INDEX"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(*cmd: str | Path, cwd: Path, timeout: float = 120) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the wheel built from this checkout installed (no network)."""
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:
        pytest.skip("building offline needs setuptools>=77 in this venv: pip install -e '.[dev]'")
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("summarizer", "web"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    started = time.monotonic()
    build = _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-v",
        "-w",
        tmp / "dist",
        src,
        cwd=tmp,
    )
    (wheel,) = (tmp / "dist").glob("summarizer-*.whl")
    warnings = [
        line.strip() for line in build.splitlines() if "Warning" in line or "deprecat" in line.lower()
    ]
    assert not warnings, "the build warned:\n" + "\n".join(warnings)
    env_dir = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", env_dir, cwd=tmp)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        env=_env(),
    ).stdout.strip()
    # Dependencies come from this interpreter's site-packages (a plain path, its .pth files unread).
    Path(purelib, "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel, cwd=tmp
    )
    print(
        f"\nbuilt and installed {wheel.name} ({wheel.stat().st_size} bytes) "
        f"in {time.monotonic() - started:.1f} s"
    )
    yield env_dir


@pytest.mark.slow
def test_wheel_serves_the_page_from_anywhere(venv: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run(
        venv / "bin" / "python",
        "-c",
        "import summarizer, summarizer.settings as s; print(summarizer.__file__); print(s.WEB_DIR)",
        cwd=elsewhere,
    ).split()
    assert all(str(venv) in line for line in where), where  # the wheel's copy, not the checkout
    port = free_port()
    server = subprocess.Popen(
        [venv / "bin" / "summarizer", "serve", "--port", str(port), "--data-dir", tmp_path / "data"],
        cwd=elsewhere,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server)
        fetched: dict[str, int] = {}
        todo = [base + "/"]
        while todo:
            url = todo.pop()
            if url in fetched:
                continue
            r = httpx.get(url, timeout=10)
            fetched[url] = len(r.content)
            assert r.status_code == 200 and r.content, (url, r.status_code)
            todo += [
                ref for ref in references(url, r.headers["content-type"], r.text) if urlsplit(ref).netloc
            ]
        paths = sorted(urlsplit(u).path for u in fetched)
        assert "/" in paths and "/js/app.js" in paths and "/css/app.css" in paths, paths
        assert sum(p.endswith(".js") for p in paths) >= 2, paths  # the module imports were followed
        print(f"\nfetched {len(paths)} URLs from the installed wheel: " + ", ".join(paths))
    finally:
        server.terminate()
        server.wait(timeout=15)


@pytest.mark.slow
def test_web_dir_without_a_page_says_why(venv: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    port = free_port()
    server = subprocess.Popen(
        [
            venv / "bin" / "summarizer",
            "serve",
            "--port",
            str(port),
            "--web-dir",
            empty,
            "--data-dir",
            tmp_path / "data",
        ],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server)
        r = httpx.get(base + "/", timeout=10)
        assert r.status_code == 404
        assert "has no index.html" in r.text and "--web-dir" in r.text and str(empty) in r.text
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=15)
    assert "has no index.html" in out  # and the log said so at start-up


def _wait_ready(base: str, server: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the installed server did not start")
