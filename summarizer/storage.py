"""Compatibility shim: the store moved to :mod:`summarizer.store`.

``Storage`` is :class:`summarizer.store.SqliteStore` (used by ``cli.py`` and the benchmarks).
"""

from __future__ import annotations

from .store import JobRecord, SqliteStore, UploadRecord

Storage = SqliteStore

__all__ = ["JobRecord", "Storage", "UploadRecord"]
