"""Stream queues over AMQP (x-queue-type: stream) on the Kafka logs: offsets, credit, interop with
Kafka clients both ways, durability, and RabbitMQ's refusals."""

from __future__ import annotations

import tempfile
import time
from typing import Any

import pika
import pika.exceptions
import pytest
from kafka import KafkaConsumer, KafkaProducer

from ferrymq.testing import EmbeddedBroker

PERSISTENT = pika.BasicProperties(delivery_mode=2, content_type="text/plain")
STREAM = {"x-queue-type": "stream"}


@pytest.fixture(scope="module")
def broker():
    with EmbeddedBroker() as b:
        yield b


def _channel(broker: EmbeddedBroker) -> Any:
    return pika.BlockingConnection(pika.URLParameters(broker.amqp_url)).channel()


def _consume(ch: Any, queue: str, offset: Any, limit: int = 100, prefetch: int = 10) -> list[Any]:
    ch.basic_qos(prefetch_count=prefetch)
    got = []
    for method, props, body in ch.consume(queue, arguments={"x-stream-offset": offset},
                                          inactivity_timeout=1):
        if method is None:
            break
        got.append((body, props.headers["x-stream-offset"], method.redelivered))
        ch.basic_ack(method.delivery_tag)
        if len(got) == limit:
            break
    ch.cancel()
    return got


def test_consumers_read_from_first_an_offset_and_next_without_removing(broker):
    ch = _channel(broker)
    ch.queue_declare("s-offsets", durable=True, arguments=STREAM)
    ch.confirm_delivery()
    for i in range(5):
        ch.basic_publish("", "s-offsets", b"m%d" % i, PERSISTENT)
    assert [(b, o) for b, o, _ in _consume(ch, "s-offsets", "first")] == [
        (b"m0", 0), (b"m1", 1), (b"m2", 2), (b"m3", 3), (b"m4", 4)]
    assert [b for b, _, _ in _consume(ch, "s-offsets", 3)] == [b"m3", b"m4"]
    assert _consume(ch, "s-offsets", "next") == []
    assert [b for b, _, _ in _consume(ch, "s-offsets", "last")] == [b"m4"]
    assert ch.queue_declare("s-offsets", durable=True, arguments=STREAM).method.message_count == 5


def test_a_consumer_gets_no_more_than_its_prefetch_until_it_acks(broker):
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.queue_declare("s-credit", durable=True, arguments=STREAM)
    ch.confirm_delivery()
    for i in range(10):
        ch.basic_publish("", "s-credit", b"%d" % i, PERSISTENT)
    ch.basic_qos(prefetch_count=3)
    seen: list[Any] = []
    ch.basic_consume("s-credit", lambda c, m, p, b: seen.append(m), arguments={"x-stream-offset": "first"})
    conn.process_data_events(0.5)
    assert len(seen) == 3
    ch.basic_ack(seen[-1].delivery_tag, multiple=True)
    conn.process_data_events(0.5)
    assert len(seen) == 6
    conn.close()


def test_a_live_consumer_receives_new_publishes(broker):
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.queue_declare("s-live", durable=True, arguments=STREAM)
    ch.basic_qos(prefetch_count=10)
    seen: list[bytes] = []
    ch.basic_consume("s-live", lambda c, m, p, b: (seen.append(b), c.basic_ack(m.delivery_tag)))
    pub = _channel(broker)
    pub.basic_publish("", "s-live", b"hello", PERSISTENT)
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        conn.process_data_events(0.05)
    assert seen == [b"hello"]
    conn.close()


