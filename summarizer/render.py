"""Terminal rendering of protocol events with ``rich``.

Progress (stage, pages or chunks done/total, elapsed, ETA) and each chunk summary
go to standard error; the final summary streams to standard output when it is a
terminal, and is written once complete otherwise, so
``summarizer summarize book.pdf > summary.txt`` captures just the summary (a
retried reduce, ``summary.restart``, cannot leave a partial text in the file).
Retries, failed chunks, token usage and cost are reported on standard error.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .prompts import page_label, pages_text
from .protocol import dump

if TYPE_CHECKING:
    from .pipeline import CallEstimate

__all__ = ["JsonRenderer", "RichRenderer", "print_estimate"]

_STAGE_LABELS = {
    "extract": "Extracting pages",
    "ocr": "OCR of scanned pages",
    "map": "Summarizing chunks",
    "collapse": "Collapsing summaries",
    "reduce": "Writing the summary",
}


class JsonRenderer:
    """Prints every event as one JSON line (the wire format) to ``out``."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def __call__(self, event: Any) -> None:
        self.out.write(dump(event) + "\n")
        self.out.flush()

    def notice(self, message: str) -> None:
        """A note for the user (on stderr, so stdout stays pure JSON lines)."""
        sys.stderr.write(message + "\n")

    def close(self) -> None:
        """Nothing to tear down."""


class RichRenderer:
    """Progress bars and chunk summaries on stderr, the final summary on stdout.

    Args:
        out: Where the final summary goes (default ``sys.stdout``).
        err: Console for progress and chunk summaries (default: stderr).
        show_chunks: Print each chunk summary as it completes (default ``True``).
    """

    def __init__(
        self, out: TextIO | None = None, err: Console | None = None, show_chunks: bool = True
    ) -> None:
        self.out = out or sys.stdout
        self.console = err or Console(stderr=True)
        self.show_chunks = show_chunks
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.started = False
        self.streaming = False
        isatty = getattr(self.out, "isatty", None)
        self.live_summary = bool(isatty is not None and isatty())

    def _task(self, stage: str) -> TaskID:
        if stage not in self.tasks:
            if not self.started:
                self.progress.start()
                self.started = True
            self.tasks[stage] = self.progress.add_task(_STAGE_LABELS.get(stage, stage), total=None, eta="")
        return self.tasks[stage]

    def _stop_progress(self) -> None:
        if self.started:
            self.progress.stop()
            self.started = False

    def __call__(self, event: Any) -> None:
        kind = event.type
        if kind == "accepted":
            self.console.print(
                f"[dim]job {event.job_id} · model {event.model} · chunks of {event.chunk_size} chars · "
                f"{event.concurrency} map calls at once[/dim]"
            )
        elif kind == "progress":
            task = self._task(event.stage)
            eta = "" if event.eta_s is None else f"ETA {_seconds(event.eta_s)}"
            self.progress.update(task, completed=event.done, total=event.total, eta=eta)
        elif kind == "document":
            self.console.print(
                f"[dim]document: {event.pages} pages, {event.characters:,} characters, "
                f"{event.chunks} chunks"
                + (f"; OCR: {pages_text(event.ocr_pages)}" if getattr(event, "ocr_pages", None) else "")
                + "[/dim]"
            )
        elif kind == "chunk.summary" and self.show_chunks:
            header = Text(f"chunk {event.index + 1} ({page_label(*event.pages)})", style="bold cyan")
            self.console.print(header, Text(" " + event.text.strip()))
        elif kind == "chunk.failed":
            self.console.print(
                f"[bold red]chunk {event.index + 1} ({page_label(*event.pages)}) failed "
                f"({event.code}):[/bold red] {event.message}"
            )
        elif kind in ("chunk.restart", "collapse.restart"):
            what = (
                f"chunk {event.index + 1}" if kind == "chunk.restart" else f"collapse group {event.group + 1}"
            )
            self.console.print(
                f"[yellow]{what} ({page_label(*event.pages)}): retrying (attempt {event.attempt}) "
                f"after {event.reason}[/yellow]"
            )
        elif kind == "summary.restart":
            if self.streaming:
                self.out.write("\n")
                self.out.flush()
            self.console.print(
                f"[yellow]The summary starts again (attempt {event.attempt}) after {event.reason}"
                + ("; disregard the text above." if self.streaming else ".")
                + "[/yellow]"
            )
        elif kind == "collapse":
            self.console.print(
                f"[dim]collapse level {event.level}: {event.characters:,} characters of summaries "
                f"in {event.groups} groups[/dim]"
            )
        elif kind == "summary.token" and self.live_summary:
            if not self.streaming:
                self._stop_progress()
                self.console.print("[bold green]Summary[/bold green]")
                self.streaming = True
            self.out.write(event.text)
            self.out.flush()
        elif kind == "summary":
            self._stop_progress()
            if not self.streaming:
                self.out.write(event.text)
            self.out.write("\n")
            self.out.flush()
            calls = ", ".join(f"{k} {v}" for k, v in event.calls.items())
            line = f"done in {_seconds(event.elapsed_s)} · model {event.model} · calls: {calls}"
            if event.retries:
                line += f" · {event.retries} {'retry' if event.retries == 1 else 'retries'}"
            if event.usage is not None:
                line += f" · tokens: {event.usage.input_tokens:,} in, {event.usage.output_tokens:,} out"
            if event.cost_usd is not None:
                line += f" · cost ${event.cost_usd:.4f}"
            self.console.print(f"[dim]{line}[/dim]")
            if event.missing_pages:
                self.console.print(
                    f"[yellow]Missing from the summary: {pages_text(event.missing_pages)} "
                    "(their chunks failed).[/yellow]"
                )
        elif kind == "cancelled":
            self._stop_progress()
            self.console.print("[yellow]Cancelled.[/yellow]")
        elif kind == "error":
            self._stop_progress()
            self.console.print(f"[bold red]Error ({event.code}):[/bold red] {event.message}")

    def notice(self, message: str) -> None:
        """A one-line note for the user (reconnecting, cancelling)."""
        self.console.print(f"[yellow]{message}[/yellow]")

    def close(self) -> None:
        """Stop the live display (idempotent)."""
        self._stop_progress()


