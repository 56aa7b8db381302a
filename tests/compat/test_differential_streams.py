"""Stream queues over AMQP, differentially: the same pika calls on FerryMQ and on RabbitMQ 3.10
(whose stream queues the x-queue-type: stream front end follows) give the same outcomes."""

from __future__ import annotations

import uuid
from typing import Any

import pika
import pika.exceptions
import pytest

pytestmark = pytest.mark.rabbitmq
STREAM = {"x-queue-type": "stream"}


def _read(ch: Any, queue: str, offset: Any) -> list[tuple[bytes, int]]:
    ch.basic_qos(prefetch_count=10)
    got = []
    for method, props, body in ch.consume(queue, arguments={"x-stream-offset": offset},
                                          inactivity_timeout=1.5):
        if method is None:
            break
        got.append((body, props.headers["x-stream-offset"]))
        ch.basic_ack(method.delivery_tag)
    ch.cancel()
    return got


def _code(url: str, call: Any) -> int | None:
    """The reply code that closes the channel (or the connection) on ``call``; a connection each."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        call(conn.channel())
    except (pika.exceptions.ChannelClosedByBroker, pika.exceptions.ConnectionClosedByBroker) as exc:
        return exc.reply_code
    finally:
        if conn.is_open:
            conn.close()
    return None


def scenario(url: str) -> dict[str, Any]:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    q = f"ds-{uuid.uuid4().hex[:8]}"
    ch.queue_declare(q, durable=True, arguments=STREAM)
    ch.confirm_delivery()
    for i in range(5):
        ch.basic_publish("", q, b"m%d" % i, pika.BasicProperties(delivery_mode=2))
    out: dict[str, Any] = {
        "first": _read(ch, q, "first"),
        "from 3": _read(conn.channel(), q, 3),
        "non-durable": _code(url, lambda c: c.queue_declare(f"{q}-x", durable=False, arguments=STREAM)),
        "exclusive": _code(url, lambda c: c.queue_declare(f"{q}-y", durable=True, exclusive=True,
                                                           arguments=STREAM)),
        "auto-ack": _code(url, lambda c: (c.basic_qos(prefetch_count=5),
                                           c.basic_consume(q, lambda *a: None, auto_ack=True))),
        "no prefetch": _code(url, lambda c: (c.basic_qos(prefetch_count=0),
                                             c.basic_consume(q, lambda *a: None),
                                             c.connection.process_data_events(0.3))),
        "get": _code(url, lambda c: c.basic_get(q)),  # closes the connection (540) on RabbitMQ
    }
    conn.channel().queue_delete(q)
    conn.close()
    return out


def test_stream_queues_behave_as_on_rabbitmq(amqp_url, rabbitmq_url):
    ours, theirs = scenario(amqp_url), scenario(rabbitmq_url)
    assert ours == theirs, (ours, theirs)
    assert theirs["first"] == [(b"m%d" % i, i) for i in range(5)]
