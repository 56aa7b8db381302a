"""ListOffsets by timestamp answers with the first *record* stamped at or after the target and that
record's own timestamp (aiokafka's upstream test_offsets_for_times_single checks both)."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

pytestmark = pytest.mark.timeout(30)


def test_offsets_for_times_is_record_exact(ferry):
    topic = f"times-{uuid.uuid4().hex[:8]}"
    p = Producer({"bootstrap.servers": ferry.kafka_bootstrap, "linger.ms": 50})
    base = 1_700_000_000_000
    for i in range(5):  # one batch (linger), timestamps 1 s apart
        p.produce(topic, value=b"v%d" % i, timestamp=base + i * 1000, partition=0)
    assert p.flush(10) == 0
    c = Consumer({"bootstrap.servers": ferry.kafka_bootstrap, "group.id": uuid.uuid4().hex})
    [tp] = c.offsets_for_times([TopicPartition(topic, 0, base + 2500)], timeout=10)
    assert tp.offset == 3
    [tp] = c.offsets_for_times([TopicPartition(topic, 0, base)], timeout=10)
    assert tp.offset == 0
    [tp] = c.offsets_for_times([TopicPartition(topic, 0, base + 99_000)], timeout=10)
    assert tp.offset == -1  # none: the end
    c.close()
