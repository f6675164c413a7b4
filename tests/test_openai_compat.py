"""OpenAI and OpenAI-compatible servers, against the scripted fake on 127.0.0.1.

Each scripted fault of :mod:`tests.fake_openai` is checked for what the user
sees (events, final summary, error code, CLI exit status) and for how many
requests reached the provider. Retry delays are kept tiny through the
settings (``retry_base_s`` 0.01 s, ``retry_max_s`` 0.05 s, which also caps the
fake's ``Retry-After: 1``).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from summarizer.cli import EXIT_ERROR, main, running_server
from summarizer.errors import (
    AuthenticationFailed,
    ContextTooLong,
    ErrorCode,
    ModelError,
    ModelNotFound,
    ModelTimeout,
    ProviderUnavailable,
    RateLimited,
)
from summarizer.ingest.types import Chunk
from summarizer.models.loader import LOCAL_API_KEY, rate_limiter
from summarizer.models.retry import RetryPolicy, classify_error, is_context_overflow, parse_retry_after
from summarizer.pipeline import PipelineConfig, summarize_chunks
from summarizer.server import ModelRegistry
from summarizer.settings import Settings

from .fake_openai import FakeOpenAI, model_for
from .fakes import EchoModel

FAST: dict[str, Any] = {
    "max_retries": 3,
    "retry_base_s": 0.01,
    "retry_max_s": 0.05,
    "read_timeout_s": 3.0,
    "stall_timeout_s": 0.3,
}
FAULTS = [
    "ok",
    "429",
    "429-2",
    "500-1",
    "401",
    "404",
    "stall-1",
    "drop-1",
    "malformed-1",
    "ctx-1500",
    "poison",
]


# -- fixtures and helpers ---------------------------------------------------------------------


def sentences(tag: str, n: int) -> str:
    return " ".join(f"Sentence {i} of part {tag} reports a fact about topic {tag}{i}." for i in range(n))


def chunks_of(*texts: str) -> list[Chunk]:
    out, offset = [], 0
    for i, text in enumerate(texts):
        out.append(Chunk(i, text, offset, offset + len(text), 2 * i + 1, 2 * i + 2))
        offset += len(text)
    return out


async def aiter(chunks: list[Chunk]) -> AsyncIterator[Chunk]:
    for chunk in chunks:
        yield chunk


async def run(
    model: Any, chunks: list[Chunk], *, reduce_model: Any = None, **config: Any
) -> tuple[list[Any], BaseException | None]:
    """All events of a pipeline run, and the exception it ended with (or ``None``)."""
    cfg = PipelineConfig(**{"concurrency": 1, **FAST, **config})
    events: list[Any] = []
    try:
        async for event in summarize_chunks(aiter(chunks), model, config=cfg, reduce_model=reduce_model):
            events.append(event)
    except Exception as exc:
        return events, exc
    return events, None


def assert_token_invariant(events: list[Any]) -> None:
    """For every chunk, collapse group and the summary: tokens after the last restart join to its text."""
    for i, final in enumerate(events):
        if final.type not in ("chunk.summary", "collapse.summary", "summary"):
            continue
        texts: list[str] = []
        for event in events[:i]:
            kind = event.type.rsplit(".", 1)[-1]
            if _key(event) != _key(final) or kind not in ("token", "restart"):
                continue
            if kind == "restart":
                texts.clear()
            else:
                texts.append(event.text)
        assert "".join(texts) == final.text, (_key(final), texts, final.text)


def _key(event: Any) -> tuple[Any, ...] | None:
    if event.type.startswith("chunk."):
        return ("chunk", event.index)
    if event.type.startswith("collapse."):
        return ("collapse", event.level, event.group)
    if event.type == "summary" or event.type.startswith("summary."):
        return ("summary",)
    return None


def types(events: list[Any]) -> list[str]:
    return [e.type for e in events]


# -- the loader ---------------------------------------------------------------------------------


def test_loader_sets_timeouts_usage_and_no_sdk_retries(fake: FakeOpenAI) -> None:
    model = model_for(fake, "fake-ok", limiter=rate_limiter(5.0))
    assert model.max_retries == 0  # type: ignore[attr-defined]
    assert model.stream_usage is True  # type: ignore[attr-defined]
    timeout = model.request_timeout  # type: ignore[attr-defined]
    assert (timeout.connect, timeout.read) == (2.0, 3.0)
    assert model.rate_limiter is not None
    assert model.openai_api_base == fake.url  # type: ignore[attr-defined]


async def test_api_key_placeholder_and_real_key(fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    await model_for(fake, "fake-ok").ainvoke("<document>\nHello there.\n</document>")
    assert fake.requests[-1].authorization == f"Bearer {LOCAL_API_KEY}"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    await model_for(fake, "fake-ok").ainvoke("<document>\nHello there.\n</document>")
    assert fake.requests[-1].authorization == "Bearer sk-test-123"


async def test_non_streaming_json_answer_with_usage(fake: FakeOpenAI) -> None:
    message = await model_for(fake, "fake-ok").ainvoke(
        "Summarize in about 3 words.\n<document>\nAlpha beta gamma delta.\n</document>"
    )
    assert message.content == "Alpha beta gamma"
    assert message.usage_metadata is not None and message.usage_metadata["output_tokens"] == 3
    assert fake.requests[-1].stream is False


# -- faults, through the pipeline ---------------------------------------------------------------


async def test_normal_streaming_usage_and_cost(fake: FakeOpenAI) -> None:
    chunks = chunks_of(sentences("a", 10), sentences("b", 10), sentences("c", 10))
    prices = {"openai:fake-ok": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
    events, error = await run(model_for(fake, "fake-ok"), chunks, model_name="openai:fake-ok", prices=prices)
    assert error is None
    final = events[-1]
    assert final.type == "summary" and final.retries == 0 and final.missing_pages == []
    assert final.calls == {"map": 3, "collapse": 0, "reduce": 1}
    assert fake.count() == 4
    assert all(r.stream and r.include_usage for r in fake.requests)
    # Usage is what the provider reported, per call and in total, and priced.
    per_chunk = [e.usage for e in events if e.type == "chunk.summary"]
    assert all(u is not None and u.output_tokens == 12 for u in per_chunk)
    assert final.usage.input_tokens > sum(u.input_tokens for u in per_chunk)  # plus the reduce
    assert final.usage.total_tokens == final.usage.input_tokens + final.usage.output_tokens
    assert final.cost_usd == pytest.approx(
        final.usage.input_tokens * 1e-6 + final.usage.output_tokens * 2e-6, abs=1e-6
    )
    assert "chunk.restart" not in types(events)
    assert_token_invariant(events)


async def test_429_with_retry_after_then_success(fake: FakeOpenAI) -> None:
    began = time.monotonic()
    events, error = await run(model_for(fake, "fake-429-2"), chunks_of(sentences("a", 8)))
    assert error is None and events[-1].type == "summary"
    assert events[-1].retries == 2
    assert fake.count() == 4  # 2 × 429, the map call, the reduce
    assert "chunk.restart" not in types(events)  # nothing was streamed before the 429s
    assert time.monotonic() - began < 1.0  # Retry-After: 1 was capped by retry_max_s


async def test_429_until_the_retries_are_spent(fake: FakeOpenAI) -> None:
    _events, error = await run(model_for(fake, "fake-429"), chunks_of(sentences("a", 8)), strict=True)
    assert isinstance(error, RateLimited)
    assert error.code is ErrorCode.RATE_LIMITED and error.retryable
    assert "Gave up after 3 retries" in error.message and "Try again in 1 s" in error.message
    assert fake.count() == 4


async def test_500_then_success(fake: FakeOpenAI) -> None:
    events, error = await run(model_for(fake, "fake-500-1"), chunks_of(sentences("a", 8)))
    assert error is None and events[-1].retries == 1
    assert fake.count() == 3


@pytest.mark.parametrize(
    ("name", "error_type", "code"),
    [
        ("fake-401", AuthenticationFailed, ErrorCode.AUTHENTICATION_FAILED),
        ("fake-404", ModelNotFound, ErrorCode.MODEL_NOT_FOUND),
    ],
)
async def test_auth_and_unknown_model_fail_at_once(
    fake: FakeOpenAI, name: str, error_type: type[Exception], code: ErrorCode
) -> None:
    # Not strict, several chunks: still fatal, without retries.
    events, error = await run(model_for(fake, name), chunks_of(sentences("a", 8), sentences("b", 8)))
    assert isinstance(error, error_type) and error.code is code and not error.retryable
    assert fake.count() == 1
    assert "chunk.failed" not in types(events) and "summary" not in types(events)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("fake-stall-1", "model_timeout"),
        ("fake-drop-1", "provider_unavailable"),
        ("fake-malformed-1", "model_error"),
    ],
)
async def test_mid_stream_failure_restarts_the_chunk(fake: FakeOpenAI, name: str, reason: str) -> None:
    events, error = await run(model_for(fake, name), chunks_of(sentences("a", 8)))
    assert error is None
    (restart,) = [e for e in events if e.type == "chunk.restart"]
    assert restart.index == 0 and restart.pages == (1, 2) and restart.attempt == 2
    assert restart.reason.startswith(reason)
    tokens = types(events)
    assert tokens.index("chunk.token") < tokens.index("chunk.restart") < tokens.index("chunk.summary")
    assert_token_invariant(events)
    assert events[-1].retries == 1 and fake.count() == 3


async def test_stall_until_the_retries_are_spent(fake: FakeOpenAI) -> None:
    began = time.monotonic()
    _events, error = await run(
        model_for(fake, "fake-stall"), chunks_of(sentences("a", 8)), strict=True, max_retries=1
    )
    assert isinstance(error, ModelTimeout) and error.code is ErrorCode.MODEL_TIMEOUT and error.retryable
    assert "stalled" in error.message
    assert fake.count() == 2
    assert time.monotonic() - began < 1.5  # 2 × 0.3 s stall timeout, not the fake's 2 s silence


async def test_first_token_timeout() -> None:
    _events, error = await run(
        EchoModel(delay_s=1.0), chunks_of(sentences("a", 3)), strict=True, read_timeout_s=0.1, max_retries=0
    )
    assert isinstance(error, ModelTimeout) and "no first token for 0.1 s" in error.message


async def test_context_overflow_splits_the_chunk(fake: FakeOpenAI) -> None:
    text = sentences("a", 40)
    assert 2000 < len(text) < 3000
    events, error = await run(model_for(fake, "fake-ctx-1500"), chunks_of(text))
    assert error is None
    (summary,) = [e for e in events if e.type == "chunk.summary"]
    first, second = summary.text.split("\n\n")
    assert first.startswith("Sentence 0 of part a") and second.startswith("Sentence ")
    assert "chunk.restart" not in types(events)  # the 400 came before any token
    assert_token_invariant(events)
    assert fake.count() == 4  # rejected, two halves, the reduce
    assert events[-1].calls == {"map": 2, "collapse": 0, "reduce": 1}


async def test_context_too_long_when_splitting_cannot_help(fake: FakeOpenAI) -> None:
    text = sentences("a", 40)
    events, error = await run(model_for(fake, "fake-ctx-50"), chunks_of(text), max_split_depth=2)
    assert isinstance(error, ContextTooLong) and error.code is ErrorCode.CONTEXT_TOO_LONG
    assert "halving it 2 times" in error.message
    assert fake.count() == 3  # the chunk, its first half, that half's first half
    assert [e.code for e in events if e.type == "chunk.failed"] == [ErrorCode.CONTEXT_TOO_LONG]


async def test_failed_chunk_is_left_out_and_named(fake: FakeOpenAI) -> None:
    chunks = chunks_of(
        sentences("a", 8), sentences("b", 4) + " POISON " + sentences("b", 4), sentences("c", 8)
    )
    events, error = await run(model_for(fake, "fake-poison"), chunks, max_retries=2)
    assert error is None
    (failed,) = [e for e in events if e.type == "chunk.failed"]
    assert failed.index == 1 and failed.pages == (3, 4) and failed.code == ErrorCode.PROVIDER_UNAVAILABLE
    final = events[-1]
    assert final.type == "summary" and final.missing_pages == [(3, 4)]
    assert final.calls == {"map": 2, "collapse": 0, "reduce": 1} and final.retries == 2
    assert fake.count() == 6  # 2 good chunks, 3 tries of the bad one, the reduce
    reduce_prompt = fake.requests[-1].prompt
    assert "pp. 3–4 could not be made" in reduce_prompt and "[pp. 1–2]" in reduce_prompt
    # Strict: the same failure ends the job.
    fake.reset()
    events, error = await run(model_for(fake, "fake-poison"), chunks, max_retries=2, strict=True)
    assert isinstance(error, ProviderUnavailable) and error.retryable
    assert "summary" not in types(events)


async def test_separate_reduce_model(fake: FakeOpenAI) -> None:
    events, error = await run(
        model_for(fake, "fake-500-1"),
        chunks_of(sentences("a", 8), sentences("b", 8)),
        reduce_model=model_for(fake, "fake-ok"),
        model_name="openai:fake-500-1",
        reduce_model_name="openai:fake-ok",
    )
    assert error is None and events[-1].model == "openai:fake-ok"
    assert fake.count("fake-500-1") == 3 and fake.count("fake-ok") == 1
    assert fake.requests[-1].model == "fake-ok"


async def test_rate_limiter_spaces_requests(fake: FakeOpenAI) -> None:
    model = model_for(fake, "fake-ok", limiter=rate_limiter(20.0))
    chunks = chunks_of(*(sentences(str(i), 3) for i in range(4)))
    _events, error = await run(model, chunks, concurrency=4)
    assert error is None
    arrivals = [r.at for r in fake.requests]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # 20 per second: one every 50 ms on average (the limiter looks every 25 ms).
    assert len(arrivals) == 5 and (arrivals[-1] - arrivals[0]) / 4 > 0.04, gaps
    # Never a burst: at most two arrivals in any 40 ms. Times are taken at the server, so one
    # request delayed on its way (a loaded machine: the first opens the connection) may land
    # right before the next; without the limiter all four chunk calls arrive at once.
    assert all(b - a > 0.04 for a, b in zip(arrivals, arrivals[2:], strict=False)), gaps


async def test_collapse_group_too_long_is_split() -> None:
    model = _Limited(words=40, max_doc=700)
    chunks = chunks_of(*(sentences(str(i), 12) for i in range(6)))
    events, error = await run(model, chunks, concurrency=2, reduce_budget_chars=1000, summary_words=30)
    assert error is None
    level1 = [e for e in events if e.type == "collapse.summary" and e.level == 1]
    assert level1 and any("\n\n" in e.text for e in level1)
    assert "collapse.restart" not in types(events)
    assert_token_invariant(events)


async def test_reduce_too_long_collapses_further() -> None:
    model = _Limited(words=40, max_doc=700)
    chunks = chunks_of(*(sentences(str(i), 12) for i in range(4)))
    events, error = await run(model, chunks, concurrency=2, summary_words=20)
    assert error is None
    kinds = types(events)
    assert kinds.index("summary.token") > kinds.index("collapse")  # the reduce was too long: collapse, retry
    assert_token_invariant(events)


class _Limited(EchoModel):
    """An echo model with a context window: longer documents raise OpenAI's error text."""

    max_doc: int = 700

    def _answer(self, messages: list[Any]) -> str:
        prompt = str(messages[-1].content)
        document = prompt.split("<document>\n", 1)[-1]
        if len(document) > self.max_doc:
            raise ValueError("This model's maximum context length is 175 tokens. Please reduce the length.")
        return super()._answer(messages)


