"""The workload advisor: a table of workloads and the advice each must get, every reason held to the
inputs it quotes, the advised scenario as TOML the lab can read, and the command's output and errors."""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferrymq.lab import advise as adv
from ferrymq.lab.advise import Advice, Workload, advise, quote
from ferrymq.lab.advise_command import main

Check = Callable[[Advice], bool]


def flagged(*words: str) -> Check:
    return lambda a: any(all(w in f.text for w in words) for f in a.flags)


def reasoned(*words: str) -> Check:
    return lambda a: any(all(w in r.text for w in words) for r in a.reasons)


# (case, workload, model, checks the advice must pass)
CASES: list[tuple[str, Workload, str, list[Check]]] = [
    ("fan-out with replay is a log read by one group per reader",
     Workload(rate_per_s=2000, fanout=5, replay=True, job_ms_p50=20, job_ms_p99=80), "log",
     [reasoned("fan-out 5 with replay", "5 copies", "cannot replay"),
      lambda a: a.knobs["consumer_groups"] == 5]),
    ("long jobs without ordering are a queue with prefetch 1 and a lease above p99",
     Workload(rate_per_s=50, job_ms_p50=5000, job_ms_p99=30000), "queue",
     [lambda a: a.knobs["prefetch"] == 1, lambda a: a.knobs["visibility_timeout_s"] > 30,
      lambda a: a.knobs["consumer_timeout_ms"] >= 30000 * adv.LEASE_MARGIN,
      lambda a: a.knobs["delivery_limit"] == adv.DELIVERY_LIMIT and a.knobs["dead_letter_queue"],
      reasoned("job p99 30000 ms", "duplicate")]),
    ("per-key ordering at a high rate is a log with partitions for the consumers needed",
     Workload(rate_per_s=20000, ordering="per-key", job_ms_p50=2, job_ms_p99=10), "log",
     [lambda a: a.knobs["partitions"] >= a.knobs["consumers"] == math.ceil(20000 * 0.002 / adv.UTILISATION),
      lambda a: a.knobs["partitions"] >= 20000 / adv.PARTITION_MSGS_PER_S,
      reasoned("per-key ordering at 20000 msg/s", "FIFO_QUEUE_MAX_RATE")]),
    ("total ordering beyond one consumer is flagged with the arithmetic",
     Workload(rate_per_s=50000, ordering="total", job_ms_p50=200, job_ms_p99=400), "queue",
     [flagged("total ordering at 50000 msg/s", "1000 / job p50 200 ms = 5 msg/s"),
      lambda a: a.knobs["consumers"] == 1 and a.knobs["single_active_consumer"] is True]),
    ("total ordering in a log is one partition",
     Workload(rate_per_s=100, ordering="total", replay=True, job_ms_p50=1, job_ms_p99=3), "log",
     [lambda a: a.knobs["partitions"] == 1 and a.knobs["consumers"] == 1,
      lambda a: not flagged("cannot be met")(a)]),
    ("delayed messages are a queue: a log has no per-message delay",
     Workload(rate_per_s=100, delay_s=30, job_ms_p50=5, job_ms_p99=20), "queue",
     [reasoned("delay 30 s", "no per-message delay"), lambda a: a.knobs["delay_s"] == 30]),
    ("replay and delay together conflict and say so",
     Workload(rate_per_s=100, delay_s=30, replay=True, job_ms_p50=5, job_ms_p99=20), "log",
     [flagged("no one model does both", "delay 30 s")]),
    ("short jobs with nothing else are a queue with a prefetch covering the round trip",
     Workload(rate_per_s=5000, job_ms_p50=0.5, job_ms_p99=2), "queue",
     [lambda a: a.knobs["prefetch"] == 1 + math.ceil(adv.ROUND_TRIP_MS / 0.5),
      lambda a: a.knobs["max_length"] == 5000 * adv.BACKLOG_S and a.knobs["overflow"] == "reject-publish"]),
    ("per-key ordering at a modest rate is a FIFO queue with message groups",
     Workload(rate_per_s=500, ordering="per-key", job_ms_p50=10, job_ms_p99=40), "queue",
     [lambda a: a.knobs["queue_type"] == "fifo"]),
    ("too few consumers given are flagged with the capacity they have",
     Workload(rate_per_s=2000, job_ms_p50=20, job_ms_p99=50, consumers=2), "queue",
     [flagged("2 consumers are too few", "2 x 1000 / job p50 20 ms = 100 msg/s"),
      lambda a: a.knobs["consumers"] == 2]),
    ("fewer keys than consumers needed caps the parallelism, and says so",
     Workload(rate_per_s=20000, ordering="per-key", keys=8, job_ms_p50=2, job_ms_p99=5), "log",
     [flagged("8 keys", "4000 msg/s"), lambda a: a.knobs["consumers"] == 8 and a.knobs["partitions"] == 8]),
    ("retention after consumption is a log that keeps what was asked",
     Workload(rate_per_s=100, retention_s=86400, job_ms_p50=5, job_ms_p99=20), "log",
     [lambda a: a.knobs["retention_s"] == 86400, reasoned("retention 86400 s")]),
    ("exactly-once in a log is an idempotent producer with transactions",
     Workload(rate_per_s=100, replay=True, exactly_once=True, job_ms_p50=5, job_ms_p99=20), "log",
     [lambda a: a.knobs["transactions"] and a.knobs["idempotent_producer"]]),
    ("exactly-once on a queue is confirms, a dedup window and a warning about redeliveries",
     Workload(rate_per_s=100, exactly_once=True, job_ms_p50=500, job_ms_p99=2000), "queue",
     [lambda a: a.knobs["dedup_window_s"] == adv.DEDUP_WINDOW_S, flagged("idempotent")]),
    ("a lease above RabbitMQ's consumer timeout says to raise it",
     Workload(rate_per_s=1, job_ms_p50=600_000, job_ms_p99=1_200_000), "queue",
     [flagged("x-consumer-timeout")]),
    ("a lease above SQS's 12 h says to extend it while working",
     Workload(rate_per_s=1, job_ms_p50=3_600_000, job_ms_p99=36_000_000), "queue",
     [flagged("ChangeMessageVisibility")]),
    ("a body above Kafka's message.max.bytes is flagged",
     Workload(rate_per_s=10, size_bytes=4 * 1024 * 1024, replay=True, job_ms_p50=5, job_ms_p99=9), "log",
     [flagged("claim check")]),
    ("consumers given with total ordering are standbys, and says so",
     Workload(rate_per_s=1, ordering="total", consumers=3, job_ms_p50=5, job_ms_p99=9), "queue",
     [flagged("3 consumers given", "standbys"), lambda a: a.knobs["consumers"] == 1]),
    ("an unknown p99 is flagged: the lease was sized from the median",
     Workload(rate_per_s=100, job_ms_p50=5), "queue", [flagged("job p99 not given")]),
]


