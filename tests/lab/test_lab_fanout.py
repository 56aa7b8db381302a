"""Scenario 2, fan-out logs, short form: N queues behind a fanout exchange and N consumer groups on
one topic, side by side on FerryMQ, and the queue form on RabbitMQ. Every subscriber gets every
message; the slow one lags alone; the queue form stores a copy per subscriber, the log one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ferrymq.lab.explain import n
from tests.support.lab import run_short


def _per_target(run: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for s in run["series"]:
        out.setdefault("log" if "log mode" in s["target"] else "queue", []).append(s)
    return out


def _check(subs: list[dict[str, Any]], copies_per_message: int) -> None:
    for s in subs:
        b = s["books"]
        assert b["confirmed"] > 0 and b["lost"] == 0, s["name"]  # every subscriber got every message
        assert b["duplicates"] == 0, s["name"]  # no fault, no redelivery
        assert s["figures"]["stored_copies"] == b["confirmed"] * copies_per_message
    fast, slow = subs[:-1], subs[-1]
    assert slow["variant"] == "slow sub"
    # the slow subscriber's backlog is its own: it lags behind every other one (not by a fixed factor: on a
    # loaded machine RabbitMQ's fast consumers lag too, 480 against the slow one's 771 in one CI run)
    assert slow["figures"]["lag_at_load_end"] > max(s["figures"]["lag_at_load_end"] for s in fast) + 10
    assert all(s["figures"]["during_load_per_s"] > slow["figures"]["during_load_per_s"] for s in fast)


def _check_explanation(run: dict[str, Any]) -> None:
    text = " ".join(run["explanation"])
    for s in run["series"]:
        f = s["figures"]
        assert f"{s['name']}: {n(f['during_load_per_s'])} messages/s processed" in text
        assert f"{f['stored_copies']:,} stored copies" in text


def test_fanout_queue_mode_stores_a_copy_per_subscriber_and_log_mode_one(tmp_path: Path) -> None:
    run = run_short("fanout", ["ferrymq", "ferrymq-kafka"], tmp_path)
    modes = _per_target(run)
    assert len(modes["queue"]) == len(modes["log"]) == 3
    _check(modes["queue"], copies_per_message=3)
    _check(modes["log"], copies_per_message=1)
    for s in run["series"]:
        assert s["figures"]["disk_peak_bytes"] > 0  # a broker the lab started: its data directory measured
    _check_explanation(run)


def test_fanout_on_rabbitmq_gives_every_queue_every_message(tmp_path: Path, rabbitmq_url: str) -> None:
    run = run_short("fanout", [f"rabbitmq={rabbitmq_url}"], tmp_path)
    _check(run["series"], copies_per_message=3)
    assert run["series"][0]["figures"]["disk_peak_bytes"] is None  # a broker given by URL: no data directory
    _check_explanation(run)
