"""The Starlette app: ``/ws`` (protocol v1), ``/healthz``, ``/api/config`` and the page at ``/``.

This module is the routing table and the app's lifetime (storage, job recovery
at start-up, expiry of old jobs). Each WebSocket is served by
:class:`~summarizer.session.Session`; jobs live in :class:`~summarizer.jobs.JobManager`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.rate_limiters import BaseRateLimiter
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from .errors import ErrorCode, ModelError
from .http_api import http_routes
from .ingest.pdf import prewarm as prewarm_pdf_worker
from .ingest.pdf import stop_prewarmed as stop_prewarmed_pdf_workers
from .jobs import JobManager
from .jobs.lease import LeaseKeeper, is_shared
from .models import load_model
from .models.loader import aclose_model, rate_limiter
from .models.tokenlimit import limit_tokens
from .protocol import PROTOCOL_VERSION
from .ratelimit import LocalTokenBucket, TokenBudget
from .session import ABORT_SCOPE_KEY, Session
from .settings import Settings
from .store import JobStore, SqliteStore
from .web_headers import SecurityHeaders

__all__ = ["ModelRegistry", "create_app"]

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]

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
        self.limiter = _limiter(settings)
        self.budget = _token_budget(settings, self.limiter)
        self._loaded: dict[str, BaseChatModel] = {
            name: self._limit_tokens(model) for name, model in (preloaded or {}).items()
        }
        self._made: dict[str, BaseChatModel] = {}  # loaded here: their HTTP clients are ours to close
        self.names += [name for name in self._loaded if name not in self.names]
        self.reduce_name: str | None = settings.reduce_model or None

    def _limit_tokens(self, model: BaseChatModel) -> BaseChatModel:
        """``model`` taking each call's tokens from :attr:`budget` first, if a budget is set."""
        if self.budget is None:
            return model
        return limit_tokens(model, self.budget, requests=self.limiter)

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
            model = load_model(
                name,
                base_url=s.base_url,
                connect_timeout_s=s.connect_timeout_s,
                read_timeout_s=s.read_timeout_s,
                limiter=None if self.budget is not None else self.limiter,
                http_client=s.model_http_client,
            )
            self._made[name] = model
            self._loaded[name] = self._limit_tokens(model)
        return self._loaded[name]

    async def aclose(self) -> None:
        """Close the HTTP clients of the models loaded here (not the preloaded ones); they
        load again, in the running event loop, when next asked for."""
        made, self._made = self._made, {}
        for name, model in made.items():
            self._loaded.pop(name, None)
            await aclose_model(model)


class _ConnectionControl:
    """Outermost ASGI middleware: bounds a WebSocket's send buffer and lets its session drop it.

    uvicorn's ``send`` is a method of its protocol object, which holds the
    transport. For each WebSocket this sets the kernel send buffer to
    ``send_buffer_bytes`` (what the server buffers for a client that does not
    read, besides the transport's 64 KiB high-water mark), and puts
    ``transport.abort`` in the scope under :data:`~summarizer.session.ABORT_SCOPE_KEY`:
    a client that neither reads nor answers the close handshake would otherwise
    keep its connection for the WebSocket library's close timeouts (tens of
    seconds). Under another ASGI server both are skipped.

    Args:
        app: The wrapped app.
        send_buffer_bytes: ``SO_SNDBUF`` for WebSocket connections (bytes), or ``None``.
    """

    def __init__(self, app: ASGIApp, send_buffer_bytes: int | None = None) -> None:
        self.app = app
        self.send_buffer_bytes = send_buffer_bytes

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is not None and hasattr(transport, "abort"):
                scope[ABORT_SCOPE_KEY] = transport.abort
                sock = transport.get_extra_info("socket")
                if self.send_buffer_bytes is not None and sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer_bytes)
        await self.app(scope, receive, send)


def _limiter(settings: Settings) -> BaseRateLimiter | None:
    """The request limiter: shared through Redis by every replica when ``redis_url`` is set,
    else one in memory (see :mod:`summarizer.ratelimit`). With Redis and a token limit, the
    limiter also holds the shared token budget (even without a request limit)."""
    if settings.redis_url and (settings.requests_per_second is not None or settings.tokens_per_minute):
        from .ratelimit import RedisRateLimiter

        return RedisRateLimiter(
            settings.redis_url, settings.requests_per_second, tokens_per_minute=settings.tokens_per_minute
        )
    return rate_limiter(settings.requests_per_second)


def _token_budget(settings: Settings, limiter: BaseRateLimiter | None) -> TokenBudget | None:
    """The ``tokens_per_minute`` budget: the Redis limiter's (shared by every replica), else a
    local one; ``None`` when unset."""
    if settings.tokens_per_minute is None:
        return None
    if isinstance(limiter, TokenBudget):
        return limiter
    return LocalTokenBucket(settings.tokens_per_minute)


