"""Run seeds: each one a fresh node and worlds, ``steps`` seeded steps, a drain, the final checks.

Every step appends one trace line; the trace's SHA-256 is the run's fingerprint (the same seed must
give the same digest). A failure raises ``SimFailure``, whose text is the replay command and the last
trace lines.
"""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferrymq.sim.node import Node
from ferrymq.sim.world import World
from ferrymq.storage.faulty import FaultyLog

TAIL_LINES = 40
DRAIN_STEPS = 500
# Step kinds and their weights; a crash is rare but certain over a few hundred steps.
KINDS = (("amqp", 500), ("kafka", 150), ("flush", 200), ("commit", 100), ("tick", 30), ("crash", 3))


@dataclass(slots=True)
class SimResult:
    seed: int
    steps: int
    digest: str
    crashes: int
    counts: dict[str, int] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)


class SimFailure(AssertionError):
    def __init__(self, seed: int, steps: int, at: int, error: BaseException, tail: list[str],
                 trace: list[str] | None = None) -> None:
        self.seed, self.steps, self.at, self.error, self.tail = seed, steps, at, error, tail
        self.trace = trace or tail
        super().__init__(self.report())

    def report(self) -> str:
        lines = [f"simulation failed at step {self.at} of seed {self.seed}: {type(self.error).__name__}: "
                 f"{self.error}", f"replay: ferrymq sim --seed {self.seed} --steps {self.steps}",
                 f"last {len(self.tail)} trace lines:"]
        return "\n".join(lines + ["  " + t for t in self.tail])


def default_worlds() -> list[World]:
    from ferrymq.sim.amqp_world import AmqpWorld
    from ferrymq.sim.kafka_world import KafkaWorld

    return [AmqpWorld(), KafkaWorld()]


def run_seed(seed: int, steps: int, worlds: Callable[[], list[World]] = default_worlds,
             log_factory: Any = FaultyLog, crashes: bool = True) -> SimResult:
    """One seed, start to drain; raises SimFailure (with the replay line) on any violation."""
    root = Path(tempfile.mkdtemp(prefix=f"ferrymq-sim-{seed}-"))
    trace: list[str] = []
    rng = random.Random(seed)
    ws = worlds()
    at = 0
    try:
        node = Node(root, seed, log_factory=log_factory)
        trace += node.start(ws)
        for at in range(1, steps + 1):
            line = _step(node, ws, rng, crashes)
            if line:
                trace.append(f"{at} {line}")
        at = steps + 1
        _drain(node, ws, rng)
        for w in ws:
            w.final_check()
    except Exception as exc:  # any failure at all is reported with its seed
        raise SimFailure(seed, steps, at, exc, trace[-TAIL_LINES:], trace) from exc
    finally:
        for w in ws:
            w.close()
        shutil.rmtree(root, ignore_errors=True)
    digest = hashlib.sha256("\n".join(trace).encode()).hexdigest()
    counts: dict[str, int] = {}
    for w in ws:
        for key, value in getattr(w, "counts", lambda: {})().items():
            counts[f"{w.name}.{key}"] = value
    return SimResult(seed, steps, digest, node.incarnation, counts, trace)


def _step(node: Node, worlds: list[World], rng: random.Random, crashes: bool) -> str | None:
    kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
    if kind in ("amqp", "kafka"):
        world = next((w for w in worlds if w.name == kind), None)
        return world.step(rng) if world is not None else None
    if kind == "flush":
        node.flush()
        return None
    if kind == "commit":
        return "commit returns" if node.complete_commit() else None
    if kind == "tick":
        ms = rng.choice((1, 10, 100, 1000))
        node.tick(ms)
        return f"tick +{ms} ms"
    if not crashes:
        return None
    return "POWER LOSS: " + " | ".join(node.crash(rng))


def _drain(node: Node, worlds: list[World], rng: random.Random) -> None:
    for _ in range(DRAIN_STEPS):
        quiet = [w.drain_step(rng) for w in worlds]
        node.flush()
        while node.complete_commit():
            pass
        if all(quiet):
            return
    raise AssertionError(f"the node did not settle within {DRAIN_STEPS} drain steps")


def run_seeds(first: int, count: int, steps: int, **kwargs: Any) -> list[SimResult]:
    return [run_seed(seed, steps, **kwargs) for seed in range(first, first + count)]
