"""Terminal rendering of protocol events with ``rich``.

Progress (stage, pages or chunks done/total, elapsed, ETA) and each chunk summary
go to standard error; the final summary streams to standard output when it is a
terminal, and is written once complete otherwise, so
``summarizer summarize book.pdf > summary.txt`` captures just the summary (a
retried reduce, ``summary.restart``, cannot leave a partial text in the file).
Retries, failed chunks, warnings, token usage and cost are reported on standard error.

On a terminal the streamed summary is word-wrapped to its width. Chunk summaries
come as they finish (not in document order), each labelled with its index, the
number of chunks and its pages. Text that comes from the server, the model
provider or a file name is never read as Rich markup.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from .protocol import dump

if TYPE_CHECKING:
    from .plan import CallEstimate

__all__ = ["JsonRenderer", "Reword", "RichRenderer", "format_cost", "print_estimate"]

Reword = Callable[[str, str], str]
"""``(error code, server message) -> message shown``: lets the CLI use its own wording."""


def page_label(first: int, last: int) -> str:
    """:func:`summarizer.prompts.page_label`, imported on first use.

    :mod:`summarizer.prompts` loads LangChain (~29 MiB): the CLI, which imports this
    module at start, does not pay for it while it parses a PDF (``--dry-run``).
    """
    from .prompts import page_label as label

    return label(first, last)


def pages_text(ranges: Iterable[Sequence[int]]) -> str:
    """:func:`summarizer.prompts.pages_text`, imported on first use (see :func:`page_label`)."""
    from .prompts import pages_text as text

    return text(ranges)


_STAGE_LABELS = {
    "extract": "Extracting pages",
    "ocr": "Reading scanned pages (OCR)",
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


class _Bar(ProgressColumn):
    """A bar that never looks full while the total is unknown.

    Rich draws an unknown total as a full-width pulse, which reads as "done"
    without colours (and in any frozen frame). Here a short block travels along
    a thin track instead.
    """

    def __init__(self, bar_width: int = 40) -> None:
        super().__init__()
        self.bar = BarColumn(bar_width=bar_width)
        self.bar_width = bar_width

    def render(self, task: Task) -> RenderableType:
        if task.total is not None:
            return self.bar.render(task)
        width = self.bar_width
        block = max(1, width // 8)
        span = width - block
        step = int(task.get_time() * 10) % (2 * span) if span else 0
        left = step if step <= span else 2 * span - step
        return Text.assemble(
            ("─" * left, "bar.back"), ("━" * block, "bar.pulse"), ("─" * (span - left), "bar.back")
        )


class _WordWrap:
    """Writes streamed text to a terminal, breaking lines between words only.

    A word is written once it is complete (white space follows, or :meth:`finish`);
    a word wider than the line is cut at the line's end.

    Args:
        out: The terminal.
        width: Line width (cells).
    """

    def __init__(self, out: TextIO, width: int) -> None:
        self.out = out
        self.width = max(10, width)
        self.column = 0
        self.space = ""
        self.word = ""

    def write(self, text: str) -> None:
        for char in text:
            if char == "\n":
                self._flush()
                self.out.write("\n")
                self.column, self.space = 0, ""
            elif char.isspace():
                self._flush()
                self.space += " " if char == "\t" else char
            else:
                self.word += char
        self.out.flush()

    def finish(self) -> None:
        """Write the last word."""
        self._flush()
        self.out.flush()

    def _flush(self) -> None:
        word, self.word = self.word, ""
        if not word:
            return
        need = cell_len(self.space) + cell_len(word)
        if self.column > 0 and self.column + need > self.width:
            self.out.write("\n")
            self.column, self.space = 0, ""
        text = self.space + word
        self.space = ""
        while cell_len(text) > self.width - self.column:  # a word longer than the line
            room = self.width - self.column
            cut = len(text)
            while cut > 1 and cell_len(text[:cut]) > room:
                cut -= 1
            self.out.write(text[:cut] + "\n")
            text, self.column = text[cut:], 0
        self.out.write(text)
        self.column += cell_len(text)


class RichRenderer:
    """Progress bars and chunk summaries on stderr, the final summary on stdout.

    Args:
        out: Where the final summary goes (default ``sys.stdout``).
        err: Console for progress and chunk summaries (default: stderr).
        show_chunks: Print each chunk summary as it completes (default ``True``).
        reword: Turns an error's code and server message into the message shown
            (default: the server's message as is).
    """

    def __init__(
        self,
        out: TextIO | None = None,
        err: Console | None = None,
        show_chunks: bool = True,
        reword: Reword | None = None,
    ) -> None:
        self.out = out or sys.stdout
        self.console = err or Console(stderr=True)
        self.show_chunks = show_chunks
        self.reword = reword
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            _Bar(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.started = False
        self.streaming = False
        self.chunks: int | None = None
        self.chunk_note = False
        self.wrap: _WordWrap | None = None
        isatty = getattr(self.out, "isatty", None)
        self.live_summary = bool(isatty is not None and isatty())

    def _task(self, stage: str) -> TaskID:
        if stage not in self.tasks:
            if not self.started:
                self.progress.start()
                self.started = True
            self.tasks[stage] = self.progress.add_task(_STAGE_LABELS.get(stage, stage), total=None, eta="")
        return self.tasks[stage]

    def _complete_bars(self) -> None:
        """Fill every bar: the job is past all its stages."""
        for task in self.progress.tasks:
            total = task.total if task.total is not None else task.completed
            self.progress.update(task.id, total=total, completed=total, eta="")

    def _stop_progress(self) -> None:
        if self.started:
            self.progress.stop()
            self.started = False

    def _chunk_label(self, index: int, pages: tuple[int, int]) -> str:
        of = f" of {self.chunks}" if self.chunks is not None else ""
        return f"Chunk {index + 1}{of} \u00b7 {page_label(*pages)}"

    def _message(self, code: str, message: str) -> str:
        return self.reword(code, message) if self.reword is not None else message

    def __call__(self, event: Any) -> None:
        kind = event.type
        if kind == "accepted":
            self.console.print(
                Text(
                    f"job {event.job_id} \u00b7 model {event.model} \u00b7 "
                    f"chunks of {event.chunk_size} chars \u00b7 {event.concurrency} map calls at once",
                    style="dim",
                )
            )
        elif kind == "progress":
            task = self._task(event.stage)
            eta = "" if event.eta_s is None else f"ETA {_seconds(event.eta_s)}"
            total = event.total
            if event.stage == "map":
                if total is None:
                    total = self.chunks  # known from ``document`` once the text is all cut
                else:
                    self.chunks = total
            self.progress.update(task, completed=event.done, total=total, eta=eta)
        elif kind == "document":
            self.chunks = event.chunks
            if "map" in self.tasks:
                self.progress.update(self.tasks["map"], total=event.chunks)
            self.console.print(
                Text(
                    f"document: {event.pages} pages, {event.characters:,} characters, {event.chunks} chunks"
                    + (f"; OCR: {pages_text(event.ocr_pages)}" if event.ocr_pages else ""),
                    style="dim",
                )
            )
        elif kind == "chunk.summary" and self.show_chunks:
            if not self.chunk_note:
                self.chunk_note = True
                self.console.print(
                    Text("Chunk summaries are shown as they finish, not in document order.", style="dim")
                )
            header = Text(self._chunk_label(event.index, event.pages), style="bold cyan")
            self.console.print(Text.assemble(header, "\n", event.text.strip()))
        elif kind == "chunk.failed":
            self.console.print(
                Text.assemble(
                    (f"{self._chunk_label(event.index, event.pages)} failed ({event.code}):", "bold red"),
                    " ",
                    self._message(event.code, event.message),
                )
            )
        elif kind in ("chunk.restart", "collapse.restart"):
            what = (
                self._chunk_label(event.index, event.pages)
                if kind == "chunk.restart"
                else f"Collapse group {event.group + 1} \u00b7 {page_label(*event.pages)}"
            )
            self.console.print(
                Text(f"{what}: retrying (attempt {event.attempt}) after {event.reason}", style="yellow")
            )
        elif kind == "summary.restart":
            if self.streaming:
                if self.wrap is not None:
                    self.wrap.finish()
                    self.wrap = _WordWrap(self.out, self.wrap.width)
                self.out.write("\n")
                self.out.flush()
            self.console.print(
                Text(
                    f"The summary starts again (attempt {event.attempt}) after {event.reason}"
                    + ("; disregard the text above." if self.streaming else "."),
                    style="yellow",
                )
            )
        elif kind == "collapse":
            self.console.print(
                Text(
                    f"collapse level {event.level}: {event.characters:,} characters of summaries "
                    f"in {event.groups} groups",
                    style="dim",
                )
            )
        elif kind == "warning":
            self.console.print(Text.assemble(("Warning:", "yellow"), " ", event.message))
        elif kind == "summary.token" and self.live_summary:
            if not self.streaming:
                self._complete_bars()  # the reduce writes below: every stage before it is done
                self._stop_progress()
                self.console.print("[bold green]Summary[/bold green]")
                self.streaming = True
                self.wrap = _WordWrap(self.out, shutil.get_terminal_size().columns)
            assert self.wrap is not None
            self.wrap.write(event.text)
        elif kind == "summary":
            self._complete_bars()
            self._stop_progress()
            if self.wrap is not None:
                self.wrap.finish()
            if not self.streaming:
                self.out.write(event.text)
            self.out.write("\n")
            self.out.flush()
            calls = ", ".join(f"{k} {v}" for k, v in event.calls.items())
            line = f"done in {_seconds(event.elapsed_s)} \u00b7 model {event.model} \u00b7 calls: {calls}"
            if event.retries:
                line += f" \u00b7 {event.retries} {'retry' if event.retries == 1 else 'retries'}"
            if event.usage is not None:
                line += f" \u00b7 tokens: {event.usage.input_tokens:,} in, {event.usage.output_tokens:,} out"
            if event.cost_usd is not None:
                cost = format_cost(event.cost_usd)
                line += f" \u00b7 {'cost ' if cost.startswith(('$', '<')) else ''}{cost}"
            self.console.print(Text(line, style="dim"))
            if event.missing_pages:
                self.console.print(
                    Text(
                        f"Missing from the summary: {pages_text(event.missing_pages)} (their chunks failed).",
                        style="yellow",
                    )
                )
        elif kind == "cancelled":
            self._stop_progress()
            self.console.print("[yellow]Cancelled.[/yellow]")
        elif kind == "error":
            self._stop_progress()
            self.console.print(
                Text.assemble(
                    (f"Error ({event.code}):", "bold red"), " ", self._message(event.code, event.message)
                )
            )

    def notice(self, message: str) -> None:
        """A one-line note for the user (reconnecting, cancelling); ``message`` is plain text."""
        self.console.print(Text(message, style="yellow"))

    def close(self) -> None:
        """Stop the live display (idempotent)."""
        self._stop_progress()


def format_cost(usd: float) -> str:
    """``"free"``, ``"$0.1250"`` or, below a hundredth of a cent, ``"$0.00002"``: never ``"$0.0000"``.

    Args:
        usd: A cost in US dollars (0 for the embedded model).
    """
    if usd <= 0:
        return "free"
    if usd >= 0.0001:
        return f"${usd:.4f}"
    if usd < 0.000001:
        return "< $0.000001"
    return f"${usd:.6f}".rstrip("0")


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
        Text(
            f"Dry run: {file}: {_count(estimate.pages, 'page')}, {estimate.characters:,} characters, "
            f"{_count(estimate.chunks, 'chunk')}; model {model}"
            + (f", reduce model {reduce_model}" if reduce_model != model else "")
        )
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
        console.print(f"Estimated cost: {escape(format_cost(cost))}")
    console.print(
        "Tokens are estimated as characters / 4 and summaries as long as asked; "
        "retries and splits of over-long texts are not included. No model was called."
    )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
