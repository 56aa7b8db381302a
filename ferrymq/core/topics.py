"""Topics as a core noun: the registry of topics and their partitions, each partition's
idempotent-producer state, and the retention and compaction policy (which partitions, when and with
what limits; the file work is the store's). Kafka and AMQP stream queues call this one API.

Pure: the partition logs come from a ``TopicStore`` passed in, as queue logs come from a
``QueueStore``; time comes in as ``now_ms`` arguments. Answers carry Kafka's error codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ferrymq import kafka_codes as codes
from ferrymq import limits
from ferrymq.core.streams import (
    TOPIC_CONFIG_DEFAULTS,
    ProducerState,
    TopicSpec,
    config_error,
    topic_name_error,
)


class PartitionLog(Protocol):
    """One partition's log of record batches (storage.StreamLog fits)."""

    @property
    def start_offset(self) -> int: ...

    @property
    def next_offset(self) -> int: ...

    def append(self, data: bytes | bytearray, batches: list[tuple[int, int, int]]) -> int: ...

    def read(self, offset: int, max_bytes: int) -> bytes: ...

    def offset_for_time(self, ts: int) -> int | None: ...

    def apply_retention(self, now_ms: int, retention_ms: int, retention_bytes: int) -> int: ...

    def advance_start(self, offset: int) -> int: ...

    def fsync(self) -> int: ...

    def close(self) -> None: ...


class TopicStore(Protocol):
    """Where topics are kept (storage.StreamStore fits): metadata plus one log per partition."""

    def load(self) -> list[dict[str, Any]]: ...

    def save(self, name: str, partitions: int, configs: dict[str, str], internal: bool = False) -> None: ...

    def open_partition(self, name: str, partition: int, segment_bytes: int, segment_ms: int) -> Any: ...

    def delete(self, name: str) -> None: ...


def _fresh_producers(lg: Any) -> ProducerState:
    return ProducerState()


@dataclass(slots=True)
class Topic:
    spec: TopicSpec
    logs: list[Any]  # PartitionLog each
    producers: list[ProducerState] = field(default_factory=list)
    internal: bool = False


Appended = Callable[[str, int], None]  # (topic, partition): records became readable
Resized = Callable[[str, int], None]  # (topic, partition count; 0: deleted): the AMQP face follows


