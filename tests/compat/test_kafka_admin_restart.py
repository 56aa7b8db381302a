"""What the admin APIs change survives a broker restart (one data directory, real clients): a
topic's altered configs, the log start offset DeleteRecords moved, and offsets removed by
DeleteGroups and OffsetDelete."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from kafka.admin import KafkaAdminClient
from kafka.structs import TopicPartition as KTopicPartition

from ferrymq.testing import EmbeddedBroker

pytestmark = pytest.mark.timeout(90)
TOPIC = "restart-admin"


def _one(futures: dict):
    """The one future of a single-partition request."""
    (fut,) = futures.values()
    return fut


def _commit(bootstrap: str, group: str, offsets: dict[int, int]) -> None:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in offsets.items()], asynchronous=False)
    c.close()


def _change_everything(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(TOPIC, 2, 1)]).values():
        fut.result(10)
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(10):
        p.produce(TOPIC, key=b"k", value=b"%d" % i, partition=0)
    assert p.flush(10) == 0
    entry = ConfigEntry("retention.ms", "12345", incremental_operation=AlterConfigOpType.SET)
    res = ConfigResource(ConfigResource.Type.TOPIC, TOPIC, incremental_configs=[entry])
    admin.incremental_alter_configs([res])[res].result(10)
    assert _one(admin.delete_records([TopicPartition(TOPIC, 0, 6)])).result(10).low_watermark == 6
    _commit(bootstrap, "gone", {0: 3})
    _commit(bootstrap, "kept", {0: 4, 1: 5})
    assert admin.delete_consumer_groups(["gone"])["gone"].result(10) is None
    kp = KafkaAdminClient(bootstrap_servers=bootstrap)
    kp.delete_group_offsets("kept", [KTopicPartition(TOPIC, 1)])
    kp.close()


def test_config_changes_deleted_records_and_deleted_offsets_survive_a_restart(tmp_path):
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        _change_everything(b.kafka_bootstrap)
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        admin = AdminClient({"bootstrap.servers": b.kafka_bootstrap})
        res = ConfigResource(ConfigResource.Type.TOPIC, TOPIC)
        assert admin.describe_configs([res])[res].result(10)["retention.ms"].value == "12345"
        c = Consumer({"bootstrap.servers": b.kafka_bootstrap, "group.id": "kept",
                      "enable.auto.commit": False})
        assert c.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=5) == (6, 10)
        committed = c.committed([TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)], timeout=10)
        c.close()
        assert [tp.offset for tp in committed] == [4, -1001]  # -1001: no committed offset
        groups = {g.group_id for g in admin.list_consumer_groups().result(10).valid}
        assert "gone" not in groups and "kept" in groups