# -- error classification -----------------------------------------------------------------------


def _status_error(cls: type[openai.APIStatusError], status: int, body: dict[str, Any], **headers: str) -> Any:
    import httpx2

    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    response = httpx2.Response(status, headers=headers, request=request)
    return cls(f"Error code: {status} - {body}", response=response, body=body)


def test_classify_openai_errors() -> None:
    limited = classify_error(
        _status_error(openai.RateLimitError, 429, {"code": "rate_limit_exceeded"}, **{"retry-after": "7"})
    )
    assert isinstance(limited, RateLimited) and limited.retryable and limited.retry_after_s == 7.0
    quota = classify_error(_status_error(openai.RateLimitError, 429, {"code": "insufficient_quota"}))
    assert isinstance(quota, RateLimited) and not quota.retryable
    ctx = classify_error(
        _status_error(openai.BadRequestError, 400, {"code": "context_length_exceeded", "message": "x"})
    )
    assert isinstance(ctx, ContextTooLong)
    vllm = _status_error(
        openai.BadRequestError, 400, {"message": "This model's maximum context length is 4096 tokens."}
    )
    assert isinstance(classify_error(vllm), ContextTooLong)
    bad = classify_error(_status_error(openai.BadRequestError, 400, {"message": "temperature out of range"}))
    assert type(bad) is not ContextTooLong and bad.code is ErrorCode.MODEL_ERROR and not bad.retryable
    assert isinstance(
        classify_error(_status_error(openai.PermissionDeniedError, 403, {})), AuthenticationFailed
    )
    down = classify_error(_status_error(openai.InternalServerError, 503, {}, **{"retry-after-ms": "1500"}))
    assert isinstance(down, ProviderUnavailable) and down.retry_after_s == 1.5
    assert isinstance(classify_error(TimeoutError()), ModelTimeout)
    assert isinstance(classify_error(ConnectionResetError()), ProviderUnavailable)
    assert isinstance(classify_error(httpx.ReadTimeout("slow")), ModelTimeout)
    assert isinstance(classify_error(httpx.RemoteProtocolError("cut")), ProviderUnavailable)
    other = classify_error(RuntimeError("boom"))
    assert isinstance(other, ModelError) and other.code is ErrorCode.MODEL_ERROR and not other.retryable
    assert is_context_overflow("the request exceeds the available context size, try increasing it")


