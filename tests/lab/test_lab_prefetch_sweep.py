"""Scenario 7, prefetch sweep, short form: a burst drained by three fast consumers and one slow one
at a small and a large prefetch; on FerryMQ and on RabbitMQ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ferrymq.lab.explain import n
from tests.support.lab import by_variant, run_short


def _check(run: dict[str, Any]) -> None:
    series = by_variant(run)
    text = " ".join(run["explanation"])
    for s in series.values():
        b = s["books"]
        assert b["confirmed"] == run["params"]["short_messages"] and b["lost"] == 0, s["name"]
        assert b["duplicates"] == 0, s["name"]
        rows = s["tables"]["consumers"]  # every receipt belongs to one consumer's share
        assert sum(r["processed"] for r in rows) == s["totals"]["received"]
        assert abs(sum(r["share_pct"] for r in rows) - 100.0) < 1.0
        assert all(0.0 <= r["idle_pct"] <= 100.0 for r in rows)
        assert {f"idle:{r['consumer']}" for r in rows} <= set(s["timeline"]["gauges"])  # the idle chart
        f = s["figures"]
        assert f"({n(f['throughput_per_s'])} msgs/s)" in text
        assert f"{f['max_share_consumer']} took the most, {n(f['max_share_pct'])} %" in text
    small, large = series["prefetch 1"]["figures"], series["prefetch 1000"]["figures"]
    # prefetch 1000 deals a quarter of the burst to each consumer, the slow one included: it hoards
    # far beyond its share by speed; prefetch 1 gives it one message at a time
    assert large["slow_share_pct"] > 5 * large["slow_fair_share_pct"]
    assert large["slow_share_pct"] > small["slow_share_pct"]
    sweep = run["series"][-1]["tables"]["sweep"]
    assert [r["prefetch"] for r in sweep] == [1, 1000]
    assert f"at prefetch 1,000 {large['max_share_consumer']} held {n(large['max_share_pct'])} %" in text


def test_prefetch_sweep_on_ferrymq_shows_the_slow_consumer_hoarding_at_a_large_prefetch(
        tmp_path: Path) -> None:
    _check(run_short("prefetch-sweep", ["ferrymq"], tmp_path, prefetch=[1, 1000]))


def test_prefetch_sweep_on_rabbitmq_shows_the_same_shape(tmp_path: Path, rabbitmq_url: str) -> None:
    _check(run_short("prefetch-sweep", [f"rabbitmq={rabbitmq_url}"], tmp_path, prefetch=[1, 1000]))
