"""A published message: immutable publish data shared by every queue it is routed to.

Per-queue state (position, delivery count, expiry) lives in the queue's own entry, so one
publish routed to N queues costs one Message and N small entries.
"""

from __future__ import annotations

from ferrymq.core.properties import EMPTY_PROPERTIES, Properties


class Message:
    """``raw_props`` is the property section of the content header exactly as received (flags
    onward); front ends send it through untouched. None means ``props`` changed and must be
    encoded again. ``trace`` is None unless the message is traced (ferrymq.core.trace).
    """

    __slots__ = ("body", "exchange", "persistent", "props", "raw_props", "routing_key", "trace")

    def __init__(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        props: Properties = EMPTY_PROPERTIES,
        raw_props: bytes | None = b"\x00\x00",
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.body = body
        self.props = props
        self.raw_props = raw_props
        self.persistent = props.delivery_mode == 2
        self.trace: int | None = None  # a sampled message's trace id (ferrymq.core.trace)

    @property
    def size(self) -> int:
        return len(self.body)

    def with_props(self, props: Properties, exchange: str, routing_key: str) -> Message:
        """A copy with new properties and routing (dead-lettering republishes this way)."""
        return Message(exchange, routing_key, self.body, props, None)

    def __repr__(self) -> str:
        return f"Message({self.exchange!r}, {self.routing_key!r}, {len(self.body)}B)"
