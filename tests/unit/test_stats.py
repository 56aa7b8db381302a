"""Fixed-bucket histograms: an observation lands in the first bucket whose bound holds it (le)."""

from __future__ import annotations

from ferrymq.core.stats import Histogram


def test_observations_land_in_le_buckets_with_count_and_sum() -> None:
    h = Histogram((1, 5, 10))
    for v in (0, 1, 2, 5, 6, 10, 11, 1000):
        h.observe(v)
    counts, count, total = h.snapshot()
    assert counts == [2, 2, 2, 2]  # <=1, <=5, <=10, +Inf
    assert (count, total) == (8, 1035)


def test_snapshot_is_a_copy_and_reset_empties() -> None:
    h = Histogram((1,))
    h.observe(3)
    counts, _, _ = h.snapshot()
    h.observe(3)
    assert counts == [0, 1]
    h.reset()
    assert h.snapshot() == ([0, 0], 0, 0)