@pytest.mark.parametrize(("case", "w", "model", "checks"), CASES, ids=[c[0] for c in CASES])
def test_each_workload_gets_its_advice(case: str, w: Workload, model: str, checks: list[Check]) -> None:
    a = advise(w)
    assert a.model == model, (case, [r.text for r in a.reasons])
    for i, check in enumerate(checks):
        assert check(a), (case, i, a.knobs, [r.text for r in a.reasons], [f.text for f in a.flags])


@pytest.mark.parametrize("w", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_every_reason_and_flag_quotes_the_inputs_that_drove_it(w: Workload) -> None:
    a = advise(w)
    for r in a.reasons + a.flags:
        assert r.fields, f"no driving input named: {r.text}"
        for name in r.fields:
            assert quote(w, name) in r.text, (name, quote(w, name), r.text)


@pytest.mark.parametrize("w", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_every_named_constant_a_reason_quotes_has_its_real_value(w: Workload) -> None:
    a = advise(w)
    for r in a.reasons + a.flags:
        for name, value in re.findall(r"\b([A-Z][A-Z0-9_]{3,}) (\d[\d.]*)", r.text):
            assert adv.num(getattr(adv, name)) == value, (name, value, r.text)


def test_the_knobs_a_queue_gets_are_the_numbers_its_reasons_state() -> None:
    a = advise(Workload(rate_per_s=800, job_ms_p50=1, job_ms_p99=8))
    assert reasoned(f"prefetch {a.knobs['prefetch']}:")(a)
    assert reasoned(f"consumers {a.knobs['consumers']}:")(a)
    assert reasoned(f"visibility timeout / consumer timeout {adv.num(a.knobs['visibility_timeout_s'])} s")(a)


def test_the_same_workload_gets_the_same_advice_word_for_word() -> None:
    w = Workload(rate_per_s=2000, fanout=3, replay=True, ordering="per-key", job_ms_p50=20, job_ms_p99=80)
    assert advise(w).to_dict() == advise(Workload(**vars(w))).to_dict()


workloads = st.builds(
    Workload, rate_per_s=st.floats(0.1, 1e6), size_bytes=st.integers(1, 10_000_000),
    ordering=st.sampled_from(adv.ORDERINGS), fanout=st.integers(1, 20), replay=st.booleans(),
    retention_s=st.sampled_from([0.0, 3600.0]), job_ms_p50=st.floats(0.01, 1e6),
    consumers=st.integers(0, 500), keys=st.integers(0, 1000), exactly_once=st.booleans(),
    delay_s=st.sampled_from([0.0, 10.0]))


@settings(max_examples=200, deadline=None)
@given(workloads, st.floats(1.0, 10.0))
def test_leases_cover_a_full_prefetch_of_p99_jobs_and_partitions_cover_the_consumers(
        w: Workload, spread: float) -> None:
    w = Workload(**{**vars(w), "job_ms_p99": w.job_ms_p50 * spread})
    a = advise(w)
    k = a.knobs
    timeout_ms = k["consumer_timeout_ms"] if a.model == "queue" else k["max_poll_interval_ms"]
    assert timeout_ms >= k["prefetch"] * w.job_ms_p99
    assert 1 <= k["prefetch"] <= adv.PREFETCH_MAX
    if a.model == "log":
        assert k["partitions"] >= k["consumers"] >= 1
    for r in a.reasons + a.flags:
        assert all(quote(w, name) in r.text for name in r.fields)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"rate_per_s": 0}, "rate_per_s"), ({"rate_per_s": "fast"}, "rate_per_s"),
    ({"size_bytes": 0}, "size_bytes"), ({"size_bytes": 1.5}, "size_bytes"),
    ({"ordering": "strict"}, "ordering"), ({"fanout": 0}, "fanout"), ({"replay": 1}, "replay"),
    ({"retention_s": -1}, "retention_s"), ({"job_ms_p50": 0}, "job_ms_p50"),
    ({"job_ms_p50": 10, "job_ms_p99": 5}, "job_ms_p99"), ({"consumers": -1}, "consumers"),
    ({"keys": True}, "keys"), ({"delay_s": float("nan")}, "delay_s"),
    ({"rate_per_s": float("inf")}, "rate_per_s"),
])
def test_a_bad_workload_is_one_value_error_line_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError) as err:
        Workload(**kwargs)
    assert str(err.value).startswith(field + " ") and "\n" not in str(err.value)


