"""The deterministic simulator (ferrymq/sim): a bounded number of seeds per run, determinism, and
proof that it catches known bugs. ``make soak`` runs thousands of seeds through ``ferrymq sim``.

SIM_SEEDS / SIM_STEPS raise the bounds for a longer local run.
"""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from ferrymq.core.queue import Queue
from ferrymq.core.streams import ProducerState
from ferrymq.sim import kafka_world
from ferrymq.sim.amqp_world import AmqpWorld
from ferrymq.sim.cli import app
from ferrymq.sim.kafka_world import KafkaWorld
from ferrymq.sim.runner import SimFailure, run_seed
from ferrymq.storage.faulty import FaultyLog, FaultyStreamLog

SEEDS = int(os.environ.get("SIM_SEEDS", "40"))
STEPS = int(os.environ.get("SIM_STEPS", "1500"))
BUG_SEEDS = 30  # a planted bug must be caught within this many seeds


@pytest.mark.parametrize("seed", range(SEEDS))
def test_every_invariant_holds_for_the_seed(seed):
    run_seed(seed, STEPS)  # SimFailure carries the replay command and the trace's tail


def test_the_runs_are_not_vacuous():
    """Over a few seeds: power losses happen, confirmed messages are recovered and checked, and the
    Kafka side acks produces and offset commits."""
    totals: dict[str, int] = {"crashes": 0}
    for seed in range(5):
        result = run_seed(seed, STEPS)
        totals["crashes"] += result.crashes
        for key, value in result.counts.items():
            totals[key] = totals.get(key, 0) + value
    assert totals["crashes"] >= 5
    assert totals["amqp.confirmed"] >= 50 and totals["amqp.recovered_checked"] >= 50
    assert totals["amqp.redelivered"] > 0 and totals["amqp.settled"] > 0
    assert totals["kafka.acked"] >= 50 and totals["kafka.commits_acked"] >= 10 and totals["kafka.fetched"] > 0
    assert totals["kafka.retried"] > 0  # produces lost with a connection were retried (idempotently)


def test_the_same_seed_gives_the_same_trace():
    first, again, other = run_seed(11, 800), run_seed(11, 800), run_seed(12, 800)
    assert first.digest == again.digest and first.trace == again.trace
    assert first.digest != other.digest


def _first_failure(**kwargs) -> SimFailure:
    for seed in range(BUG_SEEDS):
        try:
            run_seed(seed, 1000, **kwargs)
        except SimFailure as failure:
            return failure
    raise AssertionError(f"the planted bug survived {BUG_SEEDS} seeds")


class LyingLog(FaultyLog):
    """fsync returns, but nothing reached the disk: a power cut loses what was confirmed."""

    def fsync(self) -> int:
        return self.log.fsync()  # the power-loss model is never told these bytes are durable


class LyingStream(FaultyStreamLog):
    def fsync(self) -> int:
        return self.log.fsync()


def test_a_queue_log_whose_fsync_lies_is_caught():
    failure = _first_failure(log_factory=LyingLog, worlds=lambda: [AmqpWorld()])
    assert "lost by the restart" in str(failure.error) or "fsynced" in str(failure.error)
    assert f"ferrymq sim --seed {failure.seed} --steps 1000" in failure.report()


def test_a_stream_log_whose_fsync_lies_is_caught():
    failure = _first_failure(worlds=lambda: [KafkaWorld(stream_factory=LyingStream)])
    assert "acked offset" in str(failure.error) or "committed offset went back" in str(failure.error)


def test_a_broker_without_the_idempotence_check_is_caught(monkeypatch):
    monkeypatch.setattr(ProducerState, "check", lambda self, *batch: (0, -1))  # every retry appended again
    failure = _first_failure(worlds=lambda: [KafkaWorld()])
    assert "stored twice" in str(failure.error)


def test_a_broker_that_forgets_producer_state_at_restart_is_caught(monkeypatch):
    monkeypatch.setattr(kafka_world, "producers_from", lambda lg: ProducerState())
    failure = _first_failure(worlds=lambda: [KafkaWorld()])
    assert "stored twice" in str(failure.error)


def test_a_core_that_drops_requeued_messages_is_caught(monkeypatch):
    monkeypatch.setattr(Queue, "requeue", Queue.discard)  # nack(requeue=True) loses the message
    failure = _first_failure(worlds=lambda: [AmqpWorld()], crashes=False)
    assert "never delivered and settled" in str(failure.error)


def test_a_failure_prints_the_replay_command_and_the_trace_tail():
    failure = SimFailure(1234, 2000, 17, AssertionError("boom"), ["16 a", "17 b"])
    text = failure.report()
    assert "replay: ferrymq sim --seed 1234 --steps 2000" in text
    assert text.endswith("  16 a\n  17 b") and "step 17 of seed 1234" in text


def test_the_cli_runs_a_seed_and_a_range():
    runner = CliRunner()
    one = runner.invoke(app, ["--seed", "5", "--steps", "300"])
    assert one.exit_code == 0, one.output
    assert "seed 5: ok" in one.output
    many = runner.invoke(app, ["--seeds", "3", "--first", "7", "--steps", "200"])
    assert many.exit_code == 0 and "3 seed(s) x 200 steps passed" in many.output


def test_a_codec_that_loses_the_redelivered_bit_is_caught(monkeypatch):
    from ferrymq.protocols.amqp import hotpath

    real = hotpath.deliver_frames

    def forgetful(out, channel, frame_max, consumer_tag, delivery_tag, redelivered, *rest):
        real(out, channel, frame_max, consumer_tag, delivery_tag, False, *rest)

    monkeypatch.setattr(hotpath, "deliver_frames", forgetful)
    failure = _first_failure(worlds=lambda: [AmqpWorld()])
    assert "the client decoded False" in str(failure.error)


def test_a_core_that_redelivers_acked_messages_is_caught(monkeypatch):
    monkeypatch.setattr(Queue, "settle", Queue.requeue)  # an ack puts the message back
    failure = _first_failure(worlds=lambda: [AmqpWorld()], crashes=False)
    assert "delivered again after its ack was processed" in str(failure.error)


def test_ferrymq_sim_is_a_subcommand_of_the_cli():
    from ferrymq.cli import app as ferrymq_app

    result = CliRunner().invoke(ferrymq_app, ["sim", "--seed", "4", "--steps", "200"])
    assert result.exit_code == 0, result.output
    assert "seed 4: ok" in result.output


def test_the_simulator_runs_without_an_event_loop():
    """The server glue the node shares (AMQP method table, effects drain) must stay loop-free: the
    import contract says so for FerryMQ's modules, this for third-party ones too."""
    import subprocess
    import sys

    code = ("import sys, ferrymq.sim.cli, ferrymq.sim.runner, ferrymq.sim.amqp_world, "
            "ferrymq.sim.kafka_world; "
            "print(sorted(m for m in ('asyncio', 'ferrymq.server.commit', 'ferrymq.server.amqp.connection') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
