"""The Starlette app: ``/ws`` (protocol v1), ``/healthz``, ``/api/config`` and the page at ``/``.

The ``/ws`` endpoint is a thin adapter between one socket and :class:`~summarizer.jobs.Job`:
frames in are parsed by :mod:`summarizer.protocol` and handed to the job; the
job's event log goes out, in ``seq`` order, through one sender task. Errors a
client causes become an ``error`` event; protocol violations then close the
socket with the matching :class:`~summarizer.errors.CloseCode`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, MutableMapping
from typing import Any

from langchain_core.language_models import BaseChatModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .errors import CloseCode, ErrorCode, LimitExceeded, ModelError, ProtocolError, SummarizerError
from .ingest.types import IngestOptions
from .jobs import Job, JobLimits, JobStore
from .models import load_model
from .pipeline import PipelineConfig
from .protocol import PROTOCOL_VERSION, Cancel, End, Error, Start, Text, dump, parse_client
from .settings import Settings

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


class _Connection:
    """One WebSocket connection: at most one job at a time, sequential jobs allowed."""

    def __init__(self, websocket: WebSocket, app: Starlette) -> None:
        self.ws = websocket
        self.settings: Settings = app.state.settings
        self.store: JobStore = app.state.jobs
        self.models: ModelRegistry = app.state.models
        self.job: Job | None = None
        self.sender: asyncio.Task[None] | None = None

    def limits(self) -> JobLimits:
        s = self.settings
        return JobLimits(
            max_document_bytes=s.max_document_bytes,
            max_frame_bytes=s.max_frame_bytes,
            ack_window_bytes=s.ack_window_bytes,
            max_text_chars=s.max_text_chars,
            max_concurrency=max(s.concurrency, 16),
        )

    async def serve(self) -> None:
        await self.ws.accept()
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    await self.dispatch(message)
                except SummarizerError as exc:
                    await self.refuse(exc)
                    if exc.close_code is not None:
                        return
        except WebSocketDisconnect:
            return
        finally:
            await self.detach()

    async def dispatch(self, message: MutableMapping[str, Any]) -> None:
        data = message.get("bytes")
        if data is not None:
            if len(data) > self.settings.max_frame_bytes:
                raise _too_big(len(data), self.settings.max_frame_bytes)
            if job := self.current_job("binary frame"):
                job.feed_bytes(data)
            return
        raw = message.get("text") or ""
        if len(raw) > self.settings.max_frame_bytes:
            raise _too_big(len(raw), self.settings.max_frame_bytes)
        msg = parse_client(raw)
        if isinstance(msg, Start):
            await self.begin(msg)
        elif isinstance(msg, Text):
            if job := self.current_job("'text'"):
                job.feed_text(msg.text)
        elif isinstance(msg, End):
            if job := self.current_job("'end'"):
                job.end(msg.sha256)
        elif isinstance(msg, Cancel) and (job := self.current_job("'cancel'")):
            job.cancel()

    def current_job(self, what: str) -> Job | None:
        """The running job, or ``None`` when the last job already ended.

        The client cannot know at once that its job failed (say, on the first
        frame of a file that is not a PDF), so upload messages and ``cancel``
        for an ended job are dropped, not treated as a protocol violation.

        Raises:
            ProtocolError: ``unexpected_message`` if no job was ever started.
        """
        if self.job is None:
            raise ProtocolError(f"Unexpected {what}: send 'start' first.", code=ErrorCode.UNEXPECTED_MESSAGE)
        return None if self.job.finished else self.job

    async def begin(self, start: Start) -> None:
        if self.job is not None and not self.job.finished:
            raise ProtocolError(
                "'start' while a job is running on this connection; cancel it or wait for its end.",
                code=ErrorCode.UNEXPECTED_MESSAGE,
            )
        if start.protocol != PROTOCOL_VERSION:
            err = ProtocolError(
                f"Protocol version {start.protocol} is not supported; this server speaks {PROTOCOL_VERSION}.",
                code=ErrorCode.UNSUPPORTED_PROTOCOL,
            )
            err.close_code = CloseCode.UNSUPPORTED_DATA
            raise err
        s = self.settings
        if start.size is not None and start.size > s.max_document_bytes:
            raise LimitExceeded(
                f"The document is {start.size} bytes; this server accepts at most {s.max_document_bytes}.",
                code=ErrorCode.DOCUMENT_TOO_LARGE,
            )
        opts = start.options
        chunk_size = opts.chunk_size or s.chunk_size
        overlap = (
            opts.chunk_overlap if opts.chunk_overlap is not None else min(s.chunk_overlap, chunk_size // 2)
        )
        if overlap >= chunk_size:
            raise ProtocolError(
                f"options.chunk_overlap ({overlap}) must be smaller than chunk_size ({chunk_size}).",
                code=ErrorCode.INVALID_OPTION,
            )
        limits = self.limits()
        concurrency = min(opts.concurrency or s.concurrency, limits.max_concurrency)
        model_name, model = self.models.get(opts.model)
        job = Job(
            start,
            model=model,
            model_name=model_name,
            models=self.models.names,
            pipeline=PipelineConfig(
                concurrency=concurrency,
                map_words=s.map_words,
                summary_words=opts.summary_words or s.summary_words,
                reduce_budget_chars=s.reduce_budget_chars,
                max_collapse_levels=s.max_collapse_levels,
                model_name=model_name,
            ),
            ingest=IngestOptions(
                chunk_size=chunk_size,
                chunk_overlap=overlap,
                max_pages=s.pdf_max_pages,
                max_text_chars=s.max_text_chars,
                parse_timeout_s=s.parse_timeout_s,
                parse_memory_bytes=s.parse_memory_bytes,
            ),
            limits=limits,
        )
        self.store.add(job)
        self.job = job
        await self.stop_sender()
        self.sender = asyncio.create_task(self.send_events(job))
        job.run()

    async def send_events(self, job: Job) -> None:
        try:
            async for event in job.events():
                await self.ws.send_text(dump(event))
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The socket went away; the receive loop notices and cleans up.
            return

    async def stop_sender(self) -> None:
        if self.sender is not None:
            await self.sender
            self.sender = None

    async def refuse(self, exc: SummarizerError) -> None:
        """Report ``exc`` in-band, then close if it calls for it."""
        log.info("refusing client input: %s (%s)", exc.message, exc.code)
        if self.job is not None and not self.job.finished:
            self.job.fail(exc)
            await self.stop_sender()
        else:
            with contextlib.suppress(Exception):
                await self.ws.send_text(
                    dump(Error(job_id=self.job.id if self.job else None, code=exc.code, message=exc.message))
                )
        if exc.close_code is not None:
            with contextlib.suppress(Exception):
                await self.ws.close(code=int(exc.close_code), reason=str(exc.code))

    async def detach(self) -> None:
        """The socket is gone: cancel its job (jobs do not outlive connections yet)."""
        if self.job is not None:
            self.job.cancel()
            await self.job.wait()
            self.store.discard(self.job.id)
        if self.sender is not None:
            self.sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.sender
        if self.ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.ws.close(code=int(CloseCode.NORMAL_CLOSURE))


def _too_big(size: int, limit: int) -> LimitExceeded:
    err = LimitExceeded(
        f"A message of {size} bytes exceeds the frame limit of {limit} bytes; send smaller slices.",
        code=ErrorCode.FRAME_TOO_LARGE,
    )
    err.close_code = CloseCode.MESSAGE_TOO_BIG
    return err


def create_app(
    settings: Settings | None = None, *, models: Mapping[str, BaseChatModel] | None = None
) -> Starlette:
    """Build the ASGI app.

    Args:
        settings: Configuration; read from the environment when ``None``.
        models: Ready chat models by name, offered besides the configured ones
            (a name equal to ``settings.model`` replaces the default).

    Returns:
        A Starlette app serving ``/ws``, ``/healthz``, ``/api/config`` and ``web/`` at ``/``.
    """
    settings = settings or Settings()

    async def ws_endpoint(websocket: WebSocket) -> None:
        await _Connection(websocket, websocket.app).serve()

    async def healthz(request: Request) -> JSONResponse:
        jobs: JobStore = request.app.state.jobs
        return JSONResponse({"status": "ok", "jobs_running": jobs.running()})

    async def config(request: Request) -> JSONResponse:
        s: Settings = request.app.state.settings
        return JSONResponse(
            {
                "protocol": PROTOCOL_VERSION,
                "model": s.model,
                "models": s.allowed_models(),
                "chunk_size": s.chunk_size,
                "chunk_overlap": s.chunk_overlap,
                "summary_words": s.summary_words,
                "concurrency": s.concurrency,
                "max_document_bytes": s.max_document_bytes,
                "max_frame_bytes": s.max_frame_bytes,
                "ack_window_bytes": s.ack_window_bytes,
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await app.state.jobs.cancel_all()

    routes: list[Any] = [
        WebSocketRoute("/ws", ws_endpoint),
        Route("/healthz", healthz),
        Route("/api/config", config),
    ]
    if settings.web_dir.is_dir():
        routes.append(Mount("/", StaticFiles(directory=settings.web_dir, html=True), name="web"))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.settings = settings
    app.state.jobs = JobStore()
    app.state.models = ModelRegistry(settings, models)
    return app
