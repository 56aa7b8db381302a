"""Scenario 5, burst and backpressure, short form: a producer ten times faster than the consumers
against a bounded queue, under block (nack and retry), drop-head and reject-publish; on FerryMQ and
on RabbitMQ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ferrymq.lab.explain import n
from tests.support.lab import by_variant, run_short


def _peak_depth(s: dict[str, Any]) -> float:
    return max((d for d in s["timeline"]["gauges"]["depth"] if d is not None), default=0)


def _check(run: dict[str, Any]) -> None:
    series = by_variant(run)
    text = " ".join(run["explanation"])
    for s in series.values():
        b, t = s["books"], s["totals"]
        assert b["confirmed"] > 0 and b["lost"] == t["dropped"], s["name"]  # only the policy drops
        assert b["duplicates"] == 0 and b["received_unconfirmed"] == 0, s["name"]
        assert _peak_depth(s) <= run["params"]["max_length"], s["name"]  # the bound holds
        assert f"the queue peaked at {_peak_depth(s):,} ready" in text
    drop, rej, blk = series["drop-head"], series["reject-publish"], series["block"]
    # drop-head confirms everything and drops the oldest; the paragraph says so, with the count
    assert drop["totals"]["dropped"] > 0 and drop["totals"]["publish_failed"] == 0
    assert drop["books"]["confirmed"] == drop["totals"]["sent"]
    assert f"{drop['totals']['dropped']:,} of them" in text and "by design" in text
    assert f"none lost beyond the {drop['totals']['dropped']:,} dropped by the queue's" in text
    # reject-publish nacks the excess: failed publishes, nothing confirmed lost
    assert rej["totals"]["publish_failed"] > 0 and rej["totals"]["dropped"] == 0
    assert f"{rej['totals']['publish_failed']:,} publishes were nacked" in text
    # block: nacks retried pace the producer: nothing fails, and it sends fewer than the one that gives up
    assert blk["totals"]["retried"] > 0 and blk["totals"]["publish_failed"] == 0
    assert blk["totals"]["sent"] < rej["totals"]["sent"]
    assert f"({blk['totals']['retried']:,} nacked attempts retried)" in text


def test_backpressure_on_ferrymq_bounds_the_queue_under_each_overflow_policy(tmp_path: Path) -> None:
    run = run_short("backpressure", ["ferrymq"], tmp_path, max_length=100)
    _check(run)
    text = " ".join(run["explanation"])
    for s in run["series"]:  # the lab-started broker's memory is sampled and quoted
        f = s["figures"]
        assert 0 < f["broker_rss_start_mib"] <= f["broker_rss_peak_mib"]
        assert f"a peak of {n(f['broker_rss_peak_mib'])} MiB" in text
        assert s["timeline"]["gauges"]["broker_rss_mib"]


def test_backpressure_on_rabbitmq_keeps_the_same_invariants(tmp_path: Path, rabbitmq_url: str) -> None:
    _check(run_short("backpressure", [f"rabbitmq={rabbitmq_url}"], tmp_path, max_length=100))
