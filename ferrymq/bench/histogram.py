"""Latency histograms: HdrHistogram (the ``hdrhistogram`` package) in microseconds, one per
timeline interval, merged for the measured window.

Why HDR: percentiles from a bounded, mergeable structure (3 significant digits, 1 µs to 10 min)
instead of keeping every sample: each generator process ships a few KiB of encoded histograms
to the parent, whatever the run's length. Why the package rather than our own: it is the
reference format (its encoded form reads in any HdrHistogram tool) and is maintained; recording
costs ~0.85 µs per sample here, a few % of a core at broker rates.
"""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 600_000_000  # 10 minutes
DIGITS = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


class IntervalHistograms:
    """Latency samples bucketed by the interval of their (intended) send time.

    Interval k covers ``[origin + k * interval, origin + (k+1) * interval)`` in monotonic ns,
    with the origin at the start of the measured window (warm-up intervals are negative)."""

    __slots__ = ("by_interval", "interval_ns", "origin_ns")

    def __init__(self, origin_ns: int, interval_ns: int) -> None:
        self.origin_ns = origin_ns
        self.interval_ns = interval_ns
        self.by_interval: dict[int, HdrHistogram] = {}

    def _hist(self, k: int) -> HdrHistogram:
        h = self.by_interval.get(k)
        if h is None:
            h = self.by_interval[k] = new_histogram()
        return h

    def record(self, now_ns: int, stamps: list[int]) -> None:
        """One sample per stamp: ``now - stamp`` (µs). A read's stamps usually share one
        interval, so the common case is one lookup per read."""
        if not stamps:
            return
        origin, iv = self.origin_ns, self.interval_ns
        k0 = (stamps[0] - origin) // iv
        if (stamps[-1] - origin) // iv == k0:
            rec = self._hist(k0).record_value
            for ts in stamps:
                rec(max(0, now_ns - ts) // 1000)
            return
        for ts in stamps:
            self._hist((ts - origin) // iv).record_value(max(0, now_ns - ts) // 1000)

    def record_many(self, stamp_ns: int, value_us: int, count: int) -> None:
        """``count`` samples of one value (e.g. a batch of publishes confirmed together)."""
        self._hist((stamp_ns - self.origin_ns) // self.interval_ns).record_value(max(0, value_us), count)

    def encode(self) -> dict[int, bytes]:
        """Compressed, picklable form for shipping to the parent process."""
        return {k: h.encode() for k, h in self.by_interval.items()}


def decode(encoded: dict[int, bytes]) -> dict[int, HdrHistogram]:
    return {k: HdrHistogram.decode(v) for k, v in encoded.items()}


def merge(parts: list[dict[int, HdrHistogram]], lo: int | None = None, hi: int | None = None) -> HdrHistogram:
    """One histogram of every interval k with lo <= k < hi (None: unbounded)."""
    total = new_histogram()
    for part in parts:
        for k, h in part.items():
            if (lo is None or k >= lo) and (hi is None or k < hi):
                total.add(h)
    return total


def by_interval(parts: list[dict[int, HdrHistogram]]) -> dict[int, HdrHistogram]:
    """Per-interval histograms merged across processes."""
    out: dict[int, HdrHistogram] = {}
    for part in parts:
        for k, h in part.items():
            if k not in out:
                out[k] = new_histogram()
            out[k].add(h)
    return out


def summary_ms(h: HdrHistogram) -> dict[str, Any]:
    """p50/p90/p99/p99.9/max (and min, mean) in ms; ``{"samples": 0}`` when empty."""
    n = h.get_total_count()
    if not n:
        return {"samples": 0}
    out: dict[str, Any] = {name: h.get_value_at_percentile(q) / 1000 for name, q in PERCENTILES.items()}
    out.update(max=h.get_max_value() / 1000, min=h.get_min_value() / 1000,
               mean=round(h.get_mean_value() / 1000, 3), samples=n)
    return out


def spectrum_ms(h: HdrHistogram, points: int = 40) -> list[list[float]]:
    """[percentile, ms] pairs from p0 to the max, spaced on 1 / (1 - q): the distribution plot."""
    if not h.get_total_count():
        return []
    out = []
    for i in range(points):
        q = 100.0 * (1.0 - 10 ** (-5.0 * i / (points - 1)))  # 0 .. 99.999
        out.append([round(q, 4), h.get_value_at_percentile(q) / 1000])
    out.append([100.0, h.get_max_value() / 1000])
    return out
