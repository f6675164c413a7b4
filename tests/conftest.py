"""Shared fixtures: corpus paths, settings, apps, a real uvicorn server."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from summarizer.settings import Settings

from .fake_openai import FakeOpenAI

CORPUS = Path(
    os.environ.get("SUMMARIZER_CORPUS", Path(__file__).resolve().parent.parent.parent / "shared" / "corpus")
)
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def corpus_file(*parts: str) -> Path:
    """A file of ../shared/corpus, or skip the test if the corpus is not beside the checkout."""
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"corpus file {path} not available")
    return path


@pytest.fixture(autouse=True, scope="session")
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep every test's job database out of the user's data directory."""
    old = os.environ.get("SUMMARIZER_DATA_DIR")
    os.environ["SUMMARIZER_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    yield
    if old is None:
        os.environ.pop("SUMMARIZER_DATA_DIR", None)
    else:
        os.environ["SUMMARIZER_DATA_DIR"] = old


@pytest.fixture(autouse=True)
def _close_model_http_clients() -> Iterator[None]:
    """Close the aiohttp sessions of the models a test loaded itself (``load_model``).

    The server closes its models' clients on shutdown; a model a test loads would
    otherwise leave an unclosed session behind ("Unclosed client session" logged
    at garbage collection). A session whose loop still runs (a server in another
    thread, a module's fixture) is its owner's to close; one whose loop is already
    closed (pytest-asyncio closes a test's loop first) has lost its sockets with
    it and is only marked closed.
    """
    yield
    from summarizer.models import loader

    for client in list(loader._OWNED_CLIENTS):
        session = getattr(getattr(client, "_transport", None), "client", None)
        loop = getattr(session, "_loop", None)
        if session is None or loop is None or loop.is_running():
            continue
        loader._OWNED_CLIENTS.discard(client)
        if not loop.is_closed():
            with contextlib.suppress(Exception):
                loop.run_until_complete(client.aclose())
        elif session.connector is not None:
            session.connector._closed = True


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 with a random port; yields its ws:// URL."""
    from summarizer.cli import running_server

    with running_server(Settings()) as url:
        yield url


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeOpenAI]:
    """A scripted OpenAI-compatible server on loopback (one per test module; see tests/fake_openai.py)."""
    with FakeOpenAI(stall_s=2.0).running() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    """:func:`fake_server`, its script and counters reset, with no OpenAI variables from the environment."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    fake_server.reset()
    return fake_server
