"""Terminal rendering of protocol events with ``rich``.

Progress (stage, pages or chunks done/total, elapsed, ETA) and each chunk summary
go to standard error; the final summary streams to standard output, so
``summarizer summarize book.pdf > summary.txt`` captures just the summary.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from .prompts import page_label
from .protocol import dump

__all__ = ["JsonRenderer", "RichRenderer"]

_STAGE_LABELS = {
    "extract": "Extracting pages",
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
                f"{event.chunks} chunks[/dim]"
            )
        elif kind == "chunk.summary" and self.show_chunks:
            header = Text(f"chunk {event.index + 1} ({page_label(*event.pages)})", style="bold cyan")
            self.console.print(header, Text(" " + event.text.strip()))
        elif kind == "collapse":
            self.console.print(
                f"[dim]collapse level {event.level}: {event.characters:,} characters of summaries "
                f"in {event.groups} groups[/dim]"
            )
        elif kind == "summary.token":
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
            self.console.print(f"[dim]done in {_seconds(event.elapsed_s)} · model calls: {calls}[/dim]")
        elif kind == "cancelled":
            self._stop_progress()
            self.console.print("[yellow]Cancelled.[/yellow]")
        elif kind == "error":
            self._stop_progress()
            self.console.print(f"[bold red]Error ({event.code}):[/bold red] {event.message}")

    def close(self) -> None:
        """Stop the live display (idempotent)."""
        self._stop_progress()


def _seconds(value: float) -> str:
    value = max(0.0, value)
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes}m{seconds:02d}s"
