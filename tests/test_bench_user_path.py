"""The user-path benchmark's critical path: list scheduling of equal calls with release times."""

from __future__ import annotations

import pytest

from bench.user_path import critical_path_s


def test_calls_wait_for_their_chunk_and_for_a_free_slot() -> None:
    # 4 chunks released at 0, 0, 0, 5 s; 2 slots; calls of 1 s; no collapse.
    limit = critical_path_s([0.0, 0.0, 0.0, 5.0], [], 2, 1.0)
    assert limit["map_end_s"] == pytest.approx(6.0)  # the last chunk starts when it exists
    assert limit["limit_s"] == pytest.approx(7.0)  # + the reduce


def test_collapse_levels_cost_rounds_of_c_calls() -> None:
    limit = critical_path_s([0.0] * 8, [5, 2], 4, 1.0)
    assert limit["map_end_s"] == pytest.approx(2.0)
    assert limit["collapse_rounds"] == 2 + 1
    assert limit["limit_s"] == pytest.approx(2.0 + 3 + 1)


def test_without_release_times_it_is_the_pure_pipeline_limit() -> None:
    limit = critical_path_s([0.0] * 27, [], 4, 0.9)
    assert limit["limit_s"] == pytest.approx(0.9 * (7 + 1))
