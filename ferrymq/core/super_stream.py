"""Super streams: RabbitMQ's partitioned streams (3.11+) as the AMQP face of a Kafka topic with N
partitions.

A super stream ``S`` is a durable direct exchange ``S`` with the argument ``x-super-stream: true``;
its partitions are the stream queues ``S-0`` .. ``S-(N-1)``, bound to it with the routing keys "0" ..
"N-1" and the binding argument ``x-stream-partition-order`` (the partition's number), as
``rabbitmq-streams add_super_stream S --partitions N`` makes them. Here partition queue ``S-i`` reads and
appends partition ``i`` of topic ``S``. Which partition a queue is comes from its name (``S-<i>``) or,
as some clients declare it, its own ``x-stream-partition-order`` argument; the exchange must exist
first (as every client that declares a super stream over AMQP 0-9-1 does it).
"""

from __future__ import annotations

from typing import Any, Protocol

SUPER_STREAM_ARG = "x-super-stream"
PARTITION_ORDER_ARG = "x-stream-partition-order"
MAX_PARTITIONS = 10_000  # a partition number past this is a typo, not a plan: refused, not created


class HasArguments(Protocol):
    arguments: dict[str, Any]


def is_super_stream(exchange: HasArguments | None) -> bool:
    """RabbitMQ marks the exchange with a bool; the management UI and CLIs may send the text."""
    return exchange is not None and exchange.arguments.get(SUPER_STREAM_ARG) in (True, "true")


def partition_queue(super_stream: str, partition: int) -> str:
    return f"{super_stream}-{partition}"


def partition_binding(partition: int) -> tuple[str, dict[str, Any]]:
    """(routing key, binding arguments) of one partition, as RabbitMQ binds it by default."""
    return str(partition), {PARTITION_ORDER_ARG: partition}


def _number(value: object) -> int | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str) and value.isascii() and value.isdigit() and str(int(value)) == value:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def split_partition(name: str) -> tuple[str, int] | None:
    """("S", 3) for "S-3": the super stream and partition a partition queue's name says."""
    base, dash, tail = name.rpartition("-")
    number = _number(tail) if dash and base else None
    return None if number is None else (base, number)


def partition_of(exchanges: dict[str, Any], name: str, arguments: dict[str, Any]) -> tuple[str, int] | None:
    """(topic, partition) when the stream queue ``name`` is a partition of a super stream declared in
    ``exchanges`` (one vhost's); None when no super stream says so (the stream backend may still find
    it a partition of a multi-partition topic: ferrymq.server.amqp.streams)."""
    base = name.rpartition("-")[0]
    if not base or not is_super_stream(exchanges.get(base)):
        return None
    order = _number(arguments.get(PARTITION_ORDER_ARG))
    if order is not None:
        return base, order
    split = split_partition(name)
    return split if split is not None and split[0] == base else None