def test_retry_after_and_backoff() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert parse_retry_after({"retry-after": "soon"}) is None and parse_retry_after(None) is None
    policy = RetryPolicy(max_retries=5, base_s=1.0, max_s=10.0)
    assert [policy.delay(n, rng=lambda: 0.0) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert [policy.delay(n, rng=lambda: 1.0) for n in (1, 2, 5)] == [1.0, 2.0, 10.0]
    assert policy.delay(1, 4.0, rng=lambda: 0.0) == 4.0  # Retry-After is a minimum ...
    assert policy.delay(1, 60.0) == 10.0  # ... within max_s


def test_registry_offers_models_but_loads_the_reduce_model(fake: FakeOpenAI) -> None:
    registry = ModelRegistry(
        Settings(
            model="openai:fake-ok", reduce_model="openai:fake-big", base_url=fake.url, requests_per_second=2
        )
    )
    assert registry.names == ["openai:fake-ok"] and registry.reduce_name == "openai:fake-big"
    assert registry.load("openai:fake-big").rate_limiter is registry.limiter is not None
    with pytest.raises(ModelError) as info:
        registry.get("openai:fake-big")
    assert info.value.code is ErrorCode.UNKNOWN_MODEL


# -- through the server and the CLI -----------------------------------------------------------


@pytest.fixture(scope="module")
def summarizer_url(fake_server: FakeOpenAI) -> Iterator[str]:
    settings = Settings(
        model="openai:fake-ok",
        models=[f"openai:fake-{f}" for f in FAULTS],
        base_url=fake_server.url,
        max_retries=2,
        retry_base_s=0.01,
        retry_max_s=0.05,
        read_timeout_s=3.0,
        stall_timeout_s=0.3,
        prices={"openai:fake-ok": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}},
    )
    with running_server(settings) as url:
        yield url


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "report.txt"
    path.write_text(sentences("a", 40), encoding="utf-8")
    return path