# --- the advised scenario ----------------------------------------------------------------------

SCENARIO_KEYS = {"name", "summary", "description", "driver", "targets", "duration", "short_duration",
                 "params"}


def test_queue_advice_becomes_a_task_queue_scenario_with_its_numbers() -> None:
    a = advise(Workload(rate_per_s=200, job_ms_p50=20, job_ms_p99=80, size_bytes=512))
    data = tomllib.loads(a.to_scenario_toml())
    assert set(data) == SCENARIO_KEYS and data["name"] == "advised-queue"
    assert data["driver"] == "task_queue" and data["targets"] == ["ferrymq"]
    assert data["params"] == {"workers": [a.knobs["consumers"]], "prefetch": a.knobs["prefetch"],
                              "work_ms": 20, "rate": 200, "size": 512}
    assert data["duration"] > data["short_duration"] > 0


def test_log_advice_becomes_an_order_processing_scenario_scaled_to_the_lab() -> None:
    a = advise(Workload(rate_per_s=2000, fanout=3, replay=True, job_ms_p50=20, job_ms_p99=80))
    assert a.knobs["consumers"] > adv.LAB_MAX_CONSUMERS
    data = tomllib.loads(a.to_scenario_toml("mine"))
    p = data["params"]
    assert data["name"] == "mine" and data["driver"] == "order_processing"
    assert data["targets"] == ["ferrymq-kafka"] and set(p) == {"rate", "size", "partitions", "consumers"}
    assert p["consumers"] == adv.LAB_MAX_CONSUMERS <= p["partitions"]
    assert p["rate"] / p["consumers"] == pytest.approx(2000 / a.knobs["consumers"], rel=1e-3)
    assert "Scaled to 16 of" in data["description"]


