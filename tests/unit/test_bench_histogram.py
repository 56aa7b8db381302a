"""The bench's latency histograms (hdrhistogram in µs, one per interval): percentiles within HDR's
precision of the exact ones, intervals by send time, merging across processes via the encoded form."""

from __future__ import annotations

import itertools
import random

from ferrymq.bench import histogram as hist


def test_percentiles_agree_with_sorted_samples_within_the_precision():
    rng = random.Random(3)
    samples_us = [int(rng.lognormvariate(8, 1.2)) + 1 for _ in range(50_000)]  # ~3 ms, long tail
    ih = hist.IntervalHistograms(origin_ns=0, interval_ns=10**9)
    now = 10**8
    ih.record(now, [now - v * 1000 for v in samples_us])
    merged = hist.merge([hist.decode(ih.encode())])
    summary = hist.summary_ms(merged)
    ordered = sorted(samples_us)
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)):
        exact = ordered[int(q * len(ordered)) - 1] / 1000
        assert abs(summary[name] - exact) <= exact * 0.002 + 0.001, name
    assert summary["samples"] == 50_000
    assert abs(summary["max"] - ordered[-1] / 1000) <= ordered[-1] / 1000 * 0.002


def test_samples_land_in_the_interval_of_their_send_time_and_merge_by_interval():
    iv = 500_000_000
    a, b = hist.IntervalHistograms(0, iv), hist.IntervalHistograms(0, iv)
    a.record(2 * iv, [iv - 1, iv + 1])  # two intervals in one read
    b.record(2 * iv, [-1])  # warm-up: interval -1
    b.record_many(iv + 5, 250, 10)
    parts = [hist.decode(a.encode()), hist.decode(b.encode())]
    per = hist.by_interval(parts)
    assert {k: h.get_total_count() for k, h in per.items()} == {-1: 1, 0: 1, 1: 11}
    assert hist.merge(parts, 0, 2).get_total_count() == 12  # the window excludes the warm-up


def test_empty_histogram_reports_no_samples_and_spectrum_is_monotonic():
    assert hist.summary_ms(hist.new_histogram()) == {"samples": 0}
    h = hist.new_histogram()
    for v in range(1, 10_000):
        h.record_value(v)
    spec = hist.spectrum_ms(h)
    assert spec[-1][0] == 100.0
    assert all(x[1] <= y[1] for x, y in itertools.pairwise(spec))
