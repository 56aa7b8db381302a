"""Scenario 6, a poison message, short form: a requeue storm against a delivery limit with a
dead-letter queue, beside a baseline without poison; on FerryMQ and on RabbitMQ (quorum queue for
the delivery limit, as RabbitMQ 3.10 requires)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.lab import by_variant, run_short

DELIVERIES = "the poison message's deliveries"


def _check(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    series = by_variant(run)
    text = " ".join(run["explanation"])
    for s in series.values():  # the normal traffic: acked after processing, nothing lost, no duplicates
        assert s["books"]["confirmed"] > 0 and s["books"]["lost"] == 0, s["name"]
        assert s["books"]["duplicates"] == 0 and s["books"]["received_unconfirmed"] == 0, s["name"]
    storm, dl = series["storm"]["figures"], series["delivery-limit"]["figures"]
    limit = run["params"]["delivery_limit"]
    # the storm: delivered again and again, never dead-lettered; every delivery after the first is flagged
    assert storm["poison_deliveries"] > 5 * dl["poison_deliveries"]
    assert series["storm"]["totals"]["dead_lettered"] == 0 and storm["poison_dead_lettered_after_s"] is None
    assert storm["poison_redelivered_flags"] == storm["poison_deliveries"] - 1
    # the limit: the first delivery and `limit` more, then one dead letter carrying x-death
    assert dl["poison_deliveries"] == limit + 1
    assert series["delivery-limit"]["totals"]["dead_lettered"] == 1
    assert dl["poison_x_death_reason"] == "delivery_limit" and dl["poison_x_death_count"] == 1
    rows = series["delivery-limit"]["tables"][DELIVERIES]
    assert rows[-1]["delivery"] == "dead-lettered" and rows[-1]["x-death"][0]["reason"] == "delivery_limit"
    assert [r["redelivered"] for r in rows[:-1]] == [False] + [True] * limit
    assert f"delivered {storm['poison_deliveries']:,} times" in text
    assert f"delivered {dl['poison_deliveries']:,} times" in text and "reason delivery_limit" in text
    return series


def test_poison_on_ferrymq_storms_without_a_limit_and_dead_letters_with_one(tmp_path: Path) -> None:
    series = _check(run_short("poison", ["ferrymq"], tmp_path))
    assert series["delivery-limit"]["figures"]["queue_type"] == "classic"  # FerryMQ's extension
    assert series["storm"]["figures"]["broker_cpu_mean_pct"] >= 0
    trace = series["delivery-limit"]["tables"]["broker trace of the poison"]  # the broker's own account
    events = [e["event"] for e in trace]
    assert events[0] == "published" and "dead_lettered" in events and events.count("requeued") >= 1


def test_poison_on_rabbitmq_keeps_the_same_invariants_on_a_quorum_queue(tmp_path: Path,
                                                                        rabbitmq_url: str) -> None:
    series = _check(run_short("poison", [f"rabbitmq={rabbitmq_url}"], tmp_path))
    assert series["delivery-limit"]["figures"]["queue_type"] == "quorum"
