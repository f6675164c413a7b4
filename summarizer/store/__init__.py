"""Where jobs are kept: the :class:`JobStore` interface and its SQLite implementation."""

from __future__ import annotations

from .base import EventGap, EventRow, JobRecord, JobStore, LeaseLost, LogTaken, UploadRecord
from .sqlite import SqliteStore

__all__ = [
    "EventGap",
    "EventRow",
    "JobRecord",
    "JobStore",
    "LeaseLost",
    "LogTaken",
    "SqliteStore",
    "UploadRecord",
]
