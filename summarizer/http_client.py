"""The Python client's HTTP transport: ``POST /v1/jobs`` then Server-Sent Events, on ``httpx``.

Used by :meth:`summarizer.client.SummarizerClient.summarize_file` with
``transport="http"``, for places where a WebSocket cannot go (proxies,
serverless functions). It yields the very events of the WebSocket transport
(the models of :mod:`summarizer.protocol`), each once: when the event stream
drops, it reconnects with backoff and ``Last-Event-ID`` set to the last ``seq``
it has, so nothing is lost or repeated. ``docs/http.md`` documents the routes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import httpx

from .errors import ErrorCode, TransportError
from .protocol import TERMINAL_TYPES, Error, StartOptions, parse_server

__all__ = ["HttpJob", "http_base_url"]

log = logging.getLogger(__name__)


def http_base_url(url: str) -> str:
    """The HTTP base of a server from its WebSocket URL (``ws://h:p/ws`` → ``http://h:p``).

    An ``http(s)://`` URL is taken as the base itself (a trailing ``/`` dropped).
    """
    if url.startswith(("ws://", "wss://")):
        url = "http" + url[2:]
    return url.removesuffix("/").removesuffix("/ws")


class HttpJob:
    """One job over HTTP: upload with ``POST /v1/jobs``, follow ``/v1/jobs/{id}/events``.

    Args:
        base_url: The server's HTTP base, e.g. ``http://127.0.0.1:8000``.
        token: The server's shared token (sent as ``Authorization: Bearer``), if it needs one.
        open_timeout: Seconds to connect (default 10).
        reconnect_attempts: Reconnections of the event stream tried in a row (default 8).
        backoff_base_s: First backoff ceiling in seconds (default 0.5); doubles per
            attempt up to ``backoff_max_s`` (default 10), with full jitter.

    Attributes:
        job_id: The job's id once the server has accepted the upload.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        open_timeout: float = 10.0,
        reconnect_attempts: int = 8,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 10.0,
    ) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        # No read timeout: the event stream's keep-alive comments are not guaranteed to be frequent.
        self.timeout = httpx.Timeout(None, connect=open_timeout)
        self.reconnect_attempts = reconnect_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.job_id: str | None = None

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=self.timeout)

    async def summarize_file(
        self, path: str | Path, *, options: StartOptions | None = None
    ) -> AsyncIterator[Any]:
        """Upload the file at ``path`` and yield the job's events up to the terminal one.

        A refusal of the upload (bad options, too large, a bad token, ...) is
        yielded as one ``error`` event, as the WebSocket transport does.

        Raises:
            OSError: The file cannot be read.
            TransportError: The server is unreachable, or the event stream
                stayed unreachable through every reconnection attempt.
        """
        p = Path(path)
        opts = (options or StartOptions()).model_dump(mode="json", exclude_none=True)
        async with self._client() as http:
            with p.open("rb") as f:
                files: dict[str, tuple[str | None, IO[bytes] | str, str]] = {
                    "options": (None, json.dumps(opts), "application/json"),
                    "file": (p.name, f, "application/octet-stream"),
                }
                try:
                    response = await http.post("/v1/jobs", files=files)
                except httpx.TransportError as exc:
                    raise TransportError(f"Cannot upload to {self.base_url}: {exc}") from exc
            if response.status_code not in (200, 201):
                yield _refusal(response)
                return
            self.job_id = response.json()["job_id"]
            async for event in self._follow(http, self.job_id, 0):
                yield event

    async def resume(self, job_id: str, last_seq: int = 0) -> AsyncIterator[Any]:
        """Yield the events of ``job_id`` after ``last_seq``, then live ones, to the terminal event.

        Raises:
            TransportError: As for :meth:`summarize_file`, or the job is unknown.
        """
        self.job_id = job_id
        async with self._client() as http:
            async for event in self._follow(http, job_id, last_seq):
                yield event

    async def cancel(self) -> None:
        """Ask the server to cancel the job (``DELETE /v1/jobs/{id}``); no-op before it exists."""
        if self.job_id is None:
            return
        async with self._client() as http:
            try:
                await http.delete(f"/v1/jobs/{self.job_id}")
            except httpx.TransportError as exc:
                raise TransportError(f"Cannot cancel job {self.job_id}: {exc}") from exc

    async def _follow(self, http: httpx.AsyncClient, job_id: str, last_seq: int) -> AsyncIterator[Any]:
        attempt = 0
        while True:
            reason = "the event stream ended early"
            try:
                async with http.stream(
                    "GET", f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": str(last_seq)}
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        refusal = _refusal(response)
                        if refusal.code == ErrorCode.UNKNOWN_JOB:
                            raise TransportError(f"The server no longer has job {job_id}: {refusal.message}")
                        yield refusal
                        return
                    async for data in _sse_data(response):
                        event = parse_server(data)
                        attempt = 0
                        if event.seq <= last_seq:
                            continue  # already delivered (cannot happen with a correct server)
                        last_seq = event.seq
                        yield event
                        if event.type in TERMINAL_TYPES:
                            return
            except httpx.TransportError as exc:
                reason = f"the event stream was lost ({exc})"
            attempt += 1
            if attempt > self.reconnect_attempts:
                raise TransportError(
                    f"Gave up after {self.reconnect_attempts} reconnection attempts: {reason}."
                )
            delay = random.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1)))
            log.info("%s; reconnecting in %.2f s (attempt %d)", reason, delay, attempt)
            await asyncio.sleep(delay)


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The ``data`` of each Server-Sent Event of ``response`` (comments and other fields skipped)."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line == "":
            if data:
                yield "\n".join(data)
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def _refusal(response: httpx.Response) -> Any:
    """An HTTP error answer as the protocol's ``error`` event (``job_id`` unset)."""
    try:
        body = response.json()
        code = ErrorCode(body["code"])
        message = str(body.get("message", ""))
        retryable = bool(body.get("retryable", False))
    except (ValueError, KeyError, TypeError):
        code, message, retryable = (
            ErrorCode.INTERNAL_ERROR,
            f"HTTP {response.status_code}: {response.text[:200]}",
            response.status_code >= 500,
        )
    return Error(job_id=None, code=code, message=message, retryable=retryable)
