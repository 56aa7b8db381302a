"""Deprecated import path, kept so ``scripts/backlog.py`` runs unchanged: the one wire layer is
``ferrymq.bench.amqp_wire``; these names are thin aliases over it."""

from __future__ import annotations

from typing import Any

from ferrymq.bench.amqp_wire import BASIC_ACK as ACK
from ferrymq.bench.amqp_wire import BASIC_DELIVER as DELIVER
from ferrymq.bench.amqp_wire import BASIC_NACK as NACK
from ferrymq.bench.amqp_wire import HEAD, RECV_BYTES, TS, Client, PublishTemplate
from ferrymq.bench.amqp_wire import TAG_BIT as TAG_BITS
from ferrymq.bench.amqp_wire import U32 as CM
from ferrymq.bench.amqp_wire import ack_frame as _ack_frame

__all__ = ["ACK", "CM", "DELIVER", "HEAD", "NACK", "RECV_BYTES", "TAG_BITS", "TS", "Wire", "ack_frame",
           "publish_template", "qos_and_consume"]


class Wire(Client):
    """A blocking connection without a socket timeout (as the old one), one channel."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.sock.settimeout(None)

    def declare(self, queue: str, durable: bool) -> None:
        self.declare_queue(queue, durable)

    def expect(self, kind: type) -> Any:
        return self.wait_for(kind)


def publish_template(queue: str, size: int, persistent: bool) -> tuple[bytes, bytes]:
    """(frames before the 8-byte send time, frames after it) for one publish to ``queue``."""
    t = PublishTemplate(queue, size, persistent=persistent)
    return t.prefix, t.suffix


def ack_frame(tag: int, multiple: bool) -> bytes:
    return _ack_frame(tag, multiple)


def qos_and_consume(wire: Wire, queue: str, prefetch: int) -> None:
    wire.consume(queue, prefetch, tag="bench")
