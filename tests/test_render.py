"""The terminal renderer, fed protocol events: bars, wrapping, labels, cost, escaping."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from summarizer.protocol import (
    ChunkFailed,
    ChunkRestart,
    ChunkSummary,
    Document,
    Error,
    JobWarning,
    Progress,
    Summary,
    SummaryToken,
)
from summarizer.render import RichRenderer


class Terminal(io.StringIO):
    """Standard output that says it is a terminal (so the summary streams)."""

    def isatty(self) -> bool:
        return True


def renderer(
    *, tty: bool = False, color: bool = False, width: int = 100
) -> tuple[RichRenderer, io.StringIO, io.StringIO]:
    err = io.StringIO()
    console = Console(
        file=err,
        width=width,
        color_system="standard" if color else None,
        force_terminal=color,
        highlight=False,
    )
    out: io.StringIO = Terminal() if tty else io.StringIO()
    return RichRenderer(out=out, err=console), out, err


def flat(text: str) -> str:
    """Output with ANSI codes removed and white space collapsed (rich wraps long lines)."""
    return " ".join(re.sub(r"\x1b\[[0-9;]*m", "", text).split())


def summary(text: str, **fields: object) -> Summary:
    return Summary(text=text, elapsed_s=1.0, model="extractive", calls={"map": 1, "reduce": 1}, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("tty", [False, True])
def test_reduce_bar_completes_with_the_summary(tty: bool) -> None:
    """Old code: 'Writing the summary 0/1' stayed on screen after the summary."""
    render, out, err = renderer(tty=tty)
    render(Progress(stage="map", done=2, total=2, elapsed_s=0.5))
    render(Progress(stage="reduce", done=0, total=1, elapsed_s=0.6))
    for piece in ("The summary ", "is here."):
        render(SummaryToken(text=piece))
    render(summary("The summary is here."))
    render.close()
    lines = [line for line in err.getvalue().splitlines() if "Writing the summary" in line]
    assert lines and "1/1" in lines[-1] and "0/1" not in lines[-1], err.getvalue()
    assert out.getvalue() == "The summary is here.\n"


def test_streamed_summary_is_word_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Old code wrote tokens as they came: the terminal broke words at its edge."""
    monkeypatch.setenv("COLUMNS", "30")
    render, out, _ = renderer(tty=True)
    text = (
        "Automatic summarization began with Luhn's frequency heuristics and grew into "
        "extractive ranking, then abstractive neural models.\n\nA second paragraph follows it."
    )
    # Tokens split mid-word, as a model streams them.
    for i in range(0, len(text), 7):
        render(SummaryToken(text=text[i : i + 7]))
    render(summary(text))
    lines = out.getvalue().rstrip("\n").split("\n")
    assert all(len(line) <= 30 for line in lines), lines
    assert len(lines) > 4
    assert out.getvalue().split() == text.split()  # no word was cut
    assert "" in lines  # the paragraph break is kept


def test_streaming_to_a_file_is_verbatim() -> None:
    render, out, _ = renderer(tty=False)
    text = "x" * 500 + " tail"
    render(SummaryToken(text=text))
    render(summary(text))
    assert out.getvalue() == text + "\n"


def test_chunk_summaries_are_labelled_with_index_total_and_pages() -> None:
    """Old code: 'chunk 3 (pp. 5–7)' without the total or a word on the order."""
    render, _, err = renderer()
    render(Document(pages=9, characters=9000, chunks=3))
    render(ChunkSummary(index=2, pages=(5, 7), text="Third part."))
    render(ChunkSummary(index=0, pages=(1, 2), text="First part."))
    text = flat(err.getvalue())
    assert "Chunk 3 of 3 · pp. 5–7" in text and "Chunk 1 of 3 · pp. 1–2" in text
    assert "as they finish, not in document order" in text
    assert text.index("Third part.") < text.index("First part.")


@pytest.mark.parametrize(
    ("cost", "shown", "hidden"),
    [(0.0, "free", "$0.0000"), (0.00002, "$0.00002", "$0.0000 "), (0.125, "$0.1250", "free")],
)
def test_cost_line(cost: float, shown: str, hidden: str) -> None:
    """Old code: 'cost $0.0000' for the free embedded model."""
    render, _, err = renderer()
    render(summary("S.", cost_usd=cost))
    text = flat(err.getvalue()) + " "
    assert shown in text and hidden not in text


@pytest.mark.parametrize("color", [False, True])
def test_unknown_total_is_not_shown_as_a_full_bar(color: bool) -> None:
    """Old code: 'Summarizing chunks ━━━━━━━━ 60/?' (a full bar) without colours."""
    render, _, err = renderer(color=color)
    render(Progress(stage="map", done=60, total=None, elapsed_s=3.0))
    render.close()
    lines = [line for line in err.getvalue().splitlines() if "Summarizing chunks" in line]
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", lines[-1])
    assert "60/?" in plain
    assert "━━━━━━━━━━" not in plain, plain


def test_known_total_comes_from_the_document_event() -> None:
    render, _, err = renderer()
    render(Progress(stage="map", done=1, total=None, elapsed_s=1.0))
    render(Document(pages=4, characters=4000, chunks=4))
    render(Progress(stage="map", done=2, total=None, elapsed_s=2.0))
    render.close()
    assert "2/4" in err.getvalue()


def test_server_text_is_not_markup() -> None:
    """Old code: '[/b]' in a message raised MarkupError; '[red]' vanished."""
    render, _, err = renderer()
    render(JobWarning(message="pages [red]3[/red] have no text"))
    render(ChunkRestart(index=0, pages=(1, 1), attempt=2, reason="provider said [/b]"))
    render(ChunkFailed(index=1, pages=(2, 2), code="model_error", message="[bold]x[/] [/i]"))  # type: ignore[arg-type]
    render(Error(code="model_error", message="closing tag [/b] here", job_id="a" * 32, seq=4))  # type: ignore[arg-type]
    render.notice("reason [/dim] from the network")
    text = flat(err.getvalue())
    for literal in (
        "pages [red]3[/red] have no text",
        "provider said [/b]",
        "[bold]x[/] [/i]",
        "closing tag [/b] here",
        "reason [/dim] from the network",
    ):
        assert literal in text, text


def test_error_wording_is_replaced_by_code() -> None:
    err = io.StringIO()
    render = RichRenderer(
        out=io.StringIO(),
        err=Console(file=err, width=200, color_system=None),
        reword=lambda code, message: (
            "Give the password with --password." if code == "encrypted_pdf" else message
        ),
    )
    render(Error(code="encrypted_pdf", message="send it in options.password", job_id="a" * 32, seq=3))  # type: ignore[arg-type]
    text = flat(err.getvalue())
    assert "--password" in text and "options.password" not in text
