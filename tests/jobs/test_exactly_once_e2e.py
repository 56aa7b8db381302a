"""Exactly-once effects end to end: real ``ferrymq.jobs`` worker processes on a real broker,
SIGKILLed in the middle of 2,000 idempotent jobs whose effect is an INSERT through ``current.tx``;
a second worker finishes. Every job's effect is committed exactly once, none lost — on a SQLite
file and on a private PostgreSQL server. (scripts/exactly_once.py runs the same scenario at
10,000 jobs, with an at-least-once control, for BENCHMARKS.md.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ferrymq.testing import EmbeddedBroker
from tests.support.postgres import any_db_url, postgres_server  # noqa: F401

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "exactly_once.py"
JOBS = 2_000


def scenario() -> ModuleType:
    spec = importlib.util.spec_from_file_location("exactly_once_scenario", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_worker_killed_mid_run_leaves_every_effect_exactly_once(any_db_url: str) -> None:  # noqa: F811
    with EmbeddedBroker() as broker:
        outcome = scenario().run_scenario(broker.amqp_url, any_db_url, JOBS, kill_fraction=0.4, ack_lag_ms=5)
    assert 0 < outcome.at_kill < JOBS, outcome  # the kill landed mid-way: the second worker did the rest
    assert outcome.redelivered_done > 0, outcome  # committed-but-unacked jobs were delivered again...
    assert (outcome.lost, outcome.twice) == (0, 0), outcome  # ...and none ran twice; none was lost
    assert outcome.effects == outcome.distinct == JOBS
