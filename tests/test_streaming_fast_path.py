"""The ChatOpenAI fast path of :mod:`summarizer.models.streaming` against the generic ``astream`` path.

A plain ``ChatOpenAI`` streams through the fast path (its own request and
client, the events parsed as plain JSON); any other chat model, or a
``ChatOpenAI`` with callbacks, a rate limiter or disabled streaming, through
LangChain's ``astream``. Both must stream the same text and usage and fail
with the same exceptions, against the scripted server of :mod:`tests.fake_openai`.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.prompt_values import PromptValue
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

from summarizer.models.loader import rate_limiter
from summarizer.models.retry import classify_error
from summarizer.models.streaming import fast_path_reason, open_stream
from summarizer.models.usage import TokenCount
from summarizer.pipeline import PipelineConfig, summarize_chunks

from .fake_openai import FakeOpenAI, model_for
from .fakes import EchoModel
from .test_openai_compat import aiter, chunks_of, sentences


def prompt() -> PromptValue:
    template = ChatPromptTemplate.from_messages(
        [("human", "Summarize in about 8 words.\n<document>\n{doc}\n</document>")]
    )
    return template.format_prompt(doc="one two three four five six seven eight nine ten")


async def collect(model: Any, *, fast: bool) -> tuple[list[str], TokenCount | None]:
    texts: list[str] = []
    usage: TokenCount | None = None
    async for text, counted in open_stream(model, prompt(), fast=fast):
        if text:
            texts.append(text)
        if counted is not None:
            usage = usage or TokenCount()
            usage.add(counted)
    return texts, usage


class _Tokens(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


def test_only_a_plain_chat_openai_takes_the_fast_path(fake: FakeOpenAI) -> None:
    model = model_for(fake)
    assert type(model) is ChatOpenAI and fast_path_reason(model) is None

    class Custom(ChatOpenAI):
        pass

    assert fast_path_reason(EchoModel()) is not None
    assert fast_path_reason(Custom(model="x", base_url=fake.url, api_key="k")) is not None
    assert "callback" in str(fast_path_reason(model.model_copy(update={"callbacks": [_Tokens()]})))
    limited = model_for(fake, limiter=rate_limiter(100.0))
    assert "rate limiter" in str(fast_path_reason(limited))
    assert "disabled" in str(fast_path_reason(model.model_copy(update={"disable_streaming": True})))


async def test_fast_path_streams_what_astream_streams(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = model_for(fake)
    generic = await collect(model, fast=False)

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the fast path must not go through ChatOpenAI._astream")

    monkeypatch.setattr(ChatOpenAI, "_astream", never)
    fast = await collect(model, fast=True)
    assert fast == generic
    texts, usage = fast
    assert "".join(texts) == "one two three four five six seven eight"
    assert usage is not None and usage.output_tokens == 8 and usage.input_tokens > 0
    assert fake.count() == 2 and all(r.stream and r.include_usage for r in fake.requests)


@pytest.mark.parametrize(
    "name",
    [
        "fake-401",
        "fake-404",
        "fake-429",
        "fake-500",
        "fake-ctx-5",
        "fake-malformed",
        "fake-drop",
        "fake-streamerr",
    ],
)
async def test_fast_path_fails_as_chat_openai_does(fake: FakeOpenAI, name: str) -> None:
    model = model_for(fake, name)
    errors: list[BaseException] = []
    for fast in (False, True):
        with pytest.raises(Exception) as caught:
            await collect(model, fast=fast)
        errors.append(caught.value)
    generic, fast_error = errors
    assert type(fast_error) is type(generic)
    a, b = classify_error(generic), classify_error(fast_error)
    assert (a.code, a.retryable, type(a)) == (b.code, b.retryable, type(b))


async def test_a_chat_openai_with_callbacks_sees_every_token(fake: FakeOpenAI) -> None:
    handler = _Tokens()
    model = model_for(fake).model_copy(update={"callbacks": [handler]})
    chunks = chunks_of(sentences("a", 5))
    events = [
        e async for e in summarize_chunks(aiter(chunks), model, config=PipelineConfig(token_coalesce_s=0))
    ]
    streamed = "".join(e.text for e in events if e.type in ("chunk.token", "summary.token"))
    assert events[-1].type == "summary"
    assert "".join(handler.tokens) == streamed  # the generic path: LangChain's callbacks ran


async def test_server_sent_events_are_split_as_the_sdk_splits_them() -> None:
    import openai

    from summarizer.models.streaming import _sse_data, _transport_errors

    class Stream:
        def __init__(self, pieces: tuple[bytes, ...]) -> None:
            self.pieces = pieces

        async def __aiter__(self) -> Any:
            for piece in self.pieces:
                yield piece

    class Response:
        """Raw transport stream when uncompressed, else ``aiter_bytes`` (here the same bytes)."""

        request = None

        def __init__(self, *pieces: bytes, encoding: str = "") -> None:
            self.headers = {"content-encoding": encoding} if encoding else {}
            self.stream = Stream(pieces)
            self.aiter_bytes = self.stream.__aiter__

    body = (
        b": keep-alive comment\n\n",
        b'data: {"a":',
        b' 1}\n\nevent: message\r\nid: 7\r\ndata: {"b": 2}\r\n\r\n',
        b"data: first line\ndata:second line\n\n",
        b"event: ping\n\n",
        b"data: [DONE]\n\n",
        b"data: unterminated",
    )
    for encoding in ("", "gzip"):
        got = [d async for d in _sse_data(Response(*body, encoding=encoding), *_transport_errors(), openai)]
        assert got == [b'{"a": 1}', b'{"b": 2}', b"first line\nsecond line", b"[DONE]"]


async def test_the_fast_path_sends_the_request_create_sends() -> None:
    """Skipping the SDK's parameter transformation changes nothing on the wire (URL, headers, body)."""
    import json

    from openai import _base_client

    from summarizer.models import streaming

    http = getattr(_base_client, "httpx2", None) or _base_client.httpx  # the SDK's HTTP library
    seen: list[Any] = []

    def handler(request: Any) -> Any:
        seen.append(request)
        body = b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n'
        return http.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    model = ChatOpenAI(
        model="m",
        base_url="http://fake.test/v1",
        api_key="sk-test",
        max_retries=0,
        stream_usage=True,
        http_async_client=http.AsyncClient(transport=http.MockTransport(handler)),
    )
    payload = model._get_request_payload(
        prompt(), stop=None, stream=True, stream_options={"include_usage": True}
    )
    for started in (model.async_client.create(**payload), streaming._create(model, payload)):
        stream = await started
        await stream.response.aread()
        await stream.response.aclose()
    sdk, ours = seen
    assert (ours.method, str(ours.url), json.loads(ours.content)) == (
        sdk.method,
        str(sdk.url),
        json.loads(sdk.content),
    )
    assert ours.headers["authorization"] == "Bearer sk-test"
    assert dict(ours.headers) == dict(sdk.headers)


