"""The Starlette app: ``/ws`` (protocol v1), ``/healthz``, ``/api/config`` and the page at ``/``.

This module is the routing table and the app's lifetime (storage, job recovery
at start-up, expiry of old jobs). Each WebSocket is served by
:class:`~summarizer.session.Session`; jobs live in :class:`~summarizer.jobs.JobManager`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from .errors import ErrorCode, ModelError
from .ingest.pdf import prewarm as prewarm_pdf_worker
from .ingest.pdf import stop_prewarmed as stop_prewarmed_pdf_workers
from .jobs import JobManager
from .models import load_model
from .models.loader import rate_limiter
from .protocol import PROTOCOL_VERSION
from .session import Session
from .settings import Settings
from .store import JobStore, SqliteStore

__all__ = ["ModelRegistry", "create_app"]

log = logging.getLogger(__name__)


class ModelRegistry:
    """Loads each allowed model once and hands it to jobs.

    Real models get the settings' connect and read timeouts, no SDK retries (the
    pipeline retries) and one rate limiter shared by all of them
    (``requests_per_second``). Clients may pick among :attr:`names`; the reduce
    model (``settings.reduce_model``) is loaded for jobs but not offered.

    Args:
        settings: Gives the allowed names (:meth:`Settings.allowed_models`), the
            reduce model, ``base_url``, timeouts and the rate limit.
        preloaded: Ready model instances by name (also allowed), e.g. for tests.

    Attributes:
        names: Models clients may choose from, the default first.
        reduce_name: The reduce model's name, or ``None`` (each job's own model).
    """

    def __init__(self, settings: Settings, preloaded: Mapping[str, BaseChatModel] | None = None) -> None:
        self.settings = settings
        self.names = settings.allowed_models()
        self._loaded: dict[str, BaseChatModel] = dict(preloaded or {})
        self.names += [name for name in self._loaded if name not in self.names]
        self.reduce_name: str | None = settings.reduce_model or None
        self.limiter = rate_limiter(settings.requests_per_second)

    def get(self, name: str | None) -> tuple[str, BaseChatModel]:
        """The model called ``name`` (``None``: the default).

        Raises:
            ModelError: ``unknown_model`` if the name is not allowed or cannot load.
        """
        chosen = name or self.settings.model
        if chosen not in self.names:
            raise ModelError(
                f"Model {chosen!r} is not offered by this server; choose one of {self.names}.",
                code=ErrorCode.UNKNOWN_MODEL,
            )
        return chosen, self.load(chosen)

    def load(self, name: str) -> BaseChatModel:
        """The model ``name``, one of :attr:`names` or the reduce model (for jobs, not clients).

        Raises:
            ModelError: ``unknown_model`` if the name is neither, or cannot load.
        """
        if name not in self.names and name != self.reduce_name:
            raise ModelError(
                f"Model {name!r} is not offered by this server; choose one of {self.names}.",
                code=ErrorCode.UNKNOWN_MODEL,
            )
        if name not in self._loaded:
            s = self.settings
            self._loaded[name] = load_model(
                name,
                base_url=s.base_url,
                connect_timeout_s=s.connect_timeout_s,
                read_timeout_s=s.read_timeout_s,
                limiter=self.limiter,
            )
        return self._loaded[name]


def _prewarm_model(registry: ModelRegistry) -> None:
    """Load the default model now (SDK imports, HTTP client, TLS context), not on the first job.

    A model that cannot load is left to fail its first job with the specific error.
    """
    try:
        registry.load(registry.names[0])
    except Exception as exc:  # the first job reports it with its specific error
        log.warning("the default model did not load at start: %s", exc)


def create_app(
    settings: Settings | None = None,
    *,
    models: Mapping[str, BaseChatModel] | None = None,
    storage: JobStore | None = None,
) -> Starlette:
    """Build the ASGI app.

    Args:
        settings: Configuration; read from the environment when ``None``.
        models: Ready chat models by name, offered besides the configured ones
            (a name equal to ``settings.model`` replaces the default).
        storage: Where jobs are kept; default: :class:`~summarizer.store.SqliteStore` in
            ``settings.resolved_data_dir()``. The app closes it on shutdown.

    Returns:
        A Starlette app serving ``/ws``, ``/healthz``, ``/api/config`` and ``web/`` at ``/``.
        Requests whose ``Host`` is not in :meth:`Settings.resolved_allowed_hosts`
        get HTTP 400 (DNS-rebinding protection). On start-up it recovers
        unfinished jobs; on shutdown it stops running jobs without ending them,
        so that they continue after a restart.
    """
    settings = settings or Settings()
    registry = ModelRegistry(settings, models)

    async def ws_endpoint(websocket: WebSocket) -> None:
        state = websocket.app.state
        await Session(websocket, settings=state.settings, jobs=state.jobs, models=state.models).serve()

    async def healthz(request: Request) -> JSONResponse:
        jobs: JobManager = request.app.state.jobs
        return JSONResponse({"status": "ok", "jobs_running": jobs.running()})

    async def config(request: Request) -> JSONResponse:
        s: Settings = request.app.state.settings
        return JSONResponse(
            {
                "protocol": PROTOCOL_VERSION,
                "model": s.model,
                "models": registry.names,
                "reduce_model": registry.reduce_name,
                "chunk_size": s.chunk_size,
                "chunk_overlap": s.chunk_overlap,
                "summary_words": s.summary_words,
                "concurrency": s.concurrency,
                "max_document_bytes": s.max_document_bytes,
                "max_frame_bytes": s.max_frame_bytes,
                "ack_window_bytes": s.ack_window_bytes,
                "token_required": s.token is not None,
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = storage or SqliteStore(settings.resolved_data_dir())
        jobs = JobManager(
            store,
            registry.load,
            max_jobs=settings.max_jobs,
            ttl_s=settings.job_ttl_s,
            idle_s=settings.idle_timeout_s,
        )
        app.state.jobs = jobs
        await asyncio.to_thread(prewarm_pdf_worker, 1)  # the first PDF does not wait for a worker start
        await asyncio.to_thread(_prewarm_model, registry)  # nor for the provider SDK's imports
        jobs.purge_expired()
        jobs.recover()
        jobs.start(period_s=max(0.05, min(settings.job_ttl_s / 10, settings.idle_timeout_s / 4, 60.0)))
        try:
            yield
        finally:
            await jobs.shutdown()
            await asyncio.to_thread(stop_prewarmed_pdf_workers)
            store.close()

    routes: list[Any] = [
        WebSocketRoute("/ws", ws_endpoint),
        Route("/healthz", healthz),
        Route("/api/config", config),
    ]
    if settings.web_dir.is_dir():
        routes.append(Mount("/", StaticFiles(directory=settings.web_dir, html=True), name="web"))
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=settings.resolved_allowed_hosts())]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.settings = settings
    app.state.models = registry
    return app
