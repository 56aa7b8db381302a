"""kafka-python's transactional producer and read_committed consumer against FerryMQ over real
sockets: commit, abort, and offsets sent to the transaction."""

from __future__ import annotations

import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition

pytestmark = pytest.mark.timeout(60)


def _read(bootstrap: str, tp: TopicPartition, isolation: str) -> list[bytes]:
    c = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation, auto_offset_reset="earliest",
                      consumer_timeout_ms=1500)
    c.assign([tp])
    try:
        return [m.value for m in c]
    finally:
        c.close()


def test_kafka_python_commit_abort_and_transactional_offsets(ferry):
    topic, group = f"kp-{uuid.uuid4().hex[:8]}", f"kpg-{uuid.uuid4().hex[:8]}"
    tp = TopicPartition(topic, 0)
    p = KafkaProducer(bootstrap_servers=ferry.kafka_bootstrap, transactional_id=f"{topic}-txid")
    p.init_transactions()
    p.begin_transaction()
    p.send(topic, b"c1", partition=0)
    p.commit_transaction()
    p.begin_transaction()
    p.send(topic, b"a1", partition=0)
    p.send_offsets_to_transaction({tp: OffsetAndMetadata(9, "", -1)}, group)
    p.flush()  # an abort drops records still unsent (as Kafka's clients do): this one must reach the log
    p.abort_transaction()
    p.begin_transaction()
    p.send(topic, b"c2", partition=0)
    p.send_offsets_to_transaction({tp: OffsetAndMetadata(3, "", -1)}, group)
    p.commit_transaction()
    p.close()
    assert _read(ferry.kafka_bootstrap, tp, "read_committed") == [b"c1", b"c2"]
    assert _read(ferry.kafka_bootstrap, tp, "read_uncommitted") == [b"c1", b"a1", b"c2"]
    c = KafkaConsumer(bootstrap_servers=ferry.kafka_bootstrap, group_id=group)
    try:
        assert c.committed(tp) == 3
    finally:
        c.close()