@pytest.mark.parametrize("fast_path", [True, False])
async def test_the_fast_path_can_be_turned_off(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, fast_path: bool
) -> None:
    """``SUMMARIZER_OPENAI_FAST_PATH=false`` (``--no-openai-fast-path``): the pipeline streams
    every call through ``ChatOpenAI._astream``; on (the default), none."""
    from summarizer.cli import _settings
    from summarizer.ingest.types import Chunk
    from summarizer.pipeline import PipelineConfig, summarize_chunks

    settings = _settings(openai_fast_path=fast_path)
    assert settings.openai_fast_path is fast_path
    config = PipelineConfig.from_settings(settings, model_name="openai:fake-ok")
    calls = 0
    original = ChatOpenAI._astream

    async def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        async for chunk in original(self, *args, **kwargs):
            yield chunk

    monkeypatch.setattr(ChatOpenAI, "_astream", counting)

    async def chunks() -> Any:
        text = "The board met and agreed on the budget for the year."
        yield Chunk(index=0, text=text, start=0, end=len(text), first_page=1, last_page=1)

    events = [e async for e in summarize_chunks(chunks(), model_for(fake), config=config)]
    assert events[-1].type == "summary"
    assert (calls == 0) if fast_path else (calls == fake.count() >= 2)


async def test_many_streams_are_spread_over_pools_of_at_most_pool_streams(fake: FakeOpenAI) -> None:
    """On the SDK's httpx transport, 40 streams at once go over 3 connection pools (16 + 16 + 8),
    each sending the same request."""
    import asyncio

    from summarizer.models import streaming

    model = model_for(fake, http_client="httpx")
    results = await asyncio.gather(*(collect(model, fast=True) for _ in range(40)))
    assert all("".join(texts) == "one two three four five six seven eight" for texts, _ in results)
    pools = streaming._POOLS[model.root_async_client]
    assert len(pools.clients) == 3 and pools.streams == [0, 0, 0]
    assert pools.clients[0] is model.root_async_client
    assert len({id(client._client) for client in pools.clients}) == 3  # three connection pools
    assert all(str(c.base_url) == str(model.root_async_client.base_url) for c in pools.clients)
    # The root's TLS context is shared: making one per pool would load the CA file on the event loop.
    contexts = {id(c._client._transport._pool._ssl_context) for c in pools.clients}
    assert len(contexts) == 1
    assert fake.count() == 40 and all(r.stream and r.include_usage for r in fake.requests)
    assert len({(r.model, r.chars) for r in fake.requests}) == 1


