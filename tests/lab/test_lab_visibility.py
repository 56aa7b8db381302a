"""Scenario 12, visibility timeout too short, short form, on FerryMQ's SQS API: a lease shorter than
the job makes duplicates; heartbeats (ChangeMessageVisibility) or a lease that fits remove them."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferrymq.lab.drivers.visibility import VARIANTS
from ferrymq.lab.explain import n
from tests.support.lab import by_variant, run_short


def test_a_lease_shorter_than_the_job_duplicates_work_and_heartbeats_stop_it(tmp_path: Path) -> None:
    run = run_short("visibility", ["ferrymq"], tmp_path)
    series = by_variant(run)
    short, beat, fits = (series[VARIANTS[k]] for k in ("short", "heartbeat", "fits"))
    for s in (beat, fits):
        assert s["books"]["confirmed"] > 0 and s["books"]["lost"] == 0, s["name"]
    # jobs going round can starve others: whatever was not processed is still in the queue, not lost
    assert short["books"]["lost"] <= (short["figures"]["left_in_queue"] or 0)
    # the lease ran out while the first consumer worked: another consumer took the job again
    assert short["books"]["duplicates"] > 0 and short["totals"]["redelivered"] > 0
    # extending the lease, or a lease that fits, leaves each job to one consumer
    assert beat["books"]["duplicates"] == 0 and beat["totals"]["retried"] > 0
    assert fits["books"]["duplicates"] == 0 and fits["totals"]["redelivered"] == 0
    text = " ".join(run["explanation"])
    assert (f"{short['books']['confirmed']:,} jobs, {n(short['books']['duplicates'])} processed again by a "
            "second consumer") in text
    assert f"{n(beat['totals']['retried'])} lease extensions" in text


def test_visibility_on_rabbitmq_is_not_played() -> None:
    pytest.skip("RabbitMQ has no SQS API, and its AMQP counterpart (consumer_timeout) is node-wide in 3.10 "
                "and checked once a minute: a short lab run cannot show it")
