"""What every Kafka request handler shares: its signature, kio decoding, the reply, and the broker's
own address as clients must see it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ferrymq.protocols.kafka.entities import decode_request, encode_response
from ferrymq.protocols.kafka.primitives import Reader
from ferrymq.server.kafka.connection import KafkaConnection, Slot

Handler = Callable[[KafkaConnection, Slot, Any], None]
NODE_ID = 0


def request_body(ctx: Any) -> memoryview:
    r: Reader = ctx[1]
    return memoryview(r.buf)[r.pos : r.end]


def decoded(fn: Callable[[KafkaConnection, Slot, Any], None]) -> Handler:
    """A handler of kio's decoded request (the rare APIs; Produce and Fetch decode their own)."""
    def handler(conn: KafkaConnection, slot: Slot, ctx: Any) -> None:
        fn(conn, slot, decode_request(slot.api_key, slot.version, request_body(ctx)))
    return handler


def reply(slot: Slot, values: dict[str, Any]) -> None:
    slot.reply(encode_response(slot.api_key, slot.version, values))


def broker_info(conn: KafkaConnection) -> dict[str, Any]:
    """Advertise the configured address (Kafka's advertised.listeners), else the address this client
    reached us on and the port actually bound."""
    s = conn.server.settings
    port = conn.local_port if conn.tls else s.kafka_advertised_port or conn.server.port  # SSL: its own
    return {"node_id": NODE_ID, "host": s.kafka_advertised_host or conn.local_host, "port": port,
            "rack": None}
