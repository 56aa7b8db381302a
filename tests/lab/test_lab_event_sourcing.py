"""Scenario 4, event sourcing, short form: a Kafka topic and an AMQP stream queue on FerryMQ, and
the stream queue on RabbitMQ. The rebuilt balances must equal the producer's own (computed from
what the broker confirmed), and the replay from the timestamp mark must return exactly the events
appended after it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ferrymq.lab.explain import n
from tests.support.lab import run_short


def _check(s: dict[str, Any]) -> None:
    b, f = s["books"], s["figures"]
    assert b["confirmed"] > 0 and b["lost"] == 0, s["name"]  # the rebuild read every confirmed event
    assert b["duplicates"] == 0, s["name"]  # ... and each once
    assert f["rebuild_events"] == b["confirmed"]
    assert f["state_equal"] and f["accounts_differing"] == 0, s["name"]
    assert f["accounts"] > 1
    assert f["from_mark_expected"] > 0 and f["from_mark_missing"] == 0, s["name"]
    assert f["from_mark_expected"] < b["confirmed"]  # the mark lies inside the stream, not at its start


def _check_explanation(run: dict[str, Any]) -> None:
    text = " ".join(run["explanation"])
    for s in run["series"]:
        f = s["figures"]
        assert f"replaying {n(f['rebuild_events'])} events from the start took {n(f['rebuild_s'])} s" in text
        replayed, expected = n(f["from_mark_replayed"]), n(f["from_mark_expected"])
        assert f"returned {replayed} events for {expected} appended" in text


def test_event_sourcing_rebuilds_the_same_balances_from_a_topic_and_a_stream_queue(tmp_path: Path) -> None:
    run = run_short("event-sourcing", ["ferrymq", "ferrymq-kafka"], tmp_path)
    assert len(run["series"]) == 2
    for s in run["series"]:
        _check(s)
        assert s["figures"]["from_mark_before_mark"] == 0  # offsets by time start exactly at the mark
    _check_explanation(run)


def test_event_sourcing_on_rabbitmq_stream_queues(tmp_path: Path, rabbitmq_url: str) -> None:
    run = run_short("event-sourcing", [f"rabbitmq={rabbitmq_url}"], tmp_path)
    _check(run["series"][0])
    _check_explanation(run)
