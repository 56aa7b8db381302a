"""A super stream declared over AMQP 0-9-1 as RabbitMQ's docs declare one (exchange with x-super-stream,
stream queues S-0 .. S-2 bound with keys "0".."2" and x-stream-partition-order), differentially: pika
and the management API see the same on FerryMQ and on RabbitMQ (3.10 keeps the same objects, without
the stream-protocol features that read them)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pika
import pika.exceptions
import pytest
import requests

from ferrymq.bench.rabbitmq_node import available, start_rabbitmq
from ferrymq.testing import EmbeddedBroker
from tests.support.stream_reads import read_stream

pytestmark = pytest.mark.rabbitmq
STREAM = {"x-queue-type": "stream"}
AUTH = ("guest", "guest")


@pytest.fixture(scope="module")
def rabbit() -> Iterator[tuple[str, str]]:
    if not available():
        pytest.skip("rabbitmq-server not installed: differential tests against RabbitMQ skipped")
    node = start_rabbitmq(management=True)
    try:
        yield node.amqp_url, node.management_url
    finally:
        node.stop()


@pytest.fixture(scope="module")
def ours() -> Iterator[tuple[str, str]]:
    with EmbeddedBroker() as b:
        yield b.amqp_url, b.http_url


def _read(ch: Any, queue: str, limit: int) -> list[tuple[bytes, str, int]]:
    return [(r.body, r.routing_key, r.offset) for r in read_stream(ch, queue, limit)]


def _management(http: str, s: str) -> dict[str, Any]:
    ex = requests.get(f"{http}/api/exchanges/%2F/{s}", auth=AUTH, timeout=10).json()
    queue = requests.get(f"{http}/api/queues/%2F/{s}-1", auth=AUTH, timeout=10).json()
    bindings = requests.get(f"{http}/api/exchanges/%2F/{s}/bindings/source", auth=AUTH, timeout=10).json()
    return {
        "exchange": {k: ex[k] for k in ("type", "durable", "auto_delete", "internal", "arguments")},
        "queue": {k: queue[k] for k in ("type", "durable", "auto_delete", "exclusive", "arguments")},
        "bindings": sorted((b["destination"].removeprefix(s), b["destination_type"], b["routing_key"],
                            b["arguments"]) for b in bindings),
    }


def scenario(amqp_url: str, http: str) -> dict[str, Any]:
    s = f"ss-{uuid.uuid4().hex[:8]}"
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    ch.exchange_declare(s, "direct", durable=True, arguments={"x-super-stream": True})
    for i in range(3):
        ch.queue_declare(f"{s}-{i}", durable=True, arguments=STREAM)
        ch.queue_bind(f"{s}-{i}", s, str(i), arguments={"x-stream-partition-order": i})
    ch.confirm_delivery()
    for i in range(6):
        ch.basic_publish(s, str(i % 3), b"m%d" % i, pika.BasicProperties(delivery_mode=2))
    out: dict[str, Any] = {f"partition {i}": _read(conn.channel(), f"{s}-{i}", 3) for i in range(3)}
    out["management"] = _management(http, s)
    ch.exchange_delete(s)
    out["after exchange delete"] = ch.queue_declare(f"{s}-1", passive=True).method.message_count
    for i in range(3):
        ch.queue_delete(f"{s}-{i}")
    conn.close()
    return out


def test_a_super_stream_declared_over_amqp_looks_as_on_rabbitmq(ours, rabbit):
    mine, theirs = scenario(*ours), scenario(*rabbit)
    assert mine == theirs, (mine, theirs)
    assert theirs["partition 1"] == [(b"m1", "1", 0), (b"m4", "1", 1)]
