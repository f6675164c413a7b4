"""One typed settings object, read from ``SUMMARIZER_*`` environment variables.

Every field is documented with its unit and default; ``docs/settings.md`` lists
them and the CLI exposes the common ones as flags (flags win over env vars).
OpenAI's own ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` are read by
``langchain-openai`` directly and need no ``SUMMARIZER_`` twin.
"""

from __future__ import annotations

import importlib.resources
import os
import socket
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from summarizer.ingest.types import default_ocr_workers, default_parse_workers

__all__ = ["WEB_DIR", "HttpClient", "ModelPrice", "Settings", "default_web_dir"]


def default_web_dir() -> Path:
    """The folder of the page served at ``/``.

    In a source checkout (``pyproject.toml`` and ``web/index.html`` beside the
    ``summarizer`` package: an editable install, or ``PYTHONPATH``) it is the
    checkout's ``web/``, so edits show at once. Otherwise it is the copy shipped
    inside the package as ``summarizer.web``, found with :mod:`importlib.resources`
    (pyproject.toml maps ``web/`` there at build time).

    Returns:
        The folder; it may lack ``index.html`` when the package was installed
        without its page (the server then says so and answers 404 at ``/``).
    """
    root = Path(__file__).resolve().parent.parent
    checkout = root / "web"
    if (root / "pyproject.toml").is_file() and (checkout / "index.html").is_file():
        return checkout
    try:
        index = importlib.resources.files("summarizer.web").joinpath("index.html")
    except ModuleNotFoundError:
        return checkout
    return index.parent if isinstance(index, Path) else checkout


WEB_DIR = default_web_dir()
"""The page served at ``/`` by default (see :func:`default_web_dir`)."""

MiB = 1024 * 1024

HttpClient = Literal["auto", "aiohttp", "httpx"]
"""The async HTTP transport of OpenAI-like models: ``"aiohttp"`` (the SDK's
``DefaultAioHttpClient``), ``"httpx"`` (the SDK's default) or ``"auto"`` (aiohttp
when installed and no proxy is set in the environment, else httpx)."""

ModelPrice = dict[Literal["input_per_mtok", "output_per_mtok"], Annotated[float, Field(ge=0)]]
"""USD per million input and output tokens of one model (a missing key counts as 0)."""


