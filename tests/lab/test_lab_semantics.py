"""Scenario 11, delivery semantics, short form: a consumer killed mid-run under at-most-once,
at-least-once and effectively-once, in queue mode (FerryMQ and RabbitMQ) and log mode (FerryMQ's
Kafka listener). Each variant's guarantee is checked against the producer's ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.lab import by_variant, run_short


def _check(run: dict[str, Any]) -> None:
    series = by_variant(run)
    assert set(series) == {"at-most-once", "at-least-once", "effectively-once"}
    for variant, s in series.items():
        b, row = s["books"], s["tables"]["delivery"][0]
        assert b["confirmed"] > 0 and row["crashes"] >= 1, variant
        assert (row["confirmed"], row["lost"], row["duplicates"]) == \
            (b["confirmed"], b["lost"], b["duplicates"])
    assert series["at-most-once"]["books"]["duplicates"] == 0  # acked before the work: never again
    assert series["at-least-once"]["books"]["lost"] == 0  # acked after it: nothing confirmed lost
    once = series["effectively-once"]
    assert once["books"]["lost"] == 0 and once["books"]["duplicates"] == 0
    # the store saw every effect once: what it holds is what the lab received
    assert once["tables"]["delivery"][0]["ids in the store"] == once["books"]["unique_received"]
    text = " ".join(run["explanation"])
    for variant, s in series.items():
        f = s["figures"]
        assert (f"{s['name']}: {f['crashes']:,} consumer crashes; of {f['confirmed']:,} confirmed messages "
                f"{f['lost']:,} were lost") in text
        assert f"{variant} gave its guarantee" in text


def test_semantics_in_queue_mode_on_ferrymq_keep_each_guarantee_across_consumer_kills(tmp_path: Path) -> None:
    run = run_short("semantics", ["ferrymq"], tmp_path)
    _check(run)
    assert all(len(s["faults"]) == 3 for s in run["series"])


def test_semantics_in_queue_mode_on_rabbitmq_keep_the_same_guarantees(tmp_path: Path,
                                                                     rabbitmq_url: str) -> None:
    run = run_short("semantics", [f"rabbitmq={rabbitmq_url}"], tmp_path)
    _check(run)


def test_semantics_in_log_mode_commit_before_after_and_an_idempotent_consumer(tmp_path: Path) -> None:
    # one kill per variant: a killed member's partitions wait out its session (1 s here) before the
    # restarted one reads them, and the short form's 3 s per variant leaves room for one
    run = run_short("semantics", ["ferrymq-kafka"], tmp_path, faults=["kill:consumer@30%"], session_ms=1000)
    _check(run)


def test_an_idempotent_producer_keeps_retried_produces_out_of_the_log_twice(tmp_path: Path) -> None:
    # connections cut under the producer: a produce appended but unanswered is retried; the broker
    # drops the retry only when the producer is idempotent
    cuts = [f"cut@{at}%+300ms" for at in (20, 40, 60, 80)]
    run = run_short("semantics", ["ferrymq-kafka"], tmp_path, faults=cuts,
                    variants=["producer-retries", "idempotent-producer"], rate=300)
    series = by_variant(run)
    for variant, s in series.items():
        assert s["books"]["confirmed"] > 0 and s["books"]["lost"] == 0, variant  # acks=all: in the log
        assert len(s["faults"]) == 4, variant
    assert series["idempotent-producer"]["books"]["duplicates"] == 0
    text = " ".join(run["explanation"])
    for s in series.values():
        f = s["figures"]
        assert f"the log is missing 0 and holds {f['duplicates']:,} twice" in text
    assert "idempotent-producer gave every record in the log once" in text
