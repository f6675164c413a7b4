"""An OpenAI-compatible model server on loopback with a fixed latency: the benchmarks' remote API.

``python -m bench.model_server --result PATH`` serves ``POST /v1/chat/completions``
on ``127.0.0.1`` (prints ``PORT <n>`` once listening) until its stdin closes.
Every streamed answer waits ``--first-token-s`` (default 0.3 s) for its first
token, then sends ``--tokens`` (60) tokens ``--token-delay-s`` (10 ms) apart on
an absolute schedule (like :class:`bench.latency_model.LatencyModel`, whose
deterministic answer it reuses: words of the prompt's ``<document>``), then a
usage chunk when ``stream_options.include_usage`` is set and ``[DONE]``.
``--stamp`` appends ``@<time.time()>`` to every token, so a client in another
process measures delivery delay. Non-streamed requests get the whole answer
after the same total time. ``GET /stats`` returns the calls served and the peak
in flight. The result file has the same figures and this process's CPU seconds.

It runs in its own process so that its CPU is not charged to the server or to
the client measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage

from . import openai_sse as sse
from .latency_model import LatencyModel
from .server_proc import _listen, _stop_on_stdin_eof

__all__ = ["main"]


class _Stats:
    def __init__(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.peak = 0


_ID = "chatcmpl-bench"
"""The ``id`` of every completion this server answers."""


def build_app(model: LatencyModel, stats: _Stats) -> Any:
    """The Starlette app answering chat completions with ``model``'s schedule and words."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    def words_for(body: dict[str, Any]) -> list[str]:
        messages = body.get("messages") or [{}]
        content = messages[-1].get("content", "")
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return model.answer([HumanMessage(content=str(content))])

    async def completions(request: Request) -> Response:
        began = time.monotonic()
        body = await request.json()
        name = str(body.get("model", ""))
        words = words_for(body)
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words),
            "total_tokens": prompt_tokens + len(words),
        }
        stats.calls += 1
        if not body.get("stream"):
            await asyncio.sleep(max(0.0, began + model.call_seconds - time.monotonic()))
            message = {"role": "assistant", "content": "".join(words)}
            return JSONResponse(
                {
                    "id": _ID,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": name,
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": usage,
                }
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        async def stream() -> AsyncIterator[str]:
            stats.in_flight += 1
            stats.peak = max(stats.peak, stats.in_flight)
            try:
                yield sse.chunk(_ID, name, {"role": "assistant", "content": ""})
                for index, word in enumerate(words):
                    due = began + model.first_token_s + index * model.token_delay_s
                    remaining = due - time.monotonic()
                    if remaining > 0:
                        await asyncio.sleep(remaining)
                    text = f"{word[:-1]}@{time.time():.6f} " if model.stamp else word
                    yield sse.chunk(_ID, name, {"content": text})
                yield sse.chunk(_ID, name, {}, "stop")
                if include_usage:
                    yield sse.usage_chunk(_ID, name, usage)
                yield sse.DONE
            finally:
                stats.in_flight -= 1

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def stats_route(request: Request) -> Response:
        return JSONResponse({"calls": stats.calls, "peak_in_flight": stats.peak})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/stats", stats_route, methods=["GET"]),
        ]
    )


async def _serve(args: argparse.Namespace) -> dict[str, Any]:
    import uvicorn

    model = LatencyModel(
        first_token_s=args.first_token_s,
        token_delay_s=args.token_delay_s,
        tokens=args.tokens,
        stamp=args.stamp,
    )
    stats = _Stats()
    server = uvicorn.Server(
        uvicorn.Config(build_app(model, stats), log_level="warning", lifespan="off", backlog=4096)
    )
    loop = asyncio.get_running_loop()

    def stop() -> None:
        server.should_exit = True

    _stop_on_stdin_eof(lambda: loop.call_soon_threadsafe(stop))
    loop.call_later(args.max_seconds, stop)
    sock = _listen()
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(3000):
        if server.started or serving.done():
            break
        await asyncio.sleep(0.01)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await serving
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"calls": stats.calls, "peak_in_flight": stats.peak, "cpu_s": usage.ru_utime + usage.ru_stime}


def main(argv: list[str] | None = None) -> int:
    """Serve until stdin closes, then write the result JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--result", required=True)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    parser.add_argument("--first-token-s", type=float, default=0.3)
    parser.add_argument("--token-delay-s", type=float, default=0.01)
    parser.add_argument("--tokens", type=int, default=60)
    parser.add_argument("--stamp", action="store_true")
    args = parser.parse_args(argv)
    result = asyncio.run(_serve(args))
    Path(args.result).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
