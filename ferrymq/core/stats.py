"""Fixed-bucket histograms and the turn stamp: what the core measures, as plain ints.

Why fixed buckets in a list: an observation is one bisect and two int additions, no object, and
the HTTP plane reads a snapshot at scrape time (Prometheus' cumulative buckets are built there).

Why a turn stamp: the time in queue needs an enqueue time per message, but a clock read per
message is too dear on the hot path. The shell sets ``Turn.ms`` (monotonic ms) once per read of a
connection's input (and the broker on each tick); every message enqueued meanwhile shares that
one int, stored in its queue entry's slot.
"""

from __future__ import annotations

from bisect import bisect_left

from ferrymq import limits


class Turn:
    """The current loop turn's monotonic time in ms, shared by everything enqueued in the turn."""

    __slots__ = ("ms",)

    def __init__(self, ms: int = 0) -> None:
        self.ms = ms


class Histogram:
    """Counts per bucket upper bound (inclusive, as Prometheus' ``le``), plus +Inf, count and sum.

    ``bounds`` are in the unit observed (ms, us, logs); Prometheus output scales them."""

    __slots__ = ("bounds", "buckets", "count", "sum")

    def __init__(self, bounds: tuple[int, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.sum = 0

    def observe(self, value: int) -> None:
        self.buckets[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value

    def snapshot(self) -> tuple[list[int], int, int]:
        """(per-bucket counts, count, sum): copied, so a reader sees one consistent state."""
        return list(self.buckets), self.count, self.sum

    def reset(self) -> None:
        self.buckets = [0] * (len(self.bounds) + 1)
        self.count = self.sum = 0


def time_in_queue() -> Histogram:
    return Histogram(limits.TIME_IN_QUEUE_BUCKETS_MS)


def fsync_latency() -> Histogram:
    return Histogram(limits.FSYNC_LATENCY_BUCKETS_US)


def commit_size() -> Histogram:
    return Histogram(limits.COMMIT_SIZE_BUCKETS)


def loop_lag() -> Histogram:
    return Histogram(limits.LOOP_LAG_BUCKETS_MS)
