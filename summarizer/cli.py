"""Command line: ``summarizer serve`` and ``summarizer summarize FILE``.

Every flag has a ``SUMMARIZER_*`` env var twin (flag wins) and shows its default
in ``--help``. Call :func:`main` with an argument list to use it from Python or
tests; it returns the exit status instead of exiting.

Exit status of ``summarize``: 0 summary written, 1 the job failed (``error``
event), 3 the connection failed, 130 cancelled (Ctrl-C); 2 is a usage error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, get_args

import click

from .client import SummarizerClient, wire_filename
from .errors import TransportError
from .protocol import StartOptions
from .render import JsonRenderer, Reword, RichRenderer
from .settings import Settings

__all__ = ["EXIT_CANCELLED", "EXIT_ERROR", "EXIT_TRANSPORT", "main", "running_server"]

EXIT_ERROR = 1
EXIT_TRANSPORT = 3
EXIT_CANCELLED = 130

_FIELDS = Settings.model_fields
_OPTIONS = StartOptions.model_fields


def _choices(annotation: Any) -> list[str]:
    """The values of a ``Literal`` annotation, or of ``Literal[...] | None``, for ``click.Choice``.

    The settings and the protocol's ``start.options`` own the lists; the CLI repeats none.
    """
    values: list[str] = []
    for arg in get_args(annotation):
        if isinstance(arg, str):
            values.append(arg)
        else:
            values.extend(_choices(arg))
    return values


def _setting(name: str, *flags: str, per_job: bool = False, **kwargs: Any) -> Callable[[Any], Any]:
    """A click option for the setting ``name``: its env var, description and default shown.

    With ``per_job`` the option is a job option sent in ``start``: unset, the
    server's own default applies (shown as such in the help).
    """
    field = _FIELDS[name]
    shown: bool | str = field.default is not None
    if per_job:
        shown = f"the server's; built in: {field.default}"
    return click.option(
        *flags,
        name,
        default=None if per_job else field.default,
        envvar=f"SUMMARIZER_{name.upper()}",
        show_envvar=True,
        help=field.description,
        show_default=shown,
        **kwargs,
    )


def _settings(**given: Any) -> Settings:
    try:
        return Settings(**{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise click.UsageError(f"Invalid setting: {exc}") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Streaming map-reduce document summarizer."""


@cli.command()
@_setting("host", "--host")
@_setting("port", "--port", type=int)
@_setting("model", "--model")
@_setting("concurrency", "--concurrency", type=int)
@_setting("base_url", "--base-url")
@_setting("reduce_model", "--reduce-model")
@_setting("requests_per_second", "--requests-per-second", type=float)
@_setting("strict", "--strict/--no-strict")
@_setting("log_level", "--log-level")
@_setting("data_dir", "--data-dir", type=click.Path(file_okay=False, path_type=Path))
@_setting("web_dir", "--web-dir", type=click.Path(file_okay=False, path_type=Path))
@_setting("redis_url", "--redis-url")
@_setting("openai_fast_path", "--openai-fast-path/--no-openai-fast-path")
@_setting(
    "model_http_client",
    "--model-http-client",
    type=click.Choice(_choices(_FIELDS["model_http_client"].annotation)),
)
def serve(**given: Any) -> None:
    """Run the server: the WebSocket API at /ws and the web page at /.

    Raises:
        click.ClickException: ``--redis-url`` is given and Redis does not answer (exit status 1).
    """
    import uvicorn

    from .server import create_app
    from .ws_protocol import uvicorn_options

    settings = _settings(**given)
    if settings.redis_url:
        _check_redis(settings.redis_url)
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        **uvicorn_options(settings),
    )


def _check_redis(url: str) -> None:
    """Fail fast, with a message that says what to do, when Redis at ``url`` does not answer."""
    from .store.redis import RedisStore, StoreUnavailable

    try:
        store = RedisStore(url, socket_timeout_s=5.0)
    except ImportError:  # pragma: no cover - the extra is missing
        raise click.ClickException(
            "--redis-url needs the redis package: pip install 'summarizer[redis]'."
        ) from None
    except ValueError as exc:  # a malformed URL
        raise click.ClickException(f"Invalid --redis-url / SUMMARIZER_REDIS_URL {url!r}: {exc}") from None
    try:
        store.ping()
    except StoreUnavailable as exc:
        raise click.ClickException(
            f"{str(exc).rstrip('.')}. Start Redis or fix SUMMARIZER_REDIS_URL / --redis-url; "
            "the server did not start."
        ) from None
    finally:
        store.close()


