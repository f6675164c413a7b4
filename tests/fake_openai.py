"""A scripted OpenAI-compatible server for tests: ``POST /v1/chat/completions`` on loopback.

It speaks enough of the Chat Completions API for ``langchain-openai``: JSON
answers, and with ``stream: true`` server-sent events (``data: {...}`` chunks,
a usage chunk when ``stream_options.include_usage`` is set, then ``data: [DONE]``).
The answer is the first words of the text between ``<document>`` and
``</document>`` (as many as the prompt's "about N words", at most ``max_words``),
streamed word by word; usage counts 4 characters per prompt token and one
token per answer word.

The **model name** picks the behaviour: ``fake-<fault>`` always, or
``fake-<fault>-<n>`` for the first ``n`` requests of that model name (counted
since the last :meth:`FakeOpenAI.reset`), normal answers after that:

===============  ===================================================================
fault            behaviour
===============  ===================================================================
``ok``           normal answer
``429``          HTTP 429 ``rate_limit_exceeded`` with ``Retry-After: 1``
``500``          HTTP 500
``401``          HTTP 401 ``invalid_api_key``
``404``          HTTP 404 ``model_not_found``
``stall``        two words, then silence for ``stall_s`` seconds, then the rest
``drop``         two words, then the connection is cut (no end of the chunked body)
``malformed``    two words, then a ``data:`` line that is not JSON
``streamerr``    two words, then a ``data:`` line with an ``error`` object (as OpenAI
                 reports a failure once the stream has begun)
``ctx``          ``fake-ctx-<chars>``: HTTP 400 ``context_length_exceeded`` whenever the
                 fenced document is longer than ``<chars>`` characters
``poison``       HTTP 500 whenever the prompt contains ``POISON``, else normal
===============  ===================================================================

Every request is recorded (:attr:`FakeOpenAI.requests`), so tests assert how
many calls the client made. Run it with :meth:`FakeOpenAI.running`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bench import openai_sse as sse

__all__ = ["FakeOpenAI", "Recorded"]

_DOC = re.compile(r"<document>\n(.*)\n</document>", re.S)
_WORDS = re.compile(r"\b(\d+) words\b")
_NAME = re.compile(r"^fake-([a-z0-9]+)(?:-(\d+))?$")


@dataclass(frozen=True)
class Recorded:
    """One request the fake received.

    Attributes:
        model: The ``model`` field.
        prompt: The last message's content.
        stream: Whether streaming was asked for.
        include_usage: ``stream_options.include_usage``.
        at: ``time.monotonic()`` on arrival (seconds).
        authorization: The ``Authorization`` header.
        chars: Characters of every message's content together.
        max_tokens: ``max_completion_tokens`` (or ``max_tokens``) asked for, if any.
    """

    model: str
    prompt: str
    stream: bool
    include_usage: bool
    at: float
    authorization: str
    chars: int = 0
    max_tokens: int | None = None


class FakeOpenAI:
    """The scripted server. ``url`` is its ``.../v1`` base URL once running.

    Args:
        stall_s: How long a ``stall`` fault stays silent (seconds).
        max_words: Most words in an answer.
    """

    def __init__(self, stall_s: float = 3.0, max_words: int = 12) -> None:
        self.stall_s = stall_s
        self.max_words = max_words
        self.requests: list[Recorded] = []
        self.url = ""
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.completions, methods=["POST"])])

    # -- bookkeeping -------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the recorded requests (and so restart every ``-<n>`` script)."""
        with self._lock:
            self.requests.clear()

    def count(self, model: str | None = None) -> int:
        """Requests received (for ``model`` only, if given)."""
        with self._lock:
            return sum(1 for r in self.requests if model is None or r.model == model)

    def _record(self, body: dict[str, Any], request: Request) -> tuple[int, Recorded]:
        messages = body.get("messages") or [{}]
        content = messages[-1].get("content", "")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        record = Recorded(
            model=str(body.get("model", "")),
            prompt=str(content),
            stream=bool(body.get("stream")),
            include_usage=bool((body.get("stream_options") or {}).get("include_usage")),
            at=time.monotonic(),
            authorization=request.headers.get("authorization", ""),
            chars=sum(len(str(m.get("content", ""))) for m in body.get("messages", [])),
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        )
        with self._lock:
            self.requests.append(record)
            return sum(1 for r in self.requests if r.model == record.model), record

    # -- the endpoint -------------------------------------------------------------------

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        number, record = self._record(body, request)
        model, prompt = record.model, record.prompt
        match = _NAME.match(model)
        if match is None:
            return _error(404, f"The model `{model}` does not exist.", "model_not_found")
        fault, n = match.group(1), match.group(2)
        found = _DOC.search(prompt)
        document = found.group(1) if found else prompt
        if fault == "ctx":
            if len(document) > int(n or 0):
                return _error(
                    400,
                    f"This model's maximum context length is {int(n or 0) // 4} tokens. However, your "
                    f"messages resulted in {len(prompt) // 4} tokens. "
                    "Please reduce the length of the messages.",
                    "context_length_exceeded",
                )
            fault = "ok"
        elif fault == "poison":
            fault = "500" if "POISON" in prompt else "ok"
        elif n is not None and number > int(n):
            fault = "ok"
        if fault == "429":
            return _error(
                429, "Rate limit reached for requests.", "rate_limit_exceeded", {"Retry-After": "1"}
            )
        if fault == "500":
            return _error(500, "The server had an error while processing your request.", None)
        if fault == "401":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        if fault == "404":
            return _error(404, f"The model `{model}` does not exist or you cannot use it.", "model_not_found")
        words = self._answer(prompt, document)
        usage = {
            "prompt_tokens": sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4,
            "completion_tokens": len(words),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(words)},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            self._stream(model, words, usage if include_usage else None, fault),
            media_type="text/event-stream",
        )

    def _answer(self, prompt: str, document: str) -> list[str]:
        asked = _WORDS.search(prompt.replace(document, ""))
        limit = min(int(asked.group(1)) if asked else self.max_words, self.max_words)
        words = document.split()[:limit]
        return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)] or [""]

    async def _stream(
        self, model: str, words: list[str], usage: dict[str, int] | None, fault: str
    ) -> AsyncIterator[str]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            return sse.chunk("chatcmpl-fake", model, delta, finish)

        yield chunk({"role": "assistant", "content": ""})
        for i, word in enumerate(words):
            if i == 2 and fault == "stall":
                await asyncio.sleep(self.stall_s)
            if i == 2 and fault == "drop":
                raise ConnectionAbortedError("scripted connection drop")
            if i == 2 and fault == "malformed":
                yield "data: {this is not json\n\n"
            if i == 2 and fault == "streamerr":
                error = {"message": "The server is overloaded.", "type": "server_error", "code": None}
                yield f"data: {json.dumps({'error': error})}\n\n"
                return
            yield chunk({"content": word})
            await asyncio.sleep(0)
        yield chunk({}, "stop")
        if usage is not None:
            yield sse.usage_chunk("chatcmpl-fake", model, usage)
        yield sse.DONE

    # -- running -------------------------------------------------------------------------

    @contextlib.contextmanager
    def running(self) -> Iterator[FakeOpenAI]:
        """Serve on a free 127.0.0.1 port in a background thread; sets :attr:`url`."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(self.app, log_level="critical", lifespan="off"))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="fake-openai"
        )
        thread.start()
        try:
            for _ in range(1000):
                if server.started or not thread.is_alive():
                    break
                time.sleep(0.01)
            if not server.started:
                raise RuntimeError("the fake OpenAI server did not start")
            self.url = f"http://127.0.0.1:{port}/v1"
            yield self
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()


def _error(
    status: int, message: str, code: str | None, headers: dict[str, str] | None = None
) -> JSONResponse:
    kind = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error"}.get(
        status, "server_error" if status >= 500 else "requests"
    )
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status_code=status,
        headers=headers,
    )


def model_for(fake: FakeOpenAI, name: str = "fake-ok", **kwargs: Any) -> Any:
    """A chat model of ours (``load_model("openai:NAME")``) talking to ``fake``.

    Args:
        fake: The running server.
        name: The model name, which picks the server's script (default ``"fake-ok"``).
        **kwargs: More :func:`summarizer.models.loader.load_model` arguments.

    Returns:
        The LangChain chat model (connect timeout 2 s, read timeout 3 s).
    """
    from summarizer.models.loader import load_model

    return load_model(
        f"openai:{name}", base_url=fake.url, connect_timeout_s=2.0, read_timeout_s=3.0, **kwargs
    )
