"""Kafka's size limits with kafka-python: the broker setting kafka_message_max_bytes is message.max.bytes
(MESSAGE_TOO_LARGE above it, a topic's max.message.bytes overrides it, DescribeConfigs shows it), and a
partition's records above segment.bytes are RECORD_LIST_TOO_LARGE, as Kafka answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import MessageSizeTooLargeError, RecordListTooLargeError

from ferrymq import EmbeddedBroker


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(kafka_message_max_bytes=2_000) as b:
        yield b


@pytest.fixture(scope="module")
def admin(broker: EmbeddedBroker) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{broker.kafka_port}")
    client.create_topics([NewTopic("big-ok", 1, 1, topic_configs={"max.message.bytes": "100000"}),
                          NewTopic("tiny-segments", 1, 1, topic_configs={"segment.bytes": "1000"}),
                          NewTopic("plain", 1, 1)])
    yield client
    client.close()


def _send(broker: EmbeddedBroker, topic: str, value: bytes) -> None:
    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{broker.kafka_port}", retries=0)
    try:
        producer.send(topic, value).get(timeout=10)
    finally:
        producer.close()


def test_broker_message_max_bytes_refuses_a_larger_batch_with_message_too_large(broker, admin) -> None:
    _send(broker, "plain", b"s" * 100)
    with pytest.raises(MessageSizeTooLargeError):
        _send(broker, "plain", b"L" * 5_000)
    _send(broker, "big-ok", b"L" * 5_000)  # the topic's max.message.bytes overrides the broker's


def test_records_above_segment_bytes_are_record_list_too_large(broker, admin) -> None:
    with pytest.raises(RecordListTooLargeError):
        _send(broker, "tiny-segments", b"x" * 1_500)


def test_describe_configs_shows_the_broker_message_max_bytes(broker, admin) -> None:
    answer = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "plain")], config_filter="all")
    assert answer["topic"]["plain"]["max.message.bytes"]["value"] == "2000"
    assert answer["topic"]["plain"]["max.message.bytes"]["config_source"] == "DEFAULT_CONFIG"