def open_store(settings: Settings) -> JobStore:
    """The store ``settings`` select: Redis at ``redis_url`` if set, else SQLite in the data directory.

    Raises:
        StoreUnavailable: Redis does not answer (checked once, at start).
    """
    if settings.redis_url:
        from .store.redis import RedisStore

        store = RedisStore(settings.redis_url)
        store.ping()
        return store
    return SqliteStore(settings.resolved_data_dir())


def _page(web_dir: Path) -> Mount | Route:
    """The web page at ``/``, or, when ``web_dir`` holds no ``index.html``, a 404 that says why."""
    if (web_dir / "index.html").is_file():
        return Mount("/", StaticFiles(directory=web_dir, html=True), name="web")
    reason = (
        f"No web page: {web_dir} has no index.html. Point SUMMARIZER_WEB_DIR or "
        "'summarizer serve --web-dir' at the folder of the page (web/ in a checkout)."
    )
    log.warning("%s The API (/ws, /v1) works without it.", reason)

    async def missing(request: Request) -> PlainTextResponse:
        return PlainTextResponse(reason + "\n", status_code=404)

    return Route("/{path:path}", missing)


def _freeze_startup_heap() -> bool:
    """Collect garbage once, then exclude every surviving object from later collections.

    After start-up the heap holds the imported libraries (LangChain, the provider
    SDK, pydantic models...): hundreds of thousands of objects that live as long
    as the process. A full (oldest generation) collection walks them all, which
    stalls the event loop for 100-200 ms under load with 100 sessions
    (``bench.many_users``'s stall trace). :func:`gc.freeze` moves them to the
    permanent generation, so collections walk only the objects made since.

    Returns:
        ``True`` if it froze the heap, ``False`` if another app in this process
        already had (the heap stays frozen until the last one stops).
    """
    global _FROZEN_APPS
    _FROZEN_APPS += 1
    if _FROZEN_APPS > 1:
        return False
    gc.collect()
    gc.freeze()
    return True


def _unfreeze_heap() -> None:
    """Undo :func:`_freeze_startup_heap` once the last app that froze the heap stops."""
    global _FROZEN_APPS
    _FROZEN_APPS = max(0, _FROZEN_APPS - 1)
    if _FROZEN_APPS == 0:
        gc.unfreeze()


_FROZEN_APPS = 0
"""Apps of this process whose lifespan is running (they share one frozen heap)."""


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
    replica = settings.resolved_replica_id()

    async def ws_endpoint(websocket: WebSocket) -> None:
        state = websocket.app.state
        await Session(websocket, settings=state.settings, jobs=state.jobs, models=state.models).serve()

    async def healthz(request: Request) -> JSONResponse:
        jobs: JobManager = request.app.state.jobs
        body: dict[str, Any] = {"status": "ok", "replica": replica, "jobs_running": jobs.running()}
        ping = getattr(jobs.store, "ping", None)
        if ping is not None:  # a shared store (Redis): unreachable means this replica cannot serve
            try:
                await asyncio.to_thread(ping)
            except Exception as exc:
                body.update(status="unavailable", error=str(exc))
                return JSONResponse(body, status_code=503)
        return JSONResponse(body)

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
        store = storage or open_store(settings)
        jobs = JobManager(
            store,
            registry.load,
            max_jobs=settings.max_jobs,
            ttl_s=settings.job_ttl_s,
            idle_s=settings.idle_timeout_s,
            owner=replica,
            lease_s=settings.lease_s if is_shared(store) else None,
        )
        app.state.jobs = jobs
        # The first PDF does not wait for a worker start (nor a big one for its second worker).
        await asyncio.to_thread(prewarm_pdf_worker, settings.parse_workers)
        await asyncio.to_thread(_prewarm_model, registry)  # nor for the provider SDK's imports
        jobs.purge_expired()
        jobs.recover()
        jobs.start(period_s=max(0.05, min(settings.job_ttl_s / 10, settings.idle_timeout_s / 4, 60.0)))
        keeper = LeaseKeeper(jobs) if is_shared(store) else None
        if keeper is not None:  # several replicas: heartbeat, takeover of orphaned jobs, remote cancels
            keeper.start()
        app.state.lease_keeper = keeper
        _freeze_startup_heap()  # later full collections skip the start-up heap
        try:
            yield
        finally:
            if keeper is not None:
                await keeper.stop()
            await jobs.shutdown()
            await registry.aclose()
            await asyncio.to_thread(stop_prewarmed_pdf_workers)
            store.close()
            _unfreeze_heap()

    routes: list[Any] = [
        WebSocketRoute("/ws", ws_endpoint),
        Route("/healthz", healthz),
        Route("/api/config", config),
    ]
    routes += http_routes()
    routes.append(_page(settings.web_dir))
    middleware = [
        Middleware(_ConnectionControl, send_buffer_bytes=settings.send_buffer_bytes),
        Middleware(TrustedHostMiddleware, allowed_hosts=settings.resolved_allowed_hosts()),
        Middleware(SecurityHeaders),  # CSP and friends for the page (summarizer/web_headers.py)
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware)
    app.state.settings = settings
    app.state.models = registry
    return app