class TopicRegistry:
    """Every topic, by name. ``producers_of(log)`` rebuilds a partition's producer state from its
    stored batches at start-up (the caller knows the batch format; the core does not)."""

    def __init__(self, store: TopicStore, num_partitions: int,
                 producers_of: Callable[[Any], ProducerState] = _fresh_producers,
                 defaults: dict[str, str] | None = None) -> None:
        self.store = store
        self.defaults = {**TOPIC_CONFIG_DEFAULTS, **(defaults or {})}  # broker-wide topic config defaults
        self.num_partitions = num_partitions
        self.producers_of = producers_of
        self.topics: dict[str, Topic] = {}
        self.listeners: list[Appended] = []  # front ends waiting for records (fetches, consumers)
        self.owned: set[str] = set()  # broker-owned internal topics (register_internal)
        self.resized: list[Resized] = []  # told of created, grown and deleted topics (super streams)

    # --- the registry ----------------------------------------------------------------------------

    def load(self) -> list[Topic]:
        """Open every stored topic (once, at start-up)."""
        return [self._open(TopicSpec(m["name"], m["partitions"], m["configs"]), m.get("internal", False))
                for m in self.store.load()]

    def _open(self, spec: TopicSpec, internal: bool) -> Topic:
        spec.defaults = self.defaults
        logs = [self._open_partition(spec, p) for p in range(spec.partitions)]
        t = self.topics[spec.name] = Topic(spec, logs, [self.producers_of(lg) for lg in logs], internal)
        return t

    def _open_partition(self, spec: TopicSpec, partition: int) -> Any:
        segment_bytes = max(spec.int_config("segment.bytes"), limits.KAFKA_SEGMENT_BYTES_MIN)
        return self.store.open_partition(spec.name, partition, segment_bytes, spec.int_config("segment.ms"))

    def get(self, name: str) -> Topic | None:
        return self.topics.get(name)

    def names(self) -> list[str]:
        """Topics a client may list (internal ones hidden)."""
        return [n for n, t in self.topics.items() if not t.internal]

    def all_names(self) -> list[str]:
        """Every topic, internal ones too (Kafka's Metadata for all topics lists them, marked)."""
        return list(self.topics)

    def register_internal(self, name: str, lg: Any, configs: dict[str, str]) -> Topic:
        """A broker-owned log shown as a one-partition internal topic (``__consumer_offsets``): read
        like any topic; its owner writes, stores and closes it, so retention, compaction, admin
        changes and clients' produces leave it alone."""
        t = self.topics[name] = Topic(TopicSpec(name, 1, dict(configs)), [lg], [ProducerState()], True)
        self.owned.add(name)
        return t

    def _to_change(self, name: str, code: int, what: str) -> Topic | tuple[int, str]:
        """The topic an admin change is about, or (code, message) saying why it cannot change."""
        if name in self.owned:
            return code, f"{what} of internal topic {name} cannot change."
        t = self.topics.get(name)
        return t if t is not None else (codes.UNKNOWN_TOPIC_OR_PARTITION, f"Topic '{name}' does not exist.")

    def create(self, name: str, partitions: int, configs: dict[str, str],
               validate_only: bool = False, internal: bool = False) -> tuple[int, str | None]:
        """(error code, message) — Kafka's codes for a bad name, count or config."""
        if name in self.topics:
            return codes.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists."
        why = topic_name_error(name)
        if why:
            return codes.INVALID_TOPIC_EXCEPTION, why
        if partitions == -1:
            partitions = self.num_partitions
        if partitions < 1:
            return codes.INVALID_PARTITIONS, "Number of partitions must be larger than 0."
        why = config_error(configs)
        if why:
            return codes.INVALID_CONFIG, why
        if not validate_only:
            self.store.save(name, partitions, configs, internal)
            self._open(TopicSpec(name, partitions, dict(configs)), internal)
            self._tell_resized(name, partitions)
        return codes.NONE, None

    def auto_create(self, name: str) -> Topic | None:
        code, _ = self.create(name, self.num_partitions, {})
        return self.topics.get(name) if code in (codes.NONE, codes.TOPIC_ALREADY_EXISTS) else None

    def add_partitions(self, name: str, count: int, validate_only: bool) -> tuple[int, str | None]:
        t = self._to_change(name, codes.INVALID_PARTITIONS, "The partition count")
        if not isinstance(t, Topic):
            return t
        if count <= t.spec.partitions:
            return codes.INVALID_PARTITIONS, (f"Topic currently has {t.spec.partitions} partitions, "
                                              f"{count} would not be an increase.")
        if not validate_only:
            self.store.save(name, count, t.spec.configs, t.internal)
            for p in range(t.spec.partitions, count):
                t.logs.append(self._open_partition(t.spec, p))
                t.producers.append(ProducerState())
            t.spec.partitions = count
            self._tell_resized(name, count)
        return codes.NONE, None

    def set_configs(self, name: str, configs: dict[str, str], validate_only: bool) -> tuple[int, str | None]:
        """Replace a topic's config overrides (AlterConfigs): stored before they apply, and applied
        live (retention, compaction and produce read the spec each time; the logs' roll sizes here)."""
        t = self._to_change(name, codes.POLICY_VIOLATION, "The configs")
        if not isinstance(t, Topic):
            return t
        why = config_error(configs)
        if why:
            return codes.INVALID_CONFIG, why
        if not validate_only:
            self.store.save(name, t.spec.partitions, configs, t.internal)
            t.spec.configs = dict(configs)
            for lg in t.logs:
                lg.segment_bytes = max(t.spec.int_config("segment.bytes"), limits.KAFKA_SEGMENT_BYTES_MIN)
                lg.segment_ms = t.spec.int_config("segment.ms")
        return codes.NONE, None

    def delete_records(self, t: Topic, partition: int, offset: int) -> tuple[int, int]:
        """(error code, low watermark): Kafka's DeleteRecords on one partition. -1 is the high
        watermark; past it is OFFSET_OUT_OF_RANGE; a topic without ``delete`` refuses."""
        lg = t.logs[partition]
        if "delete" not in t.spec.config("cleanup.policy"):
            return codes.POLICY_VIOLATION, -1
        offset = lg.next_offset if offset == -1 else offset
        if not 0 <= offset <= lg.next_offset:
            return codes.OFFSET_OUT_OF_RANGE, -1
        low = lg.advance_start(offset)
        t.producers[partition].txns.forget_before(low)
        return codes.NONE, low

    def delete(self, name: str) -> int:
        if name in self.owned:
            return codes.INVALID_TOPIC_EXCEPTION
        t = self.topics.pop(name, None)
        if t is None:
            return codes.UNKNOWN_TOPIC_OR_PARTITION
        for lg in t.logs:
            lg.close()
        self.store.delete(name)
        self._tell_resized(name, 0)
        return codes.NONE

    def _tell_resized(self, name: str, partitions: int) -> None:
        for listener in list(self.resized):
            listener(name, partitions)

    # --- records became readable -------------------------------------------------------------------

    def appended(self, name: str, partition: int) -> None:
        """Whoever appended (a Kafka produce, an AMQP publish) tells every reader, whatever protocol."""
        for listener in self.listeners:
            listener(name, partition)

    # --- retention and compaction policy -------------------------------------------------------------

    def apply_retention(self, now_ms: int) -> int:
        """Segments removed from ``delete`` topics past ``retention.ms`` / ``retention.bytes``."""
        removed = 0
        for t in self.topics.values():
            if t.spec.name in self.owned or "delete" not in t.spec.config("cleanup.policy"):
                continue
            ms, size = t.spec.int_config("retention.ms"), t.spec.int_config("retention.bytes")
            for lg, producers in zip(t.logs, t.producers):
                removed += lg.apply_retention(now_ms, ms, size)
                if producers.txns.aborted:
                    producers.txns.forget_before(lg.start_offset)
        return removed

    def compacted(self) -> list[tuple[Any, int]]:
        """(log, delete.retention.ms) of every partition of a ``compact`` topic: the cleaner's work list
        (the store says which of them a pass would change)."""
        out: list[tuple[Any, int]] = []
        for t in self.topics.values():
            if t.spec.name not in self.owned and "compact" in t.spec.config("cleanup.policy"):
                keep_ms = t.spec.int_config("delete.retention.ms")
                out += [(lg, keep_ms) for lg in t.logs]
        return out

    def close(self) -> None:
        for t in self.topics.values():
            for lg in t.logs if t.spec.name not in self.owned else ():
                lg.close()
