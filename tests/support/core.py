"""Small builders for core tests: a broker on a manual clock and readable effects."""

from __future__ import annotations

from typing import Any

from ferrymq.clock import ManualClock, Rng
from ferrymq.core.broker import Broker
from ferrymq.core.channel import CONFIRM, DELIVER, Channel
from ferrymq.core.message import Message
from ferrymq.core.properties import Properties


def new_broker(**kwargs: Any) -> tuple[Broker, ManualClock]:
    clock = ManualClock()
    return Broker(clock, Rng(7), **kwargs), clock


def open_channel(broker: Broker, number: int = 1, connection: object | None = None) -> Channel:
    conn = connection if connection is not None else object()
    return broker.open_channel(broker.vhosts["/"], number, conn, "guest")


def msg(body: bytes | str = b"x", routing_key: str = "q", exchange: str = "", **props: Any) -> Message:
    data = body.encode() if isinstance(body, str) else body
    return Message(exchange, routing_key, data, Properties(**props), None)


def deliveries(ch: Channel) -> list[tuple[str, int, bool, bytes]]:
    """(consumer_tag, delivery_tag, redelivered, body) of pending deliveries; clears the outbox."""
    out = [(e[1], e[2], e[3], e[6].body) for e in ch.outbox if e[0] == DELIVER]
    ch.outbox.clear()
    return out


def confirms(ch: Channel) -> list[tuple[int, bool]]:
    out = [(e[1], e[2]) for e in ch.outbox if e[0] == CONFIRM]
    ch.outbox.clear()
    return out


def publish(ch: Channel, body: bytes | str, routing_key: str = "q", exchange: str = "",
            mandatory: bool = False, **props: Any) -> None:
    ch.publish(exchange, routing_key, mandatory, msg(body, routing_key, exchange, **props))