async def test_a_given_http_client_is_never_spread(fake: FakeOpenAI) -> None:
    import asyncio

    import openai

    from summarizer.models import streaming

    model = model_for(fake)
    model.http_async_client = openai.DefaultAsyncHttpxClient()  # as if the user had given one
    await asyncio.gather(*(collect(model, fast=True) for _ in range(20)))
    assert model.root_async_client not in streaming._POOLS


# -- the HTTP transport: the SDK's aiohttp client by default, httpx on request -------------------


def _session(model: Any) -> Any:
    """The aiohttp ``ClientSession`` under ``model``'s async client (``None`` before its first request)."""
    return getattr(getattr(model.http_async_client, "_transport", None), "client", None)


_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


async def test_openai_models_stream_over_the_sdks_aiohttp_client_and_close_it(
    fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``load_model`` gives OpenAI-like models the SDK's aiohttp client (a third less CPU per
    token); ``aclose_model`` closes it; ``http_client="httpx"`` keeps the SDK's default."""
    import openai

    from summarizer.models.loader import aclose_model

    for variable in _PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    model = model_for(fake)
    assert isinstance(model.http_async_client, openai.DefaultAioHttpClient)
    texts, usage = await collect(model, fast=True)
    assert "".join(texts) == "one two three four five six seven eight" and usage is not None
    session = _session(model)
    assert session is not None and not session.closed  # the request went through aiohttp
    await aclose_model(model)
    assert session.closed
    await aclose_model(model)  # idempotent

    plain = model_for(fake, http_client="httpx")
    assert plain.http_async_client is None
    assert "".join((await collect(plain, fast=True))[0]) == "one two three four five six seven eight"
    await aclose_model(plain)  # nothing of ours to close: a no-op