class Settings(BaseSettings):
    """Server and pipeline configuration.

    Each attribute ``name`` is read from the env var ``SUMMARIZER_NAME``.

    Raises:
        pydantic.ValidationError: On a malformed or out-of-range value; the
            message names the variable.
    """

    model_config = SettingsConfigDict(
        env_prefix="SUMMARIZER_", extra="ignore", validate_default=True, protected_namespaces=()
    )

    # -- server ------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Interface to listen on.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    web_dir: Path = Field(
        default=WEB_DIR, description="Folder served at / (the web page); default: the page in the package."
    )
    log_level: str = Field(default="info", description="Python logging level name.")

    # -- model --------------------------------------------------------------------
    model: str = Field(
        default="extractive",
        description="Default chat model: 'extractive' (embedded) or 'provider:model'.",
    )
    models: list[str] = Field(
        default_factory=list,
        description="Extra models clients may pick (JSON list); the default is always allowed.",
    )
    base_url: str | None = Field(
        default=None,
        description="Base URL for OpenAI-compatible servers (else OPENAI_BASE_URL).",
    )
    concurrency: int = Field(default=4, ge=1, le=64, description="Map calls at once per job.")
    reduce_model: str | None = Field(
        default=None,
        description="Model for the final summary (reduce) of every job; unset: the job's model.",
    )
    requests_per_second: float | None = Field(
        default=None, gt=0, description="Model requests per second, all jobs together; unset: unlimited."
    )
    tokens_per_minute: float | None = Field(
        default=None,
        gt=0,
        description=(
            "Model tokens per minute (prompt + completion, ~4 characters a token), all jobs together; "
            "shared by every replica on one Redis; unset: unlimited."
        ),
    )
    connect_timeout_s: float = Field(
        default=10.0, gt=0, description="Connect timeout of each model request (s)."
    )
    read_timeout_s: float = Field(
        default=120.0, gt=0, description="Wait for a model's first token, and for any HTTP read (s)."
    )
    stall_timeout_s: float = Field(
        default=60.0, gt=0, description="Largest pause between two streamed pieces of an answer (s)."
    )
    token_coalesce_s: float = Field(
        default=0.025,
        ge=0,
        le=1.0,
        description="Hold a call's streamed pieces this long to send them as one token event (s; 0: off).",
    )
    openai_fast_path: bool = Field(
        default=True,
        description=(
            "Stream plain ChatOpenAI calls with the model's own request and client but the events "
            "read as plain JSON (several times less CPU per token); false: every call through astream."
        ),
    )
    model_http_client: HttpClient = Field(
        default="auto",
        description=(
            "HTTP transport of OpenAI-compatible models: 'aiohttp' (the openai SDK's aiohttp client: "
            "about a third less CPU per streamed token), 'httpx' (the SDK's default), "
            "'auto': aiohttp if installed and no HTTP(S)_PROXY is set (aiohttp ignores them)."
        ),
    )
    max_retries: int = Field(
        default=4, ge=0, le=20, description="Retries of a model call on 429, 5xx, timeouts and drops."
    )
    retry_base_s: float = Field(
        default=1.0, ge=0, description="First retry delay (s); doubles each retry, with jitter."
    )
    retry_max_s: float = Field(
        default=30.0, ge=0, description="Longest retry delay (s), also caps Retry-After."
    )
    strict: bool = Field(
        default=False, description="Fail a job when one chunk fails (else report it and go on)."
    )
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description="Prices in USD per million tokens by model (JSON), for summary.cost_usd.",
    )

    # -- chunking and budgets (characters, about 4 per token) ------------------------
    chunk_size: int = Field(default=4000, ge=100, le=100_000, description="Chunk length (chars).")
    chunk_overlap: int = Field(default=200, ge=0, le=50_000, description="Chunk overlap (chars).")
    reduce_budget_chars: int = Field(
        default=12_000,
        ge=500,
        description="Largest input of one collapse or reduce call (chars); above it, collapse.",
    )
    map_words: int = Field(default=80, ge=10, le=2000, description="Target words per chunk summary.")
    summary_words: int = Field(default=250, ge=20, le=5000, description="Target words of the summary.")
    max_collapse_levels: int = Field(default=8, ge=1, le=32, description="Collapse levels at most.")

    # -- limits -----------------------------------------------------------------------
    max_document_bytes: int = Field(default=200 * MiB, ge=1, description="Largest upload (bytes).")
    max_frame_bytes: int = Field(default=4 * MiB, ge=1024, description="Largest frame (bytes).")
    ws_read_buffer_bytes: int = Field(
        default=1 * MiB,
        ge=64 * 1024,
        description="WebSocket messages read ahead of the app per connection before reading pauses (bytes).",
    )
    ack_window_bytes: int = Field(
        default=8 * MiB, ge=1024, description="Unacknowledged upload bytes a client may have."
    )
    max_text_chars: int = Field(default=20_000_000, ge=1, description="Characters of text per job at most.")
    pdf_max_pages: int = Field(default=5000, ge=1, description="PDF pages at most.")
    parse_timeout_s: float = Field(
        default=600.0, gt=0, description="Wall-clock limit for parsing one document (s)."
    )
    parse_memory_bytes: int = Field(
        default=1024 * MiB,
        ge=64 * MiB,
        description="Memory the PDF worker may add to its start-up size (bytes, address space).",
    )
    ocr: Literal["auto", "off", "force"] = Field(
        default="auto",
        description="PDF pages to OCR: auto (textless pages with images), off, or force (every page).",
    )
    ocr_languages: str = Field(
        default="eng",
        pattern=r"^[A-Za-z_]{3,20}(?:\+[A-Za-z_]{3,20}){0,7}$",
        description="Tesseract language codes joined by + (each needs its language pack).",
    )
    ocr_workers: int = Field(
        default_factory=default_ocr_workers,
        ge=1,
        le=64,
        description="PDF pages OCR'd at once per job (default min(2, CPU cores)).",
    )
    ocr_page_timeout_s: float = Field(default=60.0, gt=0, description="Time limit of one page's OCR (s).")
    parse_workers: int = Field(
        default_factory=default_parse_workers,
        ge=1,
        le=8,
        description="PDF worker processes reading one big document's pages at once (default min(2, cores)).",
    )
    max_jobs: int = Field(
        default=32, ge=1, description="Jobs running at once on the server (1013 when busy)."
    )
    max_jobs_per_connection: int = Field(default=100, ge=1, description="Jobs one connection may start.")
    keepalive_s: float = Field(
        default=15.0, gt=0, description="Idle time before a keep-alive comment on a /v1 event stream (s)."
    )
    idle_timeout_s: float = Field(
        default=300.0, gt=0, description="Close a connection silent this long with no job running (s)."
    )
    send_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Close a connection (1008, slow_reader) whose client reads no event for this long (s).",
    )
    send_buffer_bytes: int | None = Field(
        default=256 * 1024,
        ge=4096,
        description="Kernel send buffer per WebSocket (bytes): what a client that does not read can hold.",
    )
    max_messages_per_second: float = Field(
        default=2000.0, gt=0, description="Client messages per second per connection (1008 above)."
    )

    # -- durability and security -----------------------------------------------------
    data_dir: Path | None = Field(
        default=None,
        description="Folder for the job database and uploads; unset: ~/.local/share/summarizer.",
    )
    redis_url: str | None = Field(
        default=None,
        description=(
            "redis://HOST:PORT/DB: keep jobs in Redis, shared by every replica with this URL; "
            "unset: SQLite in data_dir (one process)."
        ),
    )
    replica_id: str | None = Field(
        default=None, description="This replica's name in leases and /healthz; unset: host name + pid."
    )
    lease_s: float = Field(
        default=15.0,
        gt=0,
        description="A job's lease (s): renewed every lease_s/3 by its replica; lapsed, another takes it.",
    )
    job_ttl_s: float = Field(
        default=86_400.0, gt=0, description="How long a finished job can be re-opened (s)."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Extra browser origins allowed to connect (JSON list); any on an allowed host is.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Host names clients may address the server by (JSON list, '*.example.org' wildcards, '*' any); "
            "unset: localhost, 127.0.0.1, [::1] and the bind host."
        ),
    )
    token: SecretStr | None = Field(
        default=None, description="Shared token clients must send in 'start'/'resume'; unset: none needed."
    )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        if self.reduce_budget_chars < 2 * self.map_words * 8:
            raise ValueError(
                f"reduce_budget_chars ({self.reduce_budget_chars}) must hold at least two chunk "
                f"summaries of map_words ({self.map_words}) words"
            )
        return self

    def resolved_data_dir(self) -> Path:
        """``data_dir``, or ``$XDG_DATA_HOME/summarizer`` (default ``~/.local/share/summarizer``)."""
        if self.data_dir is not None:
            return self.data_dir
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base) / "summarizer"

    def resolved_replica_id(self) -> str:
        """``replica_id``, or ``<host name>-<pid>``."""
        return self.replica_id or f"{socket.gethostname()}-{os.getpid()}"

    def resolved_allowed_hosts(self) -> list[str]:
        """``allowed_hosts``, or the loopback names plus ``host`` (unless it is a wildcard address).

        IPv6 literals are bracketed as in a ``Host`` header (``[::1]``).
        """
        if self.allowed_hosts:
            return list(self.allowed_hosts)
        hosts = ["localhost", "127.0.0.1", "[::1]"]
        bind = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        if bind not in hosts and bind not in ("0.0.0.0", "[::]", ""):
            hosts.append(bind.lower())
        return hosts

    def allowed_models(self) -> list[str]:
        """The default model first, then the extra ``models``, without repeats."""
        out = [self.model]
        for name in self.models:
            if name not in out:
                out.append(name)
        return out