@contextlib.contextmanager
def running_server(settings: Settings, *, models: Mapping[str, Any] | None = None) -> Iterator[str]:
    """Run the app with uvicorn on a free 127.0.0.1 port in a background thread.

    Args:
        settings: Server configuration (``host``/``port`` are ignored). Jobs are
            kept in ``settings.data_dir`` if set, else in a temporary directory.
        models: Ready chat models by name, offered besides the configured ones.

    Yields:
        The server's WebSocket URL, e.g. ``ws://127.0.0.1:53127/ws``.

    Raises:
        RuntimeError: The server did not start within 30 seconds.
    """
    import uvicorn

    from .server import create_app
    from .ws_protocol import uvicorn_options

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    from .storage import Storage

    # Without an explicit data directory the in-process server keeps its jobs in
    # a temporary one: it lives as long as this one command.
    storage = None if settings.data_dir is not None else Storage(None)
    config = uvicorn.Config(
        create_app(settings, models=models, storage=storage),
        log_level="warning",
        **uvicorn_options(settings),
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="summarizer-server"
    )
    thread.start()
    try:
        for _ in range(3000):
            if server.started or not thread.is_alive():
                break
            threading.Event().wait(0.01)
        if not server.started:
            raise RuntimeError("The in-process server did not start.")
        yield f"ws://127.0.0.1:{port}/ws"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--url", default=None, help="Server WebSocket URL; without it a server runs in-process on 127.0.0.1."
)
@_setting("model", "--model", per_job=True)
@_setting("chunk_size", "--chunk-size", type=int, per_job=True)
@_setting("chunk_overlap", "--chunk-overlap", type=int, per_job=True)
@_setting("concurrency", "--concurrency", type=int, per_job=True)
@_setting("summary_words", "--summary-words", type=int, per_job=True)
@click.option(
    "--length",
    type=click.Choice(_choices(_OPTIONS["length"].annotation)),
    default=None,
    help="Summary length: short (100 words), medium (250), long (600); --summary-words wins.",
)
@click.option(
    "--format",
    "format",
    type=click.Choice(_choices(_OPTIONS["format"].annotation)),
    default=None,
    help="Summary format: prose paragraphs or a bulleted list.",
)
@click.option("--language", default=None, help="Summary language, e.g. French (default: as the document).")
@click.option("--instructions", default=None, help="Extra instructions for the model (1,000 chars at most).")
@click.option(
    "--strict",
    is_flag=True,
    default=None,
    help="Fail if one chunk fails after its retries (default: summarize the rest, list the missing pages).",
)
@click.option(
    "--include-back-matter",
    is_flag=True,
    default=None,
    help="Also summarize notes, references, acknowledgements and the index (default: skip them).",
)
@_setting("base_url", "--base-url")
@_setting("reduce_model", "--reduce-model")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Only estimate model calls and tokens (characters / 4) and the cost; no server, no model call.",
)
@click.option("--password", default=None, help="Password of an encrypted PDF.")
@click.option(
    "--ocr",
    type=click.Choice(_choices(_OPTIONS["ocr"].annotation)),
    default=None,
    help="OCR of PDF pages: auto (pages without text that have images), off, or force (every page); "
    "default: the server's SUMMARIZER_OCR (auto).",
)
@click.option(
    "--ocr-languages",
    default=None,
    help="Tesseract language codes joined by +, e.g. eng+deu (default: SUMMARIZER_OCR_LANGUAGES, eng).",
)
@click.option(
    "--token", default=None, envvar="SUMMARIZER_TOKEN", show_envvar=True, help="The server's shared token."
)
@click.option("--json", "as_json", is_flag=True, help="Print every event as one JSON line instead.")
@click.option("--no-chunks", is_flag=True, help="Do not print the chunk summaries.")
def summarize(
    file: Path,
    url: str | None,
    token: str | None,
    as_json: bool,
    no_chunks: bool,
    dry_run: bool,
    **given: Any,
) -> int:
    """Summarize FILE (PDF, .txt or .md), streaming progress and the summary.

    Ctrl-C cancels the job (press twice to quit at once). If the connection
    drops, the client reconnects and resumes by itself.
    """
    try:
        # --base-url and --reduce-model configure the in-process server (and the dry run).
        server_side = {key: given.pop(key) for key in ("base_url", "reduce_model")}
        options = StartOptions(**{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise click.UsageError(f"Invalid option: {exc}") from None
    if dry_run:
        return _dry_run(file, options, _settings(model=options.model, **server_side))
    renderer = _renderer(as_json, no_chunks, password_given=options.password is not None)
    try:
        if url is not None:
            client = _client(url, token, renderer)
            return _follow(client, lambda: client.summarize_file(file, options=options), renderer)
        # The in-process server allows the requested model, with the env's defaults.
        settings = _settings(model=options.model, token=token, **server_side)
        with running_server(settings) as local_url:
            client = _client(local_url, token, renderer)
            return _follow(client, lambda: client.summarize_file(file, options=options), renderer)
    finally:
        renderer.close()


@cli.command()
@click.argument("job_id")
@click.option("--url", required=True, help="Server WebSocket URL, e.g. ws://127.0.0.1:8000/ws.")
@click.option("--last-seq", default=0, show_default=True, help="Replay only events after this seq.")
@click.option(
    "--token", default=None, envvar="SUMMARIZER_TOKEN", show_envvar=True, help="The server's shared token."
)
@click.option("--json", "as_json", is_flag=True, help="Print every event as one JSON line instead.")
@click.option("--no-chunks", is_flag=True, help="Do not print the chunk summaries.")
def resume(job_id: str, url: str, last_seq: int, token: str | None, as_json: bool, no_chunks: bool) -> int:
    """Re-open job JOB_ID (running or finished, until it expires) and follow it to its end."""
    renderer = _renderer(as_json, no_chunks, password_given=False)
    try:
        client = _client(url, token, renderer)
        return _follow(client, lambda: client.resume(job_id, last_seq), renderer)
    finally:
        renderer.close()


def _dry_run(file: Path, options: StartOptions, settings: Settings) -> int:
    """Print the estimated calls, tokens and cost of summarizing ``file``; no model is called."""
    from .errors import SummarizerError
    from .ingest import read_document
    from .ingest.types import IngestOptions

    ingest = IngestOptions.from_settings(settings, options)
    try:
        chunks = read_document(file, options=ingest)
    except SummarizerError as exc:
        reword = _reword(password_given=options.password is not None)
        click.echo(f"Error ({exc.code}): {reword(exc.code, exc.message)}", err=True)
        return EXIT_ERROR
    # Imported once the PDF workers are gone: the model-side modules (~16 MiB) do not
    # add to the process tree's peak while a book is parsed.
    from .models.pricing import cost_usd
    from .models.usage import TokenCount
    from .plan import PipelineConfig, estimate_calls
    from .render import print_estimate

    model = settings.model
    config = PipelineConfig.from_settings(settings, options, model_name=model)
    estimate = estimate_calls(chunks, config)
    reduce_model = config.reduce_model_name or model
    steps = estimate.steps
    mapped = TokenCount(
        steps["map"].input_tokens + steps["collapse"].input_tokens,
        steps["map"].output_tokens + steps["collapse"].output_tokens,
    )
    reduced = TokenCount(steps["reduce"].input_tokens, steps["reduce"].output_tokens)
    cost = cost_usd([(model, mapped), (reduce_model, reduced)], config.prices)
    print_estimate(estimate, file=wire_filename(file.name), model=model, reduce_model=reduce_model, cost=cost)
    return 0


def _reword(*, password_given: bool) -> Reword:
    """The CLI's wording for errors whose server message names a protocol field.

    The server speaks of ``options.password``; on the command line that is
    ``--password``. Other messages are shown as the server wrote them.
    """

    def reword(code: str, message: str) -> str:
        if code == "encrypted_pdf" and "options.password" in message:
            if password_given:
                return (
                    "The PDF is encrypted and the password given with --password does not open it; "
                    "check the password and try again."
                )
            return "The PDF is encrypted: give its password with --password."
        if code == "password_required" and "options.password" in message:
            return (
                "The server restarted, and it never stores PDF passwords: run the command again "
                "with --password."
            )
        return message

    return reword


def _renderer(as_json: bool, no_chunks: bool, *, password_given: bool) -> JsonRenderer | RichRenderer:
    if as_json:
        return JsonRenderer()  # the wire format, as the server sent it
    return RichRenderer(show_chunks=not no_chunks, reword=_reword(password_given=password_given))


def _client(url: str, token: str | None, renderer: JsonRenderer | RichRenderer) -> SummarizerClient:
    def on_reconnect(attempt: int, delay: float, reason: str) -> None:
        renderer.notice(f"{reason}; reconnecting in {delay:.1f} s (attempt {attempt})")

    return SummarizerClient(url, token=token, on_reconnect=on_reconnect)


def _follow(
    client: SummarizerClient, events: Callable[[], AsyncIterator[Any]], render: JsonRenderer | RichRenderer
) -> int:
    """Render a job's events until its end; returns the exit status."""

    async def run() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        presses = 0
        pending: set[asyncio.Task[None]] = set()

        def on_interrupt() -> None:
            nonlocal presses
            presses += 1
            if presses == 1 and client.job_id is not None:
                render.notice("Cancelling the job (Ctrl-C again to quit now)...")
                cancelling = loop.create_task(client.cancel())
                pending.add(cancelling)
                cancelling.add_done_callback(pending.discard)
            elif task is not None:
                task.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGINT, on_interrupt)
        status = EXIT_TRANSPORT
        try:
            async for event in events():
                render(event)
                if event.type == "summary":
                    status = 0
                elif event.type == "error":
                    status = EXIT_ERROR
                elif event.type == "cancelled":
                    status = EXIT_CANCELLED
        except asyncio.CancelledError:
            return EXIT_CANCELLED
        return status

    try:
        return asyncio.run(run())
    except TransportError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        return EXIT_TRANSPORT
    except KeyboardInterrupt:
        click.echo("Cancelled.", err=True)
        return EXIT_CANCELLED


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    try:
        result = cli.main(args=argv, prog_name="summarizer", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_CANCELLED
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
