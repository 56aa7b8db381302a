"""DescribeConfigs on the BROKER resource answers with the broker's own settings under Kafka's names
(kafka-python's upstream admin test reads ``advertised.listeners`` there)."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

pytestmark = pytest.mark.timeout(30)


def test_broker_configs_name_the_listener_actually_bound(ferry):
    admin = AdminClient({"bootstrap.servers": ferry.kafka_bootstrap})
    res = ConfigResource(ConfigResource.Type.BROKER, "0")
    configs = admin.describe_configs([res])[res].result(10)
    assert configs["advertised.listeners"].value == f"PLAINTEXT://{ferry.kafka_bootstrap}"
    assert configs["log.cleanup.policy"].value == "delete"
    assert configs["log.retention.ms"].value == "604800000"
    assert configs["num.partitions"].value == "1"