def test_amqp_publishes_are_kafka_records_and_kafka_records_are_amqp_messages(broker):
    ch = _channel(broker)
    ch.queue_declare("s-interop", durable=True, arguments=STREAM)
    ch.confirm_delivery()
    ch.basic_publish("", "s-interop", b"from amqp", pika.BasicProperties(
        delivery_mode=2, content_type="application/json", message_id="m-1", headers={"tenant": "acme"}))
    consumer = KafkaConsumer("s-interop", bootstrap_servers=broker.kafka_bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=3000)
    records = list(consumer)
    consumer.close()
    assert [(r.offset, r.key, r.value) for r in records] == [(0, b"s-interop", b"from amqp")]
    headers = dict(records[0].headers)
    assert headers["amqp.content_type"] == b"application/json" and headers["tenant"] == b"acme"
    producer = KafkaProducer(bootstrap_servers=broker.kafka_bootstrap, compression_type="gzip")
    producer.send("s-interop", key=b"user-7", value=b"from kafka", headers=[("amqp.message_id", b"k-1"),
                                                                          ("trace", b"\xff\x00")])
    producer.flush()
    producer.close()
    ch.basic_qos(prefetch_count=5)
    for method, props, body in ch.consume("s-interop", arguments={"x-stream-offset": 1},
                                          inactivity_timeout=3):
        assert method is not None
        assert (body, method.routing_key, props.message_id) == (b"from kafka", "user-7", "k-1")
        assert props.headers["trace"] == b"\xff\x00" and props.headers["x-stream-offset"] == 1
        ch.basic_ack(method.delivery_tag)
        break
    ch.cancel()
    # and the AMQP message read back over AMQP has its properties again
    ch.basic_qos(prefetch_count=5)
    for _method, props, body in ch.consume("s-interop", arguments={"x-stream-offset": "first"},
                                           inactivity_timeout=3):
        assert (body, props.content_type, props.message_id, props.headers["tenant"]) == (
            b"from amqp", "application/json", "m-1", "acme")
        break


def test_an_exchange_routes_into_a_stream(broker):
    ch = _channel(broker)
    ch.exchange_declare("s-fan", "fanout", durable=True)
    ch.queue_declare("s-routed", durable=True, arguments=STREAM)
    ch.queue_bind("s-routed", "s-fan")
    ch.confirm_delivery()
    ch.basic_publish("s-fan", "any", b"routed", PERSISTENT)
    assert [b for b, _, _ in _consume(ch, "s-routed", "first")] == [b"routed"]


@pytest.mark.parametrize(("call", "code"), [
    (lambda ch: ch.queue_declare("s-bad", durable=False, arguments=STREAM), 406),
    (lambda ch: ch.queue_declare("s-bad", durable=True, exclusive=True, arguments=STREAM), 406),
    (lambda ch: ch.basic_get("s-refusals"), 540),
    (lambda ch: (ch.basic_qos(prefetch_count=0),
                 ch.basic_consume("s-refusals", lambda *a: None)), 406),
    (lambda ch: (ch.basic_qos(prefetch_count=5),
                 ch.basic_consume("s-refusals", lambda *a: None, auto_ack=True)), 540),
])
def test_what_rabbitmq_refuses_on_streams_is_refused(broker, call, code):
    ch = _channel(broker)
    ch.queue_declare("s-refusals", durable=True, arguments=STREAM)
    with pytest.raises((pika.exceptions.ChannelClosedByBroker,
                        pika.exceptions.ConnectionClosedByBroker)) as err:
        call(ch)
    assert err.value.reply_code == code


def test_stream_queue_and_its_messages_survive_a_restart():
    with tempfile.TemporaryDirectory() as data:
        with EmbeddedBroker(data_dir=data) as b:
            ch = _channel(b)
            ch.queue_declare("s-durable", durable=True, arguments=STREAM)
            ch.confirm_delivery()
            for i in range(3):
                ch.basic_publish("", "s-durable", b"%d" % i, PERSISTENT)
        with EmbeddedBroker(data_dir=data) as b:
            ch = _channel(b)
            assert [bd for bd, _, _ in _consume(ch, "s-durable", "first")] == [b"0", b"1", b"2"]
            ch.queue_delete("s-durable")
            consumer = KafkaConsumer(bootstrap_servers=b.kafka_bootstrap)
            assert "s-durable" not in consumer.topics()
            consumer.close()


def test_stream_retention_arguments_become_the_topics_configs(broker):
    ch = _channel(broker)
    ch.queue_declare("s-retained", durable=True, arguments={
        **STREAM, "x-max-age": "7D", "x-max-length-bytes": 10_000_000,
        "x-stream-max-segment-size-bytes": 1_000_000})
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.kafka_bootstrap)
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "s-retained")])
    admin.close()
    configs = {k: v["value"] for k, v in described["topic"]["s-retained"].items()}
    assert (configs["retention.ms"], configs["retention.bytes"], configs["segment.bytes"]) == (
        str(7 * 86_400_000), "10000000", "1000000")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
        ch.queue_declare("s-bad-age", durable=True, arguments={**STREAM, "x-max-age": "soon"})
    assert err.value.reply_code == 406
