"""Compaction seen by a real client (confluent-kafka): after the cleaner's pass every key's latest
value is read back at the offset its produce was acknowledged with, superseded values and expired
tombstones are gone, and the offsets in between are simply skipped."""

from __future__ import annotations

import asyncio
import random
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.timeout(60)


def _produce(ferry, topic: str, items: list[tuple[bytes, bytes | None]]) -> list[int]:
    p = Producer({"bootstrap.servers": ferry.kafka_bootstrap, "linger.ms": 2, "batch.num.messages": 7})
    offsets: dict[int, int] = {}
    for i, (k, v) in enumerate(items):
        p.produce(topic, key=k, value=v, partition=0,
                  on_delivery=lambda err, m, i=i: offsets.__setitem__(i, m.offset() if err is None else -1))
    assert p.flush(15) == 0
    return [offsets[i] for i in range(len(items))]


def _read_all(ferry, topic: str) -> dict[int, tuple[bytes, bytes | None]]:
    c = Consumer({"bootstrap.servers": ferry.kafka_bootstrap, "group.id": uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.partition.eof": True})
    c.subscribe([topic])
    got: dict[int, tuple[bytes, bytes | None]] = {}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if got:
                break  # partition EOF after data
            continue
        got[m.offset()] = (m.key(), m.value())
    c.close()
    return got


def _compacted_topic(ferry, prefix: str, segment_bytes: int) -> str:
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": ferry.kafka_bootstrap})
    configs = {"cleanup.policy": "compact", "segment.bytes": str(segment_bytes), "delete.retention.ms": "0"}
    for fut in admin.create_topics([NewTopic(topic, 1, 1, config=configs)]).values():
        fut.result(10)
    return topic


def test_latest_value_per_key_survives_compaction_at_its_offset(ferry):
    topic = _compacted_topic(ferry, "compact", 600)
    rng = random.Random(5)
    items: list[tuple[bytes, bytes | None]] = []
    for n in range(400):
        key = f"key-{rng.randrange(30)}".encode()
        items.append((key, None if rng.random() < 0.1 else f"{key.decode()}={n}".encode()))
    offsets = _produce(ferry, topic, items)
    assert offsets == sorted(offsets) and offsets[0] == 0
    before = _read_all(ferry, topic)
    assert len(before) == 400
    streams = ferry.running.streams
    removed = asyncio.run_coroutine_threadsafe(streams.cleaner.clean_once(), ferry._loop).result(20)
    assert removed > 0
    after = _read_all(ferry, topic)
    active_base = ferry.call(lambda: streams.topics.get(topic).logs[0].segments[-1].base)
    latest = {k: i for i, (k, _) in enumerate(items) if offsets[i] < active_base}
    for i, (k, v) in enumerate(items):
        o = offsets[i]
        if o >= active_base:
            assert after[o] == (k, v)
        elif latest[k] == i and v is not None:
            assert after[o] == (k, v), f"latest value of {k!r} lost at offset {o}"
        else:
            assert o not in after, f"offset {o} ({k!r}) should have been compacted away"
    assert len(after) < len(before)


def test_a_cleaner_whose_offset_map_holds_few_keys_compacts_a_many_keyed_topic_in_passes(ferry):
    """log.cleaner.dedupe.buffer.size too small for the topic's keys: each pass maps what fits and
    the passes together leave exactly the latest record of every key."""
    topic = _compacted_topic(ferry, "compact-many", 2000)
    rng = random.Random(9)
    items = [(f"key-{rng.randrange(120)}".encode(), f"v{n}".encode()) for n in range(600)]
    offsets = _produce(ferry, topic, items)
    streams = ferry.running.streams
    cleaner = streams.cleaner
    cleaner.map_keys_max = 7  # far fewer than the topic's keys
    passes = 0
    while ferry.call(lambda: bool(cleaner.compactable(cleaner.clock.now_ms()))):
        asyncio.run_coroutine_threadsafe(cleaner.clean_once(), ferry._loop).result(20)
        passes += 1
        assert passes < 200, "every pass must make progress"
    assert passes > 1
    after = _read_all(ferry, topic)
    active_base = ferry.call(lambda: streams.topics.get(topic).logs[0].segments[-1].base)
    latest = {k: offsets[i] for i, (k, _) in enumerate(items) if offsets[i] < active_base}
    expected = {offsets[i]: (k, v) for i, (k, v) in enumerate(items)
                if offsets[i] >= active_base or latest[k] == offsets[i]}
    assert after == expected
