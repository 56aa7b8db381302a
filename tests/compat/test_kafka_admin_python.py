"""The admin APIs tools call, driven by kafka-python's KafkaAdminClient over real sockets: legacy
AlterConfigs (omitted configs revert), DeleteRecords, DescribeLogDirs sizes against the segment
files on disk, OffsetDelete and DeleteGroups with Kafka's group rules, DescribeCluster, and the
ACL APIs reading the vhost permissions."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    NewTopic,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.errors import GroupIdNotFoundError, NoError, NonEmptyGroupError
from kafka.structs import OffsetAndMetadata

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def admin(kafka_admin: KafkaAdminClient) -> KafkaAdminClient:
    return kafka_admin


def _topic(admin: KafkaAdminClient, partitions: int = 1, **configs: str) -> str:
    name = f"kp-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
    return name


def _produce(ferry, topic: str, n: int) -> None:
    p = KafkaProducer(bootstrap_servers=ferry.kafka_bootstrap)
    for i in range(n):
        p.send(topic, key=b"k", value=b"v%d" % i, partition=0)
    p.flush()
    p.close()


def _topic_configs(admin: KafkaAdminClient, topic: str) -> dict[str, str]:
    got = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    return {k: v["value"] for k, v in got["topic"][topic].items()}


def test_legacy_alter_configs_applies_what_kafka_python_resends(admin):
    """kafka-python re-sends the other overrides itself (legacy AlterConfigs replaces them all)."""
    topic = _topic(admin, **{"retention.ms": "1000", "segment.ms": "2000"})
    result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                 configs={"cleanup.policy": "compact"})],
                                 incremental=False)
    assert result == {"topic": {topic: "OK"}}
    got = _topic_configs(admin, topic)
    assert (got["cleanup.policy"], got["retention.ms"], got["segment.ms"]) == ("compact", "1000", "2000")


def test_delete_records_reports_the_new_low_watermark(ferry, admin):
    topic = _topic(admin)
    _produce(ferry, topic, 8)
    got = admin.delete_records({TopicPartition(topic, 0): 5})
    assert got[TopicPartition(topic, 0)]["low_watermark"] == 5


def test_describe_log_dirs_sizes_are_the_segment_files_on_disk(ferry, admin):
    topic = _topic(admin, 2)
    _produce(ferry, topic, 20)
    (broker,) = admin.describe_log_dirs({topic: [0, 1]})
    (log_dir,) = broker["log_dirs"]
    sizes = {p["partition_index"]: p["partition_size"] for t in log_dir["topics"] for p in t["partitions"]}
    on_disk = {p: sum(f.stat().st_size for f in (Path(log_dir["log_dir"]) / topic / str(p)).glob("*.seg"))
               for p in (0, 1)}
    assert sizes == on_disk and sizes[0] > sizes[1] > 0  # partition 1 holds only its segment header
    assert Path(log_dir["log_dir"]).is_relative_to(ferry.settings.data_dir)


def _live_member(ferry, group: str, topic: str) -> KafkaConsumer:
    c = KafkaConsumer(topic, bootstrap_servers=ferry.kafka_bootstrap, group_id=group,
                      enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=500)
    deadline = time.monotonic() + 15
    while not c.assignment() and time.monotonic() < deadline:
        c.poll(timeout_ms=100)
    assert c.assignment()
    return c


def test_offset_delete_spares_subscribed_topics_and_groups_with_members_are_not_deleted(ferry, admin):
    subscribed, other = _topic(admin), _topic(admin)
    group = f"g-{uuid.uuid4().hex[:8]}"
    member = _live_member(ferry, group, subscribed)
    try:
        member.commit({TopicPartition(subscribed, 0): OffsetAndMetadata(1, "", -1),
                       TopicPartition(other, 0): OffsetAndMetadata(2, "", -1)})
        got = admin.delete_group_offsets(group, [TopicPartition(subscribed, 0), TopicPartition(other, 0)])
        assert got[TopicPartition(subscribed, 0)].errno == 86  # GROUP_SUBSCRIBED_TO_TOPIC
        assert got[TopicPartition(other, 0)] is NoError
        assert admin.delete_groups([group]) == {group: NonEmptyGroupError.__name__}
    finally:
        member.close()
    offsets = admin.list_group_offsets({group: None})[group]
    assert TopicPartition(other, 0) not in offsets and offsets[TopicPartition(subscribed, 0)].offset == 1
    assert admin.delete_groups([group, "no-such-group"]) == {group: "OK",
                                                              "no-such-group": GroupIdNotFoundError.__name__}


def test_offset_delete_of_an_unknown_group_is_group_id_not_found(admin):
    with pytest.raises(GroupIdNotFoundError):
        admin.delete_group_offsets("no-such-group", [TopicPartition("t", 0)])


def test_describe_cluster_answers_from_describe_cluster(ferry, admin):
    got = admin.describe_cluster()
    assert (got["cluster_id"], got["controller_id"]) == ("ferrymq-cluster", 0)
    assert [b["broker_id"] for b in got["brokers"]] == [0]


def test_describe_acls_reads_the_vhost_permissions_as_acls(admin):
    """guest's ``.*`` permissions in "/" read as LITERAL "*" ACLs (docs/security.md)."""
    acl_filter = ACLFilter(principal="User:guest", host="*", operation=ACLOperation.ANY,
                           permission_type=ACLPermissionType.ANY,
                           resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, None,
                                                                  ACLResourcePatternType.ANY))
    acls, error = admin.describe_acls(acl_filter)
    assert error is NoError
    assert {(a.resource_pattern.resource_name, a.operation) for a in acls} == {
        ("*", ACLOperation.READ), ("*", ACLOperation.WRITE), ("*", ACLOperation.ALTER)}
