"""The admin APIs tools call, driven by confluent-kafka's AdminClient (librdkafka) over real sockets:
config changes seen by DescribeConfigs and applied live, broker configs refused as Kafka refuses
them, DeleteRecords moving the low watermark, DeleteGroups and DescribeCluster (the ACL APIs: tests/
integration/test_kafka_acls.py); and a compacted topic refusing records without a key."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclOperation,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from ferrymq.testing import EmbeddedBroker

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def ferry():
    with EmbeddedBroker(kafka_retention_check_ms=100) as broker:
        yield broker


def _topic(prefix: str = "adm") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _one(futures: dict):
    """The one future of a single-partition request."""
    (fut,) = futures.values()
    return fut


def _admin(ferry) -> AdminClient:
    return AdminClient({"bootstrap.servers": ferry.kafka_bootstrap})


def _create(admin: AdminClient, topic: str, partitions: int = 1, **configs: str) -> None:
    for fut in admin.create_topics([NewTopic(topic, partitions, 1, config=configs)]).values():
        fut.result(10)


def _produce(ferry, topic: str, n: int, key: bytes | None = b"k", flush_each: bool = False) -> list:
    errors: list = []
    p = Producer({"bootstrap.servers": ferry.kafka_bootstrap, "linger.ms": 0})
    for i in range(n):
        p.produce(topic, key=key, value=b"v%d" % i, partition=0, on_delivery=lambda e, m: errors.append(e))
        if flush_each:
            p.flush(10)
    assert p.flush(15) == 0
    return errors


def _configs(admin: AdminClient, topic: str) -> dict:
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return {k: v.value for k, v in admin.describe_configs([res])[res].result(10).items()}


def _incremental(admin: AdminClient, topic: str, *ops: tuple[str, AlterConfigOpType, str | None],
                 validate_only: bool = False) -> None:
    entries = [ConfigEntry(n, v, incremental_operation=op) for n, op, v in ops]
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    admin.incremental_alter_configs([res], validate_only=validate_only)[res].result(10)


def test_incremental_alter_configs_set_append_delete_are_seen_by_describe_configs(ferry):
    admin, topic = _admin(ferry), _topic()
    _create(admin, topic, **{"segment.ms": "1000"})
    _incremental(admin, topic, ("retention.ms", AlterConfigOpType.SET, "3600000"),
                 ("cleanup.policy", AlterConfigOpType.APPEND, "compact"),
                 ("segment.ms", AlterConfigOpType.DELETE, None))
    got = _configs(admin, topic)
    assert (got["retention.ms"], got["cleanup.policy"], got["segment.ms"]) == (
        "3600000", "delete,compact", "604800000")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_legacy_alter_configs_replaces_every_override(ferry):
    admin, topic = _admin(ferry), _topic()
    _create(admin, topic, **{"retention.ms": "1000", "segment.ms": "2000"})
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"cleanup.policy": "compact"})
    admin.alter_configs([res])[res].result(10)
    got = _configs(admin, topic)
    assert (got["cleanup.policy"], got["retention.ms"], got["segment.ms"]) == (
        "compact", "604800000", "604800000")


def test_validate_only_and_refused_changes_leave_the_topic_as_it_was(ferry):
    admin, topic = _admin(ferry), _topic()
    _create(admin, topic)
    _incremental(admin, topic, ("retention.ms", AlterConfigOpType.SET, "5"), validate_only=True)
    with pytest.raises(KafkaException) as exc:
        _incremental(admin, topic, ("retention.ms", AlterConfigOpType.APPEND, "5"))
    assert exc.value.args[0].code() == KafkaError.INVALID_CONFIG
    assert "append is not allowed for config key: retention.ms" in exc.value.args[0].str()
    with pytest.raises(KafkaException) as exc:
        _incremental(admin, topic, ("no.such.config", AlterConfigOpType.SET, "5"))
    assert exc.value.args[0].str() == "Unknown topic config name: no.such.config"
    assert _configs(admin, topic)["retention.ms"] == "604800000"


@pytest.mark.parametrize("validate_only", [False, True])
def test_broker_configs_are_refused_as_not_dynamic(ferry, validate_only):
    admin = _admin(ferry)
    entry = ConfigEntry("log.retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)
    res = ConfigResource(ConfigResource.Type.BROKER, "0", incremental_configs=[entry])
    with pytest.raises(KafkaException) as exc:
        admin.incremental_alter_configs([res], validate_only=validate_only)[res].result(10)
    err = exc.value.args[0]
    assert (err.code(), err.str()) == (KafkaError.INVALID_CONFIG,
                                       "Cannot update these configs dynamically: Set(log.retention.ms)")


def test_cleanup_policy_compact_applies_live_keyless_records_refused(ferry):
    admin, topic = _admin(ferry), _topic()
    _create(admin, topic)
    assert _produce(ferry, topic, 1, key=None) == [None]
    _incremental(admin, topic, ("cleanup.policy", AlterConfigOpType.SET, "compact"))
    errs = _produce(ferry, topic, 1, key=None)
    assert errs[0] is not None and errs[0].code() == KafkaError.INVALID_RECORD
    assert _produce(ferry, topic, 1, key=b"k") == [None]


def test_keyless_records_in_a_batch_to_a_compacted_topic_are_named_and_the_rest_fail_for_them(ferry):
    """KIP-467, as librdkafka's 0011_produce_batch checks it: one batch of 100, every tenth without a
    key — the ten get INVALID_RECORD, the other ninety _INVALID_DIFFERENT_RECORD, none is stored."""
    admin, topic = _admin(ferry), _topic()
    _create(admin, topic, **{"cleanup.policy": "compact"})
    errors: list = []
    p = Producer({"bootstrap.servers": ferry.kafka_bootstrap, "linger.ms": 200})
    for i in range(100):
        p.produce(topic, key=None if i % 10 == 0 else b"k%d" % i, value=b"v%d" % i, partition=0,
                  on_delivery=lambda e, m, i=i: errors.append((i, e.code() if e else None)))
    assert p.flush(15) == 0
    codes = dict(errors)
    assert sorted(i for i, c in codes.items() if c == KafkaError.INVALID_RECORD) == list(range(0, 100, 10))
    assert sum(c == KafkaError._INVALID_DIFFERENT_RECORD for c in codes.values()) == 90


def test_retention_ms_lowered_live_removes_old_segments(ferry):
    admin, topic = _admin(ferry), _topic()
    _create(admin, topic, **{"segment.bytes": "100"})
    _produce(ferry, topic, 6, flush_each=True)
    _incremental(admin, topic, ("retention.ms", AlterConfigOpType.SET, "1"))
    c = Consumer({"bootstrap.servers": ferry.kafka_bootstrap, "group.id": _topic("g")})
    deadline = time.monotonic() + 10
    tp = TopicPartition(topic, 0)
    while c.get_watermark_offsets(tp, timeout=5)[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)
    c.close()
    assert 0 < low <= high == 6


def test_delete_records_moves_the_low_watermark_and_refuses_past_the_high_one(ferry):
    admin, topic = _admin(ferry), _topic()
    _create(admin, topic)
    _produce(ferry, topic, 10)
    got = _one(admin.delete_records([TopicPartition(topic, 0, 4)])).result(10)
    assert got.low_watermark == 4
    with pytest.raises(KafkaException) as exc:
        _one(admin.delete_records([TopicPartition(topic, 0, 11)])).result(10)
    assert exc.value.args[0].code() == KafkaError.OFFSET_OUT_OF_RANGE
    c = Consumer({"bootstrap.servers": ferry.kafka_bootstrap, "group.id": _topic("g"),
                  "auto.offset.reset": "earliest"})
    assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=5) == (4, 10)
    c.assign([TopicPartition(topic, 0)])
    first = None
    deadline = time.monotonic() + 10
    while first is None and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            first = m
    c.close()
    assert first is not None and first.offset() == 4
    high = _one(admin.delete_records([TopicPartition(topic, 0, -1)])).result(10)
    assert high.low_watermark == 10  # -1: up to the high watermark


def test_delete_records_of_a_compacted_topic_is_a_policy_violation(ferry):
    admin, topic = _admin(ferry), _topic()
    _create(admin, topic, **{"cleanup.policy": "compact"})
    _produce(ferry, topic, 2)
    with pytest.raises(KafkaException) as exc:
        _one(admin.delete_records([TopicPartition(topic, 0, 1)])).result(10)
    assert exc.value.args[0].code() == KafkaError.POLICY_VIOLATION


def test_delete_consumer_groups_empty_live_and_unknown(ferry):
    admin, topic, group, live = _admin(ferry), _topic(), _topic("g"), _topic("live")
    _create(admin, topic)
    _produce(ferry, topic, 3)
    c = Consumer({"bootstrap.servers": ferry.kafka_bootstrap, "group.id": group, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
    c.close()
    member = Consumer({"bootstrap.servers": ferry.kafka_bootstrap, "group.id": live,
                       "session.timeout.ms": 6000})
    member.subscribe([topic])
    deadline = time.monotonic() + 15
    while not member.assignment() and time.monotonic() < deadline:
        member.poll(0.1)
    results = admin.delete_consumer_groups([group, live, "no-such-group"])
    assert results[group].result(10) is None
    for gid, code in ((live, KafkaError.NON_EMPTY_GROUP), ("no-such-group", KafkaError.GROUP_ID_NOT_FOUND)):
        with pytest.raises(KafkaException) as exc:
            results[gid].result(10)
        assert exc.value.args[0].code() == code
    member.close()
    assert group not in {g.group_id for g in admin.list_consumer_groups().result(10).valid}


def test_describe_cluster_names_this_broker_as_node_and_controller(ferry):
    admin = _admin(ferry)  # kept alive until the future resolves
    desc = admin.describe_cluster(include_authorized_operations=True).result(10)
    host, port = ferry.kafka_bootstrap.rsplit(":", 1)
    assert desc.cluster_id == "ferrymq-cluster"
    assert [(n.id, n.host, n.port) for n in desc.nodes] == [(0, host, int(port))]
    assert desc.controller.id == 0
    assert AclOperation.DESCRIBE in desc.authorized_operations
