"""Kafka operations obey the user's vhost permissions (Kafka topics are stream queues in vhost "/"):
Produce needs write, Fetch and ListOffsets read, topic admin configure, consumer groups read on the
group id; refusals reach librdkafka and kafka-python as Kafka's authorization errors."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from ferrymq.testing import EmbeddedBroker

pytestmark = pytest.mark.timeout(60)
ALICE = {"configure": "^a-", "write": "^a-", "read": "^(a-|g-a)"}


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        core = b.running.broker  # type: ignore[union-attr]
        b.call(core.put_user, "alice", "alice-pw")
        b.call(core.set_permission, "/", "alice", ALICE)
        yield b


def alice(broker: EmbeddedBroker, **extra: str) -> dict[str, str]:
    return {"bootstrap.servers": broker.kafka_bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": "alice", "sasl.password": "alice-pw",
            **extra}


def name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def produce_outcome(config: dict[str, str], topic: str) -> int:
    """The delivery report's error code (0: stored)."""
    outcome: list[int] = []
    producer = Producer({**config, "message.timeout.ms": "5000"})
    producer.produce(topic, b"x", on_delivery=lambda err, msg: outcome.append(err.code() if err else 0))
    producer.flush(10)
    return outcome[0]


def make_topic(broker: EmbeddedBroker, topic: str) -> None:
    """As the anonymous user (guest's permissions: everything)."""
    assert produce_outcome({"bootstrap.servers": broker.kafka_bootstrap}, topic) == 0


def test_produce_needs_write_on_the_topic(broker):
    assert produce_outcome(alice(broker), name("a-")) == 0
    other = name("b-")
    make_topic(broker, other)
    assert produce_outcome(alice(broker), other) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_fetch_needs_read_and_a_group_needs_read_on_its_id(broker):
    mine, other = name("a-"), name("b-")
    make_topic(broker, other)
    assert produce_outcome(alice(broker), mine) == 0
    consumer = Consumer(alice(broker, **{"group.id": name("g-a"), "auto.offset.reset": "earliest"}))
    consumer.assign([TopicPartition(mine, 0)])
    msgs = [m for m in consumer.consume(1, timeout=10) if m.error() is None]
    assert [m.value() for m in msgs] == [b"x"]
    consumer.assign([TopicPartition(other, 0)])
    errors = [m.error().code() for m in consumer.consume(1, timeout=10) if m.error() is not None]
    consumer.close()
    assert errors == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    stranger = Consumer(alice(broker, **{"group.id": name("g-other")}))
    stranger.subscribe([mine])
    errors = [m.error().code() for m in stranger.consume(1, timeout=10) if m.error() is not None]
    stranger.close()
    assert errors == [KafkaError.GROUP_AUTHORIZATION_FAILED]


def test_topic_admin_needs_configure_and_metadata_lists_only_visible_topics(broker):
    admin = AdminClient(alice(broker))
    mine, other = name("a-"), name("b-")
    futures = admin.create_topics([NewTopic(mine, 1), NewTopic(other, 1)])
    futures[mine].result(10)
    with pytest.raises(KafkaException) as refused:
        futures[other].result(10)
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    make_topic(broker, other)
    listed = set(admin.list_topics(timeout=10).topics)
    assert mine in listed and other not in listed
    with pytest.raises(KafkaException) as refused:
        admin.delete_topics([other])[other].result(10)
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    admin.delete_topics([mine])[mine].result(10)


def test_a_cleared_permission_refuses_at_once_and_the_anonymous_user_is_guest(broker):
    bob_topic = name("a-")
    core = broker.running.broker
    broker.call(core.put_user, "bob", "bob-pw")
    bob = {**alice(broker), "sasl.username": "bob", "sasl.password": "bob-pw"}
    assert produce_outcome(bob, bob_topic) == KafkaError.TOPIC_AUTHORIZATION_FAILED  # no permission yet
    broker.call(core.set_permission, "/", "bob", {"configure": ".*", "write": ".*", "read": ".*"})
    assert produce_outcome(bob, bob_topic) == 0
    broker.call(core.set_permission, "/", "guest", {"configure": "", "write": "", "read": ""})
    try:
        assert produce_outcome({"bootstrap.servers": broker.kafka_bootstrap}, bob_topic) == \
            KafkaError.TOPIC_AUTHORIZATION_FAILED
    finally:
        broker.call(core.set_permission, "/", "guest", {"configure": ".*", "write": ".*", "read": ".*"})


def test_admin_changes_need_configure_on_the_topic_and_read_on_the_group(broker):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    admin = AdminClient(alice(broker))
    mine, other = name("a-"), name("b-")
    assert produce_outcome(alice(broker), mine) == 0
    make_topic(broker, other)

    def alter(topic: str) -> None:
        entry = ConfigEntry("retention.ms", "60000", incremental_operation=AlterConfigOpType.SET)
        resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
        admin.incremental_alter_configs([resource])[resource].result(10)
    alter(mine)
    with pytest.raises(KafkaException) as refused:
        alter(other)
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    readable = name("g-a")  # alice may read (so see) it, not configure it
    make_topic(broker, readable)
    with pytest.raises(KafkaException) as refused:
        admin.delete_records([TopicPartition(readable, 0, 1)])[TopicPartition(readable, 0, 1)].result(10)
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    with pytest.raises(KafkaException) as refused:
        admin.delete_consumer_groups(["g-other"])["g-other"].result(10)
    assert refused.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED
