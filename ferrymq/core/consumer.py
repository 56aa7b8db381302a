"""A consumer: a subscription of one channel to one queue, with its own credit."""

from __future__ import annotations

from typing import Any, Protocol

# The consumer sits below the queue and the channel (both hold consumers), so it imports neither:
# its queue is held opaquely (``Any``) for the channel that reads it back, and its channel is seen
# through the narrow ``Subscriber`` protocol below.


class Subscriber(Protocol):
    """What a consumer and its queue need of the channel that holds the consumer: credit, and a
    place to put a delivery. Declared here, below the channel, so the core has no import circle:
    the channel satisfies it, the queue and the consumer never import the channel."""

    deliverable: bool
    prefetch_global: int

    def has_credit(self) -> bool: ...

    def deliver(self, consumer: Consumer, queue: Any, entry: Any) -> None: ...

    def cancel_by_server(self, consumer: Consumer) -> None: ...


class Consumer:
    """Credit: ``prefetch`` (0 = unlimited) bounds this consumer's unacked deliveries; the
    channel's global prefetch bounds them all together (RabbitMQ's per_consumer_qos reading).
    """

    __slots__ = (
        "args",
        "channel",
        "exclusive",
        "no_ack",
        "prefetch",
        "priority",
        "queue",
        "tag",
        "timeout_ms",
        "unacked",
    )

    def __init__(
        self,
        tag: str,
        queue: Any,
        channel: Subscriber,
        *,
        no_ack: bool = False,
        exclusive: bool = False,
        priority: int = 0,
        prefetch: int = 0,
        timeout_ms: int | None = None,
        args: dict[str, Any] | None = None,
    ) -> None:
        self.tag = tag
        self.queue = queue
        self.channel = channel
        self.no_ack = no_ack
        self.exclusive = exclusive
        self.priority = priority
        self.prefetch = prefetch
        self.timeout_ms = timeout_ms
        self.args = args or {}
        self.unacked = 0

    def has_credit(self) -> bool:
        if self.no_ack:
            return self.channel.deliverable
        if self.prefetch and self.unacked >= self.prefetch:
            return False
        return self.channel.has_credit()

    def __repr__(self) -> str:
        return f"Consumer({self.tag!r} on {self.queue.name!r}, unacked={self.unacked})"
