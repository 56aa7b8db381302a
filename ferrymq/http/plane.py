"""What HTTP handlers read: the running broker's objects, gathered once at start-up.

Handlers get it as ``request.app[PLANE]``. They read core state directly (the loop is single-threaded,
so a handler sees a consistent snapshot between awaits) and change it only through the core's own
methods, as a front end does, then ask for a loop-turn end so effects go out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ferrymq.clock import Clock
    from ferrymq.config import Settings
    from ferrymq.core.broker import Broker
    from ferrymq.server.amqp.server import AMQPServer
    from ferrymq.server.commit import CommitPipeline
    from ferrymq.server.durability import Durability
    from ferrymq.server.kafka.server import KafkaServer
    from ferrymq.server.streams import Streams


@dataclass(slots=True)
class Plane:
    broker: Broker
    amqp: AMQPServer
    commit: CommitPipeline
    streams: Streams
    settings: Settings
    clock: Clock
    durability: Durability | None = None
    kafka: KafkaServer | None = None

    def end_turn(self) -> None:
        """Effects a handler caused (deliveries after a publish, a purge) go out this loop turn."""
        self.commit.request_turn_end()


PLANE = web.AppKey("plane", Plane)
