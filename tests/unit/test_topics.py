"""The core's topic registry over an in-memory TopicStore: Kafka's answers for bad names, counts and
configs, partitions added, deletion, retention and compaction policy, append notifications."""

from __future__ import annotations

from typing import Any

from ferrymq import kafka_codes as codes
from ferrymq.core.streams import ProducerState
from ferrymq.core.topics import TopicRegistry


class FakeLog:
    def __init__(self, name: str, partition: int, segment_bytes: int, segment_ms: int) -> None:
        self.key = (name, partition)
        self.segment_bytes, self.segment_ms = segment_bytes, segment_ms
        self.retention: list[tuple[int, int, int]] = []
        self.closed = False

    def apply_retention(self, now_ms: int, retention_ms: int, retention_bytes: int) -> int:
        self.retention.append((now_ms, retention_ms, retention_bytes))
        return 1

    def close(self) -> None:
        self.closed = True


class MemoryTopicStore:
    def __init__(self) -> None:
        self.saved: dict[str, dict[str, Any]] = {}
        self.opened: list[FakeLog] = []

    def load(self) -> list[dict[str, Any]]:
        return list(self.saved.values())

    def save(self, name: str, partitions: int, configs: dict[str, str], internal: bool = False) -> None:
        self.saved[name] = {"name": name, "partitions": partitions, "configs": configs, "internal": internal}

    def open_partition(self, name: str, partition: int, segment_bytes: int, segment_ms: int) -> FakeLog:
        lg = FakeLog(name, partition, segment_bytes, segment_ms)
        self.opened.append(lg)
        return lg

    def delete(self, name: str) -> None:
        del self.saved[name]


def test_create_answers_with_kafkas_codes():
    reg = TopicRegistry(MemoryTopicStore(), num_partitions=3)
    assert reg.create("t", -1, {}) == (codes.NONE, None)
    assert reg.get("t").spec.partitions == 3  # -1: the broker's default count
    assert reg.create("t", 1, {})[0] == codes.TOPIC_ALREADY_EXISTS
    assert reg.create("bad name", 1, {})[0] == codes.INVALID_TOPIC_EXCEPTION
    assert reg.create("u", 0, {})[0] == codes.INVALID_PARTITIONS
    assert reg.create("u", 1, {"no.such.config": "1"})[0] == codes.INVALID_CONFIG
    assert reg.create("u", 1, {}, validate_only=True) == (codes.NONE, None) and reg.get("u") is None


def test_partitions_grow_only_and_deletion_closes_the_logs():
    store = MemoryTopicStore()
    reg = TopicRegistry(store, num_partitions=1)
    reg.create("t", 1, {})
    assert reg.add_partitions("t", 1, False)[0] == codes.INVALID_PARTITIONS
    assert reg.add_partitions("nope", 2, False)[0] == codes.UNKNOWN_TOPIC_OR_PARTITION
    assert reg.add_partitions("t", 3, False) == (codes.NONE, None)
    t = reg.get("t")
    assert t.spec.partitions == 3 and len(t.logs) == 3 and len(t.producers) == 3
    assert store.saved["t"]["partitions"] == 3
    assert reg.delete("t") == codes.NONE and all(lg.closed for lg in t.logs)
    assert reg.delete("t") == codes.UNKNOWN_TOPIC_OR_PARTITION and "t" not in store.saved


def test_load_reopens_stored_topics_with_rebuilt_producer_state():
    store = MemoryTopicStore()
    store.save("a", 2, {"segment.ms": "1000"})
    store.save("__internal", 1, {}, internal=True)
    rebuilt: list[Any] = []

    def producers_of(lg: Any) -> ProducerState:
        rebuilt.append(lg.key)
        return ProducerState()

    reg = TopicRegistry(store, 1, producers_of)
    assert [t.spec.name for t in reg.load()] == ["a", "__internal"]
    assert rebuilt == [("a", 0), ("a", 1), ("__internal", 0)]
    assert reg.names() == ["a"]  # internal topics are not listed
    assert reg.get("a").logs[0].segment_ms == 1000


def test_retention_applies_to_delete_topics_and_compaction_lists_compact_ones():
    reg = TopicRegistry(MemoryTopicStore(), 1)
    reg.create("d", 1, {"retention.ms": "10", "retention.bytes": "20"})
    reg.create("c", 2, {"cleanup.policy": "compact", "delete.retention.ms": "5"})
    reg.create("both", 1, {"cleanup.policy": "compact,delete"})
    assert reg.apply_retention(1_000) == 2
    assert reg.get("d").logs[0].retention == [(1_000, 10, 20)]
    assert reg.get("c").logs[0].retention == []
    assert [(lg.key, keep) for lg, keep in reg.compacted()] == [
        (("c", 0), 5), (("c", 1), 5), (("both", 0), 86_400_000)]


def test_an_append_from_any_front_end_reaches_every_listener():
    reg = TopicRegistry(MemoryTopicStore(), 1)
    heard: list[tuple[str, str, int]] = []
    reg.listeners.append(lambda n, p: heard.append(("fetches", n, p)))
    reg.listeners.append(lambda n, p: heard.append(("stream queues", n, p)))
    reg.appended("t", 0)
    assert heard == [("fetches", "t", 0), ("stream queues", "t", 0)]
