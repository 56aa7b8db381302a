"""/metrics over a real scrape: pika and kafka-python move messages, prometheus_client parses the text."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pika
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ferrymq import EmbeddedBroker

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def scrape(broker: EmbeddedBroker, path: str = "/metrics") -> Samples:
    resp = requests.get(broker.http_url + path, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    out: Samples = {}
    for fam in text_string_to_metric_families(resp.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def q(samples: Samples, name: str, queue: str, vhost: str = "/") -> float:
    return samples[(name, (("queue", queue), ("vhost", vhost)))]


def wait_for(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_scrape_follows_publish_deliver_ack_and_dead_letters(broker: EmbeddedBroker) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.exchange_declare("m.dlx", "fanout")
    ch.queue_declare("m.dlq")
    ch.queue_bind("m.dlq", "m.dlx")
    ch.queue_declare("m.work", arguments={"x-dead-letter-exchange": "m.dlx"})
    before = scrape(broker)
    assert q(before, "rabbitmq_queue_messages_ready", "m.work") == 0
    for i in range(5):
        ch.basic_publish("", "m.work", f"m{i}".encode())
    ch.basic_publish("", "m.nowhere", b"lost")
    wait_for(lambda: q(scrape(broker), "rabbitmq_queue_messages_ready", "m.work") == 5)
    s = scrape(broker)
    assert q(s, "rabbitmq_queue_messages_published_total", "m.work") == 5
    assert q(s, "rabbitmq_queue_messages", "m.work") == 5
    assert q(s, "ferrymq_queue_oldest_message_age_seconds", "m.work") >= 0
    assert s[("rabbitmq_global_messages_unroutable_dropped_total", (("protocol", "amqp091"),))] >= 1
    assert ("ferrymq_queue_time_in_queue_seconds_count", (("queue", "m.work"), ("vhost", "/"))) not in s

    time.sleep(0.3)  # the sampled message (the first) waits at least this long
    got = [ch.basic_get("m.work") for _ in range(3)]
    s = scrape(broker)
    assert q(s, "rabbitmq_queue_messages_ready", "m.work") == 2
    assert q(s, "rabbitmq_queue_messages_unacked", "m.work") == 3
    assert q(s, "ferrymq_queue_time_in_queue_seconds_count", "m.work") == 1  # one in 8: seq 0
    assert 0.3 <= q(s, "ferrymq_queue_time_in_queue_seconds_sum", "m.work") < 5
    assert ("ferrymq_queue_time_in_queue_seconds_bucket", (("le", "0.25"), ("queue", "m.work"),
                                                           ("vhost", "/"))) in s
    assert s[("ferrymq_queue_time_in_queue_seconds_bucket", (("le", "0.25"), ("queue", "m.work"),
                                                             ("vhost", "/")))] == 0

    ch.basic_ack(got[0][0].delivery_tag)
    ch.basic_reject(got[1][0].delivery_tag, requeue=False)
    ch.basic_reject(got[2][0].delivery_tag, requeue=True)
    redelivered = ch.basic_get("m.work")
    ch.basic_ack(redelivered[0].delivery_tag)
    s = scrape(broker, "/metrics/per-object")
    assert q(s, "rabbitmq_queue_messages_unacked", "m.work") == 0
    assert q(s, "rabbitmq_queue_messages_ready", "m.work") == 2
    assert q(s, "ferrymq_queue_messages_dead_lettered_total", "m.work") == 1
    assert q(s, "ferrymq_queue_messages_redelivered_total", "m.work") == 1
    assert q(s, "ferrymq_queue_messages_acked_total", "m.work") == 2
    assert q(s, "ferrymq_dlq_messages", "m.dlq") == 1
    assert ("ferrymq_dlq_messages", (("queue", "m.work"), ("vhost", "/"))) not in s
    classic = (("protocol", "amqp091"), ("queue_type", "rabbit_classic_queue"))
    assert s[("rabbitmq_global_messages_redelivered_total", classic)] >= 1
    assert s[("rabbitmq_global_messages_acknowledged_total", classic)] >= 2
    assert s[("rabbitmq_connections", ())] >= 1
    assert s[("rabbitmq_queues", ())] >= 2
    conn.close()


def test_fsync_histogram_counts_commits_of_persistent_publishes(broker: EmbeddedBroker) -> None:
    before = scrape(broker)[("ferrymq_fsync_latency_seconds_count", ())]
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare("m.durable", durable=True)
    for _ in range(3):
        ch.basic_publish("", "m.durable", b"x", pika.BasicProperties(delivery_mode=2))
    conn.close()
    s = scrape(broker)
    assert s[("ferrymq_fsync_latency_seconds_count", ())] > before
    assert s[("ferrymq_group_commit_size_count", ())] > 0
    wait_for(lambda: scrape(broker)[("ferrymq_event_loop_lag_seconds_count", ())] > 0)


def test_consumer_group_lag_after_a_partial_commit(broker: EmbeddedBroker) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    producer = KafkaProducer(bootstrap_servers=broker.kafka_bootstrap)
    for i in range(10):
        producer.send("m-topic", f"r{i}".encode(), partition=0)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.kafka_bootstrap, group_id="m-group",
                             enable_auto_commit=False)
    tp = TopicPartition("m-topic", 0)
    consumer.assign([tp])
    consumer.commit({tp: OffsetAndMetadata(4, "")})
    consumer.close()
    s = scrape(broker)
    key = ("ferrymq_kafka_consumergroup_lag", (("group", "m-group"), ("partition", "0"),
                                                ("topic", "m-topic")))
    assert s[key] == 6


def test_label_values_are_escaped_as_the_text_format_wants(broker: EmbeddedBroker) -> None:
    name = 'm.we"ird\\name\nx'  # declared in the core: pamqp refuses such names on the wire
    assert broker.running is not None
    core = broker.running.broker
    broker.call(lambda: core.vhosts["/"].declare_queue(name, connection=None))
    s = scrape(broker)
    assert q(s, "rabbitmq_queue_messages_ready", name) == 0
    assert q(s, "ferrymq_queue_oldest_message_age_seconds", name) == 0
