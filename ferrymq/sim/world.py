"""What one protocol model offers the simulator: a small interface, one module per protocol.

A world owns its clients and its front end on the node; the node (``node.Node``) owns the broker, the
clock, the commit pipeline and the stores, and calls every world at each turn's end, crash and restart.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ferrymq.sim.node import Node


class World(Protocol):
    name: str

    def restarted(self, node: Node) -> list[str]:
        """A node incarnation began (recovery has run): rebuild the front end, check what recovery
        kept. Returns trace lines."""
        ...

    def step(self, rng: random.Random) -> str | None:
        """One seeded client operation or network delivery; its trace line (None: nothing to do)."""
        ...

    def drain_effects(self) -> None:
        """The first half of a turn's end: core effects become protocol output (replies held here)."""
        ...

    def write_out(self) -> None:
        """The second half: output goes onto the network."""
        ...

    def crash(self, rng: random.Random) -> list[str]:
        """Power loss: connections die, this world's stores lose what was not fsynced."""
        ...

    def drain_step(self, rng: random.Random) -> bool:
        """One step of the final drain (no more crashes); True once nothing is left to settle."""
        ...

    def final_check(self) -> None: ...

    def close(self) -> None: ...
