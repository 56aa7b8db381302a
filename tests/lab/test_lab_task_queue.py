"""Scenario 3, task queue, short form: on FerryMQ (with a worker killed mid-run) and on RabbitMQ."""

from __future__ import annotations

from pathlib import Path

from tests.support.lab import by_variant, run_short


def _check(run: dict, kills: int) -> None:
    for s in run["series"]:
        b = s["books"]
        assert b["confirmed"] > 0 and b["lost"] == 0, s["name"]  # acked delivery: nothing confirmed is lost
        # a worker killed after processing a task and before its ack: that one task is processed again
        assert b["duplicates"] <= kills, s["name"]
        assert s["totals"]["failed"] > 0 and s["totals"]["redelivered"] >= s["totals"]["failed"]
    text = " ".join(run["explanation"])
    for s in run["series"]:
        depth = [d for d in s["timeline"]["gauges"]["depth"] if d is not None]
        assert f"the queue peaked at {max(depth):,} ready" in text  # the paragraph quotes the measured peak
        assert f"{s['name']}: {s['books']['confirmed']:,} messages confirmed, none lost" in text


def test_task_queue_on_ferrymq_loses_nothing_when_a_worker_is_killed(tmp_path: Path) -> None:
    run = run_short("task-queue", ["ferrymq"], tmp_path, workers=[1, 3])
    _check(run, kills=1)
    series = by_variant(run)
    assert series["1 worker"]["faults"][0]["label"] == "kill:consumer@50%"
    assert any(e["kind"] == "restart" for e in series["3 workers"]["events"])
    # the slow variant's backlog is what the report is about: one worker (capacity 200/s) against 300/s
    assert max(d or 0 for d in series["1 worker"]["timeline"]["gauges"]["depth"]) > \
        max(d or 0 for d in series["3 workers"]["timeline"]["gauges"]["depth"])


def test_task_queue_on_rabbitmq_keeps_the_same_invariants(tmp_path: Path, rabbitmq_url: str) -> None:
    run = run_short("task-queue", [f"rabbitmq={rabbitmq_url}"], tmp_path, workers=[2])
    _check(run, kills=1)
