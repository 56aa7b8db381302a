"""The Dramatiq side: a RabbitmqBroker with its default middleware and two actors, as a Dramatiq
user writes them. The worker command imports ``broker`` from here (configured by the environment
the runner sets); the runner builds its own client with ``make`` for each broker it measures.

    dramatiq ferrymq.bench.jobs.dramatiq_app:broker --processes 2 --threads 8 --queues Q
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from ferrymq.bench.jobs import probe


def make(url: str, queue: str) -> tuple[RabbitmqBroker, dict[str, Any]]:
    """A broker (Dramatiq's defaults: no publisher confirms, persistent messages) and its actors."""
    b = RabbitmqBroker(url=url)
    # one decorator per actor: Dramatiq's decorator keeps the first actor's name for later calls
    actors = {fn.__name__: dramatiq.actor(broker=b, queue_name=queue, max_retries=0)(fn)
              for fn in (probe.noop, probe.stamp)}
    return b, actors


broker, actors = make(*probe.settings())
dramatiq.set_broker(broker)
