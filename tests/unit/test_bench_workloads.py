"""Workload schedules (no coordinated omission: every message has an intended send time), the
topology each workload declares, and the scenario files, built-ins included."""

from __future__ import annotations

import pytest

from ferrymq.bench import scenarios
from ferrymq.bench.command import build_parser, overrides
from ferrymq.bench.pacing import Pacer
from ferrymq.bench.workloads import Topology, Workload


def test_steady_pacer_spaces_messages_evenly():
    p = Pacer(1000.0)
    assert [p.intended_ns(i) for i in range(3)] == [0, 1_000_000, 2_000_000]
    assert p.due(0) == 1 and p.due(999_999) == 1 and p.due(1_000_000) == 2
    assert p.due(-1) == 0


def test_bursty_pacer_is_silent_between_bursts():
    p = Pacer(100.0, on_s=0.1, off_s=0.4)  # 10 messages per burst, every 0.5 s
    assert p.per_burst == 10
    assert p.intended_ns(9) == 90_000_000 and p.intended_ns(10) == 500_000_000
    assert p.due(200_000_000) == p.due(499_999_999) == 10
    assert p.due(500_000_000) == 11
    assert p.is_on(50_000_000) and not p.is_on(200_000_000)
    assert p.next_on_ns(200_000_000) == 500_000_000


def test_topologies():
    fan = Topology.plan(Workload(kind="fanout", queues=3, consumers=1), "x")
    assert fan.exchange and fan.consumers == 3  # one consumer per queue at least
    assert fan.producer_route(0) == (fan.exchange, "")
    assert fan.copies(0, stream=False) == 3
    task = Topology.plan(Workload(kind="task", queues=2, producers=3, consumers=4, fail_rate=0.05), "x")
    assert task.dlq and task.queue_args["x-dead-letter-routing-key"] == task.dlq
    assert [task.producer_route(i)[1] for i in range(3)] == [task.queues[0], task.queues[1], task.queues[0]]
    assert task.copies(0, stream=False) == 1
    stream = Topology.plan(Workload(kind="stream", consumers=2), "x")
    assert stream.durable and stream.copies(0, stream=True) == 2
    assert Topology.plan(Workload(consumers=0), "x").copies(0, stream=False) == 0


def test_invalid_workloads_are_refused():
    for bad in ({"kind": "nope"}, {"kind": "steady"}, {"size": 4}, {"fail_rate": 1.0}, {"colour": 1}):
        with pytest.raises(ValueError):
            Workload.from_dict(bad)


def test_timeline_interval_divides_the_window():
    w = Workload(seconds=1.2, interval=0.5)
    assert round(w.seconds / w.timeline_interval(), 9) == 2


def test_every_builtin_scenario_loads_and_builds():
    names = scenarios.builtin_names()
    assert {"order-processing", "fanout-logs", "event-stream", "burst", "slow-consumer"} <= set(names)
    for name in names:
        s = scenarios.load(name)
        assert s.description and s.build().kind
    order = scenarios.load("order-processing").build()
    assert order.kind == "task" and order.fail_rate == 0.05 and order.max_retries > 0


def test_scenario_file_and_command_line_overrides(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "mine"\ntargets = ["sink"]\n[workload]\nkind = "steady"\nrate = 100\n')
    s = scenarios.load(str(path))
    assert (s.name, s.targets) == ("mine", ["sink"])
    args = build_parser().parse_args(["--rate", "250", "--no-confirm", "--seconds", "2"])
    w = s.build(overrides(args))
    assert (w.kind, w.rate, w.confirm, w.seconds) == ("steady", 250.0, False, 2.0)
    with pytest.raises(ValueError):
        scenarios.parse('[workload]\nkind = "max"\nbogus = 1\n')
