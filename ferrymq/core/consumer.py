"""A consumer: a subscription of one channel to one queue, with its own credit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ferrymq.core.channel import Channel
    from ferrymq.core.queue import Queue


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
        queue: Queue,
        channel: Channel,
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
