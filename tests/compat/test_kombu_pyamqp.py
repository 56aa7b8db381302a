"""kombu (on py-amqp) and py-amqp directly against FerryMQ."""

from __future__ import annotations

import uuid

import amqp
import kombu


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_kombu_simple_queue_round_trip(amqp_url):
    url = amqp_url.replace("amqp://", "pyamqp://")
    with kombu.Connection(url) as conn:
        q = conn.SimpleQueue(_name("simple"))
        q.put({"hello": "world"})
        message = q.get(timeout=5)
        assert message.payload == {"hello": "world"}
        message.ack()
        q.close()


def test_kombu_producer_consumer_with_queue_arguments(amqp_url):
    url = amqp_url.replace("amqp://", "pyamqp://")
    exchange = kombu.Exchange(_name("tasks"), type="direct")
    queue = kombu.Queue(_name("q"), exchange, routing_key="work", max_priority=10,
                        message_ttl=60, expires=120)
    got = []
    with kombu.Connection(url) as conn:
        with conn.Producer() as producer:
            for p in (1, 9, 5):
                producer.publish({"p": p}, exchange=exchange, routing_key="work", priority=p,
                                 declare=[queue], retry=False)
        with conn.Consumer(queue, callbacks=[lambda body, m: (got.append(body["p"]), m.ack())]):
            while len(got) < 3:
                conn.drain_events(timeout=5)
    assert got == [9, 5, 1]


def test_pyamqp_confirm_and_get(amqp_url):
    conn = amqp.Connection(f"127.0.0.1:{amqp_url.rsplit(':', 1)[1].split('/')[0]}",
                           userid="guest", password="guest", confirm_publish=True)
    conn.connect()
    try:
        ch = conn.channel()
        q = _name("q")
        ch.queue_declare(q, auto_delete=False)
        ch.basic_publish(amqp.Message(b"hi", application_headers={"k": "v"}), routing_key=q)
        msg = ch.basic_get(q)
        assert msg.body == b"hi" and msg.headers == {"k": "v"}
        ch.basic_ack(msg.delivery_tag)
    finally:
        conn.close()
