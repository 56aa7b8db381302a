"""The Dramatiq side: a RabbitmqBroker with its default middleware and two actors, as a Dramatiq
user writes them. The worker command imports ``broker`` from here (configured by the environment
the runner sets); the runner builds its own client with ``make`` for each broker it measures.

    dramatiq ferrymq.bench.jobs.dramatiq_app:broker --processes 2 --threads 8 --queues Q
"""

from __future__ import annotations

import os
from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from ferrymq.bench.jobs import probe

URL_ENV, QUEUE_ENV = "FERRYMQ_JOBBENCH_URL", "FERRYMQ_JOBBENCH_QUEUE"


def noop() -> None:
    probe.record()


def stamp(enqueued_ns: int) -> None:
    probe.record(enqueued_ns)


def make(url: str, queue: str) -> tuple[RabbitmqBroker, dict[str, Any]]:
    """A broker (Dramatiq's defaults: no publisher confirms, persistent messages) and its actors."""
    b = RabbitmqBroker(url=url)
    # one decorator per actor: Dramatiq's decorator keeps the first actor's name for later calls
    actors = {fn.__name__: dramatiq.actor(broker=b, queue_name=queue, max_retries=0)(fn)
              for fn in (noop, stamp)}
    return b, actors


broker, actors = make(os.environ.get(URL_ENV, "amqp://guest:guest@127.0.0.1:5672/%2F"),
                      os.environ.get(QUEUE_ENV, "jobbench"))
dramatiq.set_broker(broker)