def _seconds(value: float) -> str:
    value = max(0.0, value)
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}m{seconds:02d}s"


def print_estimate(
    estimate: CallEstimate,
    *,
    file: str,
    model: str,
    reduce_model: str,
    cost: float | None,
    out: TextIO | None = None,
) -> None:
    """Print a dry run's table: model calls and tokens per step, totals and cost.

    Args:
        estimate: From :func:`summarizer.pipeline.estimate_calls`.
        file: The document's name.
        model: The map/collapse model.
        reduce_model: The reduce model.
        cost: Estimated USD, or ``None`` if a model has no price.
        out: Where to print (default ``sys.stdout``).
    """
    console = Console(file=out or sys.stdout, highlight=False, soft_wrap=True)
    console.print(
        f"Dry run: {file}: {_count(estimate.pages, 'page')}, {estimate.characters:,} characters, "
        f"{_count(estimate.chunks, 'chunk')}; model {model}"
        + (f", reduce model {reduce_model}" if reduce_model != model else "")
    )
    table = Table(box=None, pad_edge=False)
    table.add_column("step")
    table.add_column("calls", justify="right")
    table.add_column("input tokens", justify="right")
    table.add_column("output tokens", justify="right")
    for name, step in estimate.steps.items():
        table.add_row(name, str(step.calls), f"{step.input_tokens:,}", f"{step.output_tokens:,}")
    total = estimate.total
    table.add_row(
        "total", str(total.calls), f"{total.input_tokens:,}", f"{total.output_tokens:,}", style="bold"
    )
    console.print(table)
    if estimate.collapse_levels:
        console.print(f"Collapse levels expected: {estimate.collapse_levels}.")
    if cost is None:
        console.print("Cost: unknown (no price for the model in SUMMARIZER_PRICES).")
    else:
        console.print(f"Estimated cost: ${cost:.4f}")
    console.print(
        "Tokens are estimated as characters / 4 and summaries as long as asked; "
        "retries and splits of over-long texts are not included. No model was called."
    )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
