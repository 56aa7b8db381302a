"""Scenario 10, delayed delivery, short form: timers through per-message TTL + dead-lettering and
through the x-delayed-message exchange, across a kill -9 of FerryMQ; on RabbitMQ (no plugin, no kill:
a node given by URL) the TTL pattern only, the delayed exchange skipped."""

from __future__ import annotations

from pathlib import Path

from ferrymq.lab.drivers.delayed import EARLY_MS, LABELS
from ferrymq.lab.explain import n
from tests.support.lab import by_variant, run_short


def _check(run: dict) -> None:
    text = " ".join(run["explanation"])
    for s in run["series"]:
        b, f = s["books"], s["figures"]
        assert b["confirmed"] > 0 and b["lost"] == 0, (s["name"], b, f)  # every confirmed timer fired
        assert f["early"] == 0 and f["lateness_min_ms"] >= -EARLY_MS, s["name"]  # never before its due time
        assert sum(r["timers"] for r in s["tables"]["lateness histogram"]) == b["unique_received"]
        assert (f"{s['name']}: {n(b['confirmed'])} of {n(b['confirmed'])} confirmed timers arrived; "
                f"lateness p50 {n(f['lateness_p50_ms'])} ms") in text


def test_delayed_timers_on_ferrymq_survive_a_broker_kill_and_never_fire_early(tmp_path: Path) -> None:
    run = run_short("delayed", ["ferrymq"], tmp_path, delay_max_s=3.0)
    _check(run)
    series = by_variant(run)
    assert set(series) == set(LABELS.values())  # FerryMQ has the delayed exchange built in
    for s in run["series"]:
        assert any(e["kind"] == "restart" for e in s["events"]), s["name"]


def test_ttl_head_of_line_blocking_shows_on_rabbitmq(tmp_path: Path, rabbitmq_url: str) -> None:
    run = run_short("delayed", [f"rabbitmq={rabbitmq_url}"], tmp_path, faults=[], delay_max_s=3.0)
    _check(run)
    series = by_variant(run)
    assert LABELS["delayed-exchange"] not in series  # no plugin: the variant is skipped, and said so
    assert any("skipped" in line for line in run["explanation"])
    inc = series[LABELS["ttl-increasing"]]["figures"]
    rnd = series[LABELS["ttl-random"]]["figures"]
    # random delays: a 3 s timer at the head holds 1 s ones for up to 2 s, so the typical timer is
    # late by a large share of a second; in due order it is late by ms. Medians: robust to load spikes
    assert rnd["lateness_p50_ms"] > 3 * max(inc["lateness_p50_ms"], 50.0), (inc, rnd)
