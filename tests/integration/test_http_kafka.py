"""FerryMQ's Kafka endpoints (/api/ferrymq/kafka/...) with real kafka-python clients: topics with
their offsets and bytes, and a group's lag after a consumer committed part of a topic."""

from __future__ import annotations

import requests
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ferrymq import EmbeddedBroker

AUTH = ("guest", "guest")


def test_topic_offsets_and_group_lag_after_a_partial_commit() -> None:
    with EmbeddedBroker() as b:
        producer = KafkaProducer(bootstrap_servers=b.kafka_bootstrap)
        for i in range(10):
            producer.send("lag-t", f"m{i}".encode(), partition=0)
        producer.flush()
        conns = requests.get(f"{b.http_url}/api/connections", auth=AUTH, timeout=5).json()
        assert any(c["protocol"] == "Kafka" and c["port"] == b.kafka_port for c in conns)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=b.kafka_bootstrap, group_id="lag-g",
                                 enable_auto_commit=False, auto_offset_reset="earliest")
        tp = TopicPartition("lag-t", 0)
        consumer.assign([tp])
        consumer.commit({tp: OffsetAndMetadata(4, "", -1)})
        consumer.close()
        topics = requests.get(f"{b.http_url}/api/ferrymq/kafka/topics", auth=AUTH, timeout=5).json()
        topic = next(t for t in topics if t["name"] == "lag-t")
        p0 = topic["partition_details"][0]
        assert (p0["log_start_offset"], p0["log_end_offset"]) == (0, 10) and p0["bytes"] > 0
        assert topic["retention"]["ms"] == 604800000
        assert topic["cleanup_policy"] == "delete" and "cleanup.policy" not in topic["config"]  # the default
        group = requests.get(f"{b.http_url}/api/ferrymq/kafka/groups/lag-g", auth=AUTH, timeout=5).json()
        assert group["offsets"] == [{"topic": "lag-t", "partition": 0, "committed_offset": 4,
                                     "log_end_offset": 10, "lag": 6, "metadata": ""}]
        listed = requests.get(f"{b.http_url}/api/ferrymq/kafka/groups", auth=AUTH, timeout=5).json()
        assert [g["group_id"] for g in listed] == ["lag-g"]
        assert requests.get(f"{b.http_url}/api/ferrymq/kafka/topics/nope", auth=AUTH,
                            timeout=5).status_code == 404
