"""Scenario 1, order processing, short form: queue mode and log mode side by side on FerryMQ, and
queue mode on RabbitMQ. The point of the scenario must be visible in the numbers: competing
consumers break per-customer order and keep nothing to replay; a partitioned log keeps per-key
order and a fresh group re-reads everything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def test_order_processing_runs_what_the_advisor_writes() -> None:
    """ferrymq lab advise writes log-mode scenarios with driver order_processing and the params
    rate, size, partitions, consumers: this driver's Params take them as written."""
    from ferrymq.lab.advise import Workload, advise
    from ferrymq.lab.scenario import parse

    advice = advise(Workload(rate_per_s=2000, fanout=3, replay=True, job_ms_p50=20, job_ms_p99=80))
    scen = parse(advice.to_scenario_toml("advised"), "advised.toml")
    assert scen.driver == "order_processing"
    params = scen.build_params()
    assert params.consumers == scen.params["consumers"] and params.partitions == scen.params["partitions"]
    assert params.rate == scen.params["rate"] and params.size == scen.params["size"]