def cli_events(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    status = main(["summarize", *args, "--json"])
    captured = capsys.readouterr()
    return status, [json.loads(line) for line in captured.out.splitlines() if line.strip()], captured.err


@pytest.mark.parametrize(
    ("fault", "status", "seen", "code", "requests"),
    [
        ("ok", 0, {"summary"}, None, 2),
        ("429-2", 0, {"summary"}, None, 4),
        ("429", EXIT_ERROR, set(), "rate_limited", 3),
        ("500-1", 0, {"summary"}, None, 3),
        ("401", EXIT_ERROR, set(), "authentication_failed", 1),
        ("404", EXIT_ERROR, set(), "model_not_found", 1),
        ("stall-1", 0, {"chunk.restart", "summary"}, None, 3),
        ("drop-1", 0, {"chunk.restart", "summary"}, None, 3),
        ("malformed-1", 0, {"chunk.restart", "summary"}, None, 3),
        ("ctx-1500", 0, {"summary"}, None, 4),
    ],
)
def test_cli_fault_table(
    fake: FakeOpenAI,
    summarizer_url: str,
    document: Path,
    capsys: pytest.CaptureFixture[str],
    fault: str,
    status: int,
    seen: set[str],
    code: str | None,
    requests: int,
) -> None:
    model = f"openai:fake-{fault}"
    got, events, _ = cli_events(capsys, str(document), "--url", summarizer_url, "--model", model)
    kinds = {e["type"] for e in events}
    assert got == status, events[-1]
    assert seen <= kinds
    assert fake.count() == requests
    final = events[-1]
    if code is None:
        assert final["type"] == "summary" and final["model"] == model
        assert final["usage"]["input_tokens"] > 0 and final["usage"]["output_tokens"] > 0
    else:
        assert final["type"] == "error" and final["code"] == code
        assert final["retryable"] is (code == "rate_limited")
    if fault == "429":
        assert "Try again in 1 s" in final["message"]


def test_cli_failed_chunk_rich_output(
    fake: FakeOpenAI, summarizer_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "three.txt"
    path.write_text(
        sentences("a", 8)
        + "\n\n"
        + sentences("b", 4)
        + " POISON "
        + sentences("b", 4)
        + "\n\n"
        + sentences("c", 8),
        encoding="utf-8",
    )
    args = [
        str(path),
        "--url",
        summarizer_url,
        "--model",
        "openai:fake-poison",
        "--chunk-size",
        "500",
        "--chunk-overlap",
        "0",
    ]
    status = main(["summarize", *args])
    captured = capsys.readouterr()
    assert status == 0
    assert "failed (provider_unavailable)" in captured.err
    assert "Missing from the summary" in captured.err and "2 retries" in captured.err
    assert "tokens:" in captured.err
    status, events, _ = cli_events(capsys, *args, "--strict")
    assert status == EXIT_ERROR and events[-1]["code"] == "provider_unavailable"


def test_cli_usage_and_cost(
    fake: FakeOpenAI, summarizer_url: str, document: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(
        ["summarize", str(document), "--url", summarizer_url, "--format", "bullets", "--language", "French"]
    )
    err = capsys.readouterr().err
    assert status == 0 and "tokens:" in err and "cost $0.0" in err
    reduce_prompt = fake.requests[-1].prompt
    assert 'starting with "- "' in reduce_prompt and "Write the summary in French." in reduce_prompt


def test_config_advertises_models(summarizer_url: str) -> None:
    config = httpx.get(
        summarizer_url.replace("ws://", "http://").replace("/ws", "/api/config"), timeout=5
    ).json()
    assert config["model"] == "openai:fake-ok" and "openai:fake-429" in config["models"]
    assert config["reduce_model"] is None


def test_dry_run_makes_no_request(
    fake: FakeOpenAI, document: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "SUMMARIZER_PRICES",
        json.dumps({"openai:gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}),
    )
    status = main(
        ["summarize", "--dry-run", str(document), "--model", "openai:gpt-4o-mini", "--chunk-size", "800"]
    )
    out = capsys.readouterr().out
    assert status == 0 and fake.count() == 0
    assert "map" in out and "reduce" in out and "total" in out and "Estimated cost: $" in out
    map_line = next(line for line in out.splitlines() if line.startswith("map"))
    assert int(map_line.split()[1]) >= 3  # calls