def test_the_scenario_uses_only_keys_the_lab_knows() -> None:
    scenario = pytest.importorskip("ferrymq.lab.scenario")
    for w in (CASES[0][1], CASES[1][1]):
        assert set(tomllib.loads(advise(w).to_scenario_toml())) <= scenario.KEYS
    if "task_queue" in scenario.driver_names():  # the driver's own Params accept what is emitted
        parsed = scenario.parse(advise(CASES[1][1]).to_scenario_toml(), "advised.toml")
        assert parsed.build_params().prefetch == 1


# --- the command -------------------------------------------------------------------------------

def test_the_command_prints_the_advice_and_writes_the_scenario(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "advised.toml"
    rc = main(["--rate", "2000", "--size", "1024", "--ordering", "per-key", "--fanout", "3", "--replay",
               "--job-ms", "20", "--job-ms-p99", "80", "--write-scenario", str(path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Advice: a log" in out and "partitions" in out and "fan-out 3 with replay" in out
    assert "Watch out" in out and str(path) in out
    assert tomllib.loads(path.read_text())["driver"] == "order_processing"


def test_the_command_reads_a_workload_file_and_flags_win_over_it(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "w.toml"
    path.write_text('[workload]\nrate_per_s = 50\njob_ms_p50 = 5000\njob_ms_p99 = 30000\ndelay_s = 10\n')
    assert main(["--from", str(path), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["model"] == "queue" and first["knobs"]["prefetch"] == 1
    assert first["workload"]["delay_s"] == 10
    assert main(["--from", str(path), "--rate", "70", "--delay", "2m", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["workload"]["rate_per_s"] == 70 and second["workload"]["delay_s"] == 120


@pytest.mark.parametrize(("argv", "says"), [
    (["--rate", "-5"], "rate_per_s must be > 0, got -5.0 (--rate)"),
    (["--rate", "fast"], "--rate: invalid float value"),
    (["--ordering", "strict"], "invalid choice"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--job-ms", "10", "--job-ms-p99", "5"], "(--job-ms-p99)"),
    (["--retention", "7x"], "expected seconds"),
    (["--from", "/nonexistent/w.toml"], "cannot read it"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], says: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ferrymq lab advise: ") and says in lines[0], captured.err
    assert captured.out == ""


def test_a_workload_file_with_an_unknown_key_or_bad_toml_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unknown, broken = tmp_path / "u.toml", tmp_path / "b.toml"
    unknown.write_text("rate = 5\n")
    broken.write_text("rate_per_s = \n")
    assert main(["--from", str(unknown)]) == 2
    assert "unknown key(s) rate; known:" in capsys.readouterr().err
    assert main(["--from", str(broken)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_help_exits_0_and_names_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(flag in out for flag in ("--rate", "--job-ms-p99", "--from", "--write-scenario", "--json"))


def test_an_unwritable_scenario_path_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--write-scenario", str(tmp_path / "missing" / "s.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write it" in err