def test_with_a_proxy_in_the_environment_auto_keeps_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp's transport ignores ``HTTPS_PROXY``; httpx honours it: ``auto`` keeps httpx
    there, and an explicit ``aiohttp`` is still obeyed."""
    from summarizer.models.loader import load_model

    for variable in _PROXY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("NO_PROXY", "localhost")  # not a proxy: aiohttp still
    assert load_model("openai:x", base_url="http://127.0.0.1:9/v1").http_async_client is not None
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert load_model("openai:x", base_url="http://127.0.0.1:9/v1").http_async_client is None
    forced = load_model("openai:x", base_url="http://127.0.0.1:9/v1", http_client="aiohttp")
    assert forced.http_async_client is not None


async def test_a_client_the_caller_gives_is_never_closed_by_us(fake: FakeOpenAI) -> None:
    import openai

    from summarizer.models.loader import aclose_model

    given = openai.DefaultAioHttpClient()
    model = model_for(fake, http_async_client=given)
    assert model.http_async_client is given
    await collect(model, fast=True)
    await aclose_model(model)
    assert not _session(model).closed  # the caller's to close
    await given.aclose()


@pytest.mark.parametrize(
    "name",
    ["fake-401", "fake-429", "fake-500", "fake-ctx-5", "fake-malformed", "fake-drop", "fake-streamerr"],
)
async def test_both_http_clients_fail_alike(fake: FakeOpenAI, name: str) -> None:
    """The same fault gives the same exception type, error code and retryability over
    aiohttp as over httpx (the SDK maps both transports' errors), on either path."""
    for fast in (True, False):
        errors: list[BaseException] = []
        for client in ("aiohttp", "httpx"):
            with pytest.raises(Exception) as caught:
                await collect(model_for(fake, name, http_client=client), fast=fast)
            errors.append(caught.value)
        over_aiohttp, over_httpx = errors
        assert type(over_aiohttp) is type(over_httpx), (fast, errors)
        a, b = classify_error(over_aiohttp), classify_error(over_httpx)
        assert (a.code, a.retryable, type(a)) == (b.code, b.retryable, type(b))


async def test_a_stall_past_the_read_timeout_is_a_timeout_over_aiohttp(fake: FakeOpenAI) -> None:
    """The read timeout reaches aiohttp (``sock_read``): a stream silent for longer fails as a
    retryable timeout, as over httpx."""
    from summarizer.errors import ErrorCode
    from summarizer.models.loader import load_model

    for client in ("aiohttp", "httpx"):
        model = load_model("openai:fake-stall", base_url=fake.url, read_timeout_s=0.5, http_client=client)
        with pytest.raises(Exception) as caught:
            await collect(model, fast=True)
        error = classify_error(caught.value)
        assert error.code is ErrorCode.MODEL_TIMEOUT and error.retryable, (client, caught.value)


async def test_the_registry_closes_the_clients_it_made_and_loads_again(fake: FakeOpenAI) -> None:
    """On shutdown the server closes its models' aiohttp sessions; a restarted lifespan (a new
    event loop) loads the model again rather than reuse a closed client."""
    from summarizer.server import ModelRegistry
    from summarizer.settings import Settings

    settings = Settings(_env_file=None, model="openai:fake-ok", base_url=fake.url)  # type: ignore[call-arg]
    registry = ModelRegistry(settings)
    model = registry.load("openai:fake-ok")
    await collect(model, fast=True)
    session = _session(model)
    await registry.aclose()
    assert session is not None and session.closed
    again = registry.load("openai:fake-ok")
    assert again is not model and "".join((await collect(again, fast=True))[0]).startswith("one two")
    await registry.aclose()

    httpx_registry = ModelRegistry(settings.model_copy(update={"model_http_client": "httpx"}))
    assert httpx_registry.load("openai:fake-ok").http_async_client is None


def test_a_job_on_another_model_never_imports_the_openai_sdk() -> None:
    """Telling the fast path apart must not import ``openai`` (0.5-0.7 s on the event
    loop at a fresh server's first model call) when the model is not ChatOpenAI."""
    import subprocess
    import sys

    script = (
        "import asyncio, sys\n"
        "from summarizer.models import ExtractiveChatModel\n"
        "from summarizer.pipeline import summarize_chunks\n"
        "from tests.test_pipeline import aiter_chunks, make_chunks\n"
        "async def main():\n"
        "    async for _ in summarize_chunks(aiter_chunks(make_chunks(2)), ExtractiveChatModel()):\n"
        "        pass\n"
        "asyncio.run(main())\n"
        "print('openai' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split()[-1] == "False", out.stdout + out.stderr
