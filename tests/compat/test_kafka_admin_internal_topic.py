"""``__consumer_offsets`` as Kafka shows it: listed by Metadata as an internal topic (librdkafka's
list_topics, describe_topics and kcat see it), readable, and refused to clients that produce to it,
deleting it or changing it, and AMQP cannot declare a stream queue of its name."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pika
import pika.exceptions
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

pytestmark = pytest.mark.timeout(60)
OFFSETS = "__consumer_offsets"


def test_list_and_describe_topics_show_it_as_internal(ferry):
    admin = AdminClient({"bootstrap.servers": ferry.kafka_bootstrap})
    assert OFFSETS in admin.list_topics(timeout=10).topics
    desc = admin.describe_topics(TopicCollection([OFFSETS]))[OFFSETS].result(10)
    assert desc.is_internal and len(desc.partitions) == 1


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
def test_kcat_lists_it(ferry):
    done = subprocess.run(["kcat", "-b", ferry.kafka_bootstrap, "-L", "-J"], capture_output=True,
                          text=True, timeout=30, check=True)
    assert OFFSETS in [t["topic"] for t in json.loads(done.stdout)["topics"]]


def test_clients_cannot_produce_to_it(ferry):
    errors: list = []
    p = Producer({"bootstrap.servers": ferry.kafka_bootstrap})
    p.produce(OFFSETS, value=b"x", on_delivery=lambda e, m: errors.append(e))
    p.flush(10)
    assert errors[0] is not None and errors[0].code() == KafkaError.TOPIC_EXCEPTION


def test_committed_offsets_are_readable_from_it(ferry):
    c = Consumer({"bootstrap.servers": ferry.kafka_bootstrap, "group.id": "reader-of-offsets",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.commit(offsets=[TopicPartition(OFFSETS, 0, 0)], asynchronous=False)  # a commit lands in it
    c.assign([TopicPartition(OFFSETS, 0, 0)])
    keys: list = []
    deadline = time.monotonic() + 10
    while not any(b"reader-of-offsets" in k for k in keys) and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            keys.append(m.key())
    c.close()
    assert any(b"reader-of-offsets" in k for k in keys)


def test_it_cannot_be_deleted_or_reconfigured(ferry):
    admin = AdminClient({"bootstrap.servers": ferry.kafka_bootstrap})
    with pytest.raises(KafkaException) as exc:
        admin.delete_topics([OFFSETS])[OFFSETS].result(10)
    assert exc.value.args[0].code() == KafkaError.TOPIC_EXCEPTION
    entry = ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SET)
    res = ConfigResource(ConfigResource.Type.TOPIC, OFFSETS, incremental_configs=[entry])
    with pytest.raises(KafkaException) as exc:
        admin.incremental_alter_configs([res])[res].result(10)
    assert exc.value.args[0].code() == KafkaError.POLICY_VIOLATION
    assert OFFSETS in admin.list_topics(timeout=10).topics


def test_an_amqp_stream_queue_cannot_take_its_name(ferry):
    conn = pika.BlockingConnection(pika.URLParameters(ferry.amqp_url))
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as exc:
        ch.queue_declare(OFFSETS, durable=True, arguments={"x-queue-type": "stream"})
    assert exc.value.reply_code == 406 and "internal topic" in exc.value.reply_text
    conn.close()
