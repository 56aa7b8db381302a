"""Scenario 1, order processing, short form: queue mode and log mode side by side on FerryMQ, and
queue mode on RabbitMQ. The point of the scenario must be visible in the numbers: competing
consumers break per-customer order and keep nothing to replay; a partitioned log keeps per-key
order and a fresh group re-reads everything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ferrymq.lab.scenario import load
from tests.support.lab import run_short


def _modes(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"log" if "log mode" in s["name"] else "queue": s for s in run["series"]}


def _check_queue(s: dict[str, Any]) -> None:
    b, f = s["books"], s["figures"]
    assert b["confirmed"] > 0 and b["lost"] == 0, s["name"]  # acked delivery: nothing confirmed is lost
    assert b["duplicates"] <= 1, s["name"]  # at most the order the killed worker processed but had not acked
    assert f["replayable_messages"] == 0  # an acked message is gone from a queue
    assert f["ordering_violations"] > 0  # competing consumers with prefetch: per-customer order not kept
    assert any(e["kind"] == "restart" for e in s["events"])


def _check_explanation(run: dict[str, Any]) -> None:
    text = " ".join(run["explanation"])
    for s in run["series"]:
        f = s["figures"]
        assert f"{f['ordering_violations']:,} orders arrived after a later order" in text
        assert f"{f['replayable_messages']:,} " in text
        assert f"{s['name']}: {s['books']['confirmed']:,} messages confirmed, none lost" in text


def test_order_processing_queue_mode_loses_per_customer_order_and_log_mode_keeps_it(tmp_path: Path) -> None:
    run = run_short("order-processing", ["ferrymq", "ferrymq-kafka"], tmp_path)
    modes = _modes(run)
    _check_queue(modes["queue"])
    log = modes["log"]
    b, f = log["books"], log["figures"]
    assert b["confirmed"] > 0 and b["lost"] == 0  # commit after processing: at-least-once
    assert f["ordering_violations"] == 0  # one partition per customer, one reader per partition
    assert f["replayable_messages"] == b["confirmed"]  # a fresh group reads the whole log again
    assert f["rebalances"] >= 1  # the member that left made the group rebalance
    # what is read again after the rebalance is bounded by what the lost member had not committed
    assert b["duplicates"] < b["confirmed"] // 4
    _check_explanation(run)


def test_order_processing_on_rabbitmq_shows_the_same_queue_semantics(tmp_path: Path,
                                                                     rabbitmq_url: str) -> None:
    run = run_short("order-processing", [f"rabbitmq={rabbitmq_url}"], tmp_path)
    _check_queue(run["series"][0])
    _check_explanation(run)


def test_order_processing_accepts_the_advisors_parameters() -> None:
    """ferrymq lab advise writes scenarios with driver order_processing and these four names."""
    advised = {"rate": 250, "size": 512, "partitions": 12, "consumers": 3}
    params = load("order-processing").build_params(advised)
    assert (params.rate, params.size, params.partitions, params.consumers) == (250.0, 512, 12, 3)
