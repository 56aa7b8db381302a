"""The simulated broker node: one Broker (the real core) on a ManualClock, one commit pipeline,
durable topology and faulty stores that outlive its incarnations; worlds plug their front ends in.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ferrymq.clock import ManualClock, Rng
from ferrymq.core.broker import Broker
from ferrymq.sim.commit import SimCommit
from ferrymq.sim.topology import SimTopology
from ferrymq.sim.world import World
from ferrymq.storage.faulty import FaultyLog


class Node:
    def __init__(self, root: Path, seed: int, log_factory: Any = FaultyLog) -> None:
        self.root = root
        self.clock = ManualClock()
        self._core_rng = Rng(seed)  # the broker's own randomness (generated names), seeded too
        self.commit = SimCommit()
        self.topology = SimTopology(root / "queues", self.commit, log_factory=log_factory)
        (root / "queues").mkdir(parents=True, exist_ok=True)
        self.worlds: list[World] = []
        self.incarnation = 0
        self.broker = self._boot()

    def _boot(self) -> Broker:
        self.commit = SimCommit()
        self.topology.new_incarnation(self.commit)
        broker = Broker(self.clock, self._core_rng, topology=self.topology)
        self.recovered = self.topology.recover(broker)
        return broker

    def start(self, worlds: list[World]) -> list[str]:
        self.worlds = worlds
        return [line for w in worlds for line in w.restarted(self)]

    def log_key(self, queue: str) -> int:
        flog = self.topology.logs.get(("/", queue))
        return id(flog) if flog is not None else 0

    # --- the turn --------------------------------------------------------------------------------

    def flush(self) -> None:
        """A loop turn's end, as the server's: drain effects, write the queue logs (a commit may
        start), write every connection's output."""
        for w in self.worlds:
            w.drain_effects()
        self.commit.end_of_turn()
        for w in self.worlds:
            w.write_out()

    def complete_commit(self) -> bool:
        if not self.commit.complete_commit():
            return False
        self.flush()  # released replies go out in the turn the commit's return schedules
        return True

    def tick(self, ms: int) -> None:
        self.clock.advance(ms)
        self.broker.tick()

    # --- power ------------------------------------------------------------------------------------

    def crash(self, rng: random.Random) -> list[str]:
        """Power loss, then a restart that recovers from what the stores kept."""
        lines = [line for w in self.worlds for line in w.crash(rng)]
        lines += self.topology.crash(rng)
        self.incarnation += 1
        self.broker = self._boot()
        lines.append(f"restart #{self.incarnation}: {self.recovered} queued message(s) recovered")
        return lines + [line for w in self.worlds for line in w.restarted(self)]
