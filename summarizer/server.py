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
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from .errors import ErrorCode, ModelError
from .jobs import JobManager
from .models import load_model
from .protocol import PROTOCOL_VERSION
from .session import Session
from .settings import Settings
from .storage import Storage

__all__ = ["ModelRegistry", "create_app"]

log = logging.getLogger(__name__)


class ModelRegistry:
    """Loads each allowed model once and hands it to jobs.

    Args:
        settings: Gives the allowed names (:meth:`Settings.allowed_models`) and ``base_url``.
        preloaded: Ready model instances by name (also allowed), e.g. for tests.
    """

    def __init__(self, settings: Settings, preloaded: Mapping[str, BaseChatModel] | None = None) -> None:
        self.settings = settings
        self.names = settings.allowed_models()
        self._loaded: dict[str, BaseChatModel] = dict(preloaded or {})
        self.names += [name for name in self._loaded if name not in self.names]

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
        if chosen not in self._loaded:
            self._loaded[chosen] = load_model(chosen, base_url=self.settings.base_url)
        return chosen, self._loaded[chosen]


def create_app(
    settings: Settings | None = None,
    *,
    models: Mapping[str, BaseChatModel] | None = None,
    storage: Storage | None = None,
) -> Starlette:
    """Build the ASGI app.

    Args:
        settings: Configuration; read from the environment when ``None``.
        models: Ready chat models by name, offered besides the configured ones
            (a name equal to ``settings.model`` replaces the default).
        storage: Where jobs are kept; default: :class:`Storage` in
            ``settings.resolved_data_dir()``. The app closes it on shutdown.

    Returns:
        A Starlette app serving ``/ws``, ``/healthz``, ``/api/config`` and ``web/`` at ``/``.
        On start-up it recovers unfinished jobs; on shutdown it stops running
        jobs without ending them, so that they continue after a restart.
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

    async def expire(jobs: JobManager) -> None:
        while True:
            await asyncio.sleep(min(settings.job_ttl_s / 10, 600.0))
            removed = jobs.purge_expired()
            if removed:
                log.info("removed %d expired jobs", removed)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = storage or Storage(settings.resolved_data_dir())
        jobs = JobManager(
            store,
            lambda name: registry.get(name)[1],
            max_jobs=settings.max_jobs,
            ttl_s=settings.job_ttl_s,
        )
        app.state.jobs = jobs
        jobs.purge_expired()
        jobs.recover()
        expiry = asyncio.create_task(expire(jobs))
        try:
            yield
        finally:
            expiry.cancel()
            await jobs.shutdown()
            store.close()

    routes: list[Any] = [
        WebSocketRoute("/ws", ws_endpoint),
        Route("/healthz", healthz),
        Route("/api/config", config),
    ]
    if settings.web_dir.is_dir():
        routes.append(Mount("/", StaticFiles(directory=settings.web_dir, html=True), name="web"))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.settings = settings
    app.state.models = registry
    return app
