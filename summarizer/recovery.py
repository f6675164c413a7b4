"""What a job restarted after a crash may skip: the pipeline's knowledge of its own event grammar.

A job's event log holds every model output already paid for (``chunk.summary``,
``collapse.summary``, ``chunk.failed``) and the calls that were cut off
(``chunk.started`` or ``collapse.token`` or ``summary.token`` without their
result). :class:`Recovery` reads a log once and gives the job:

* :attr:`Recovery.results`: outputs to hand to the pipeline (no model call, no events);
* :meth:`Recovery.restart_events`: ``chunk.restart`` / ``collapse.restart`` /
  ``summary.restart`` for each call cut off, to emit before the pipeline runs again;
* :meth:`Recovery.is_duplicate`: events the rerun produces that the log already
  has and that must not repeat (``document`` once per job, ``collapse`` once per level).

The module knows nothing about jobs, stores or sockets.
"""

from __future__ import annotations

from collections.abc import Iterable

from .pipeline import PriorResults
from .protocol import ChunkRestart, CollapseRestart, ServerEvent, SummaryRestart

__all__ = ["RESTART_REASON", "Recovery"]

RESTART_REASON = "The server restarted; this call runs again."
"""The ``reason`` of restart events announced after a recovery."""


class Recovery:
    """What a recovered job's log already holds, so it is neither paid for nor emitted twice.

    Attributes:
        results: Chunk and collapse summaries (and failed chunks) to reuse.
        open_chunks: Chunks started but not finished before the crash: index → (pages, attempt).
        open_collapses: Collapse groups cut off: (level, group) → (pages, attempt).
        open_summary: The attempt number of a reduce cut off mid-stream, or 0.
    """

    def __init__(self) -> None:
        self.results = PriorResults()
        self.open_chunks: dict[int, tuple[tuple[int, int], int]] = {}
        self.open_collapses: dict[tuple[int, int], tuple[tuple[int, int], int]] = {}
        self.open_summary = 0
        self._summary_attempt = 1
        self._chunk_attempts: dict[int, int] = {}
        self._collapse_attempts: dict[tuple[int, int], int] = {}
        self.document = False
        self.levels: set[int] = set()

    @classmethod
    def from_log(cls, events: Iterable[ServerEvent]) -> Recovery:
        """Read a job's committed events (in ``seq`` order) once."""
        plan = cls()
        for event in events:
            plan.observe(event)
        return plan

    def observe(self, event: ServerEvent) -> None:
        """Take one committed event into account."""
        if event.type == "chunk.started":
            self.open_chunks[event.index] = (event.pages, self._chunk_attempts.get(event.index, 1))
        elif event.type == "chunk.restart":
            self._chunk_attempts[event.index] = event.attempt
            pages = self.open_chunks.get(event.index, (event.pages, 1))[0]
            self.open_chunks[event.index] = (pages, event.attempt)
        elif event.type == "chunk.summary":
            self.open_chunks.pop(event.index, None)
            self.results.maps[event.index] = event.text
        elif event.type == "chunk.failed":
            self.open_chunks.pop(event.index, None)
            self.results.failed[event.index] = (str(event.code), event.message)
        elif event.type == "collapse":
            self.levels.add(event.level)
        elif event.type == "collapse.token":
            key = (event.level, event.group)
            self.open_collapses[key] = (event.pages, self._collapse_attempts.get(key, 1))
        elif event.type == "collapse.restart":
            self._collapse_attempts[(event.level, event.group)] = event.attempt
            self.open_collapses.pop((event.level, event.group), None)
        elif event.type == "collapse.summary":
            self.open_collapses.pop((event.level, event.group), None)
            self.results.collapses[(event.level, event.group)] = event.text
        elif event.type == "summary.token":
            self.open_summary = self._summary_attempt
        elif event.type == "summary.restart":
            self._summary_attempt = event.attempt
            self.open_summary = 0
        elif event.type == "document":
            self.document = True

    def restart_events(self) -> list[ServerEvent]:
        """Restart announcements for the calls cut off (``attempt``: the one that starts now).

        Calling it again returns nothing: the announced calls are no longer open.
        """
        out: list[ServerEvent] = []
        for index, (pages, attempt) in self.open_chunks.items():
            out.append(ChunkRestart(index=index, pages=pages, attempt=attempt + 1, reason=RESTART_REASON))
        for (level, group), (pages, attempt) in self.open_collapses.items():
            restart = CollapseRestart(
                level=level, group=group, pages=pages, attempt=attempt + 1, reason=RESTART_REASON
            )
            out.append(restart)
        if self.open_summary:
            out.append(SummaryRestart(attempt=self.open_summary + 1, reason=RESTART_REASON))
        self.open_chunks.clear()
        self.open_collapses.clear()
        self.open_summary = 0
        return out

    def is_duplicate(self, event: ServerEvent) -> bool:
        """Whether the rerun's ``event`` repeats one the log has (and must be dropped)."""
        if event.type == "document":
            seen, self.document = self.document, True
            return seen
        if event.type == "collapse":
            seen = event.level in self.levels
            self.levels.add(event.level)
            return seen
        return False
