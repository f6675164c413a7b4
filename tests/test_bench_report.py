"""The benchmark page says which sections a ``--merge`` run kept, and from which run."""

from __future__ import annotations

from bench.report import _kept


def test_kept_sections_are_named_with_their_own_run() -> None:
    meta = {
        "kept": {
            "quality": {"date": "2026-12-02 11:35 UTC", "commit": "a3833d5"},
            "peers": {"date": "2026-12-03 14:15 UTC", "commit": "cfbbda5"},
            "ocr": {"date": "2026-12-03 14:15 UTC", "commit": "cfbbda5"},
        }
    }
    assert _kept(meta) == (
        " Sections kept from earlier runs (`--merge`): `quality` on 2026-12-02 11:35 UTC (commit `a3833d5`);"
        " `ocr`, `peers` on 2026-12-03 14:15 UTC (commit `cfbbda5`)."
    )
    assert _kept({}) == "" and _kept({"kept": {}}) == ""
