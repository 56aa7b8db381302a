"""Kafka topics at run time: each topic's spec (core.streams), its partition logs (storage) and the
idempotent-producer state of each partition. The glue the Kafka handlers talk to."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ferrymq import limits
from ferrymq.core.streams import ProducerState, TopicSpec, config_error, topic_name_error
from ferrymq.protocols.kafka import batch, compaction, errors
from ferrymq.storage.stream_compact import RecordCodec, compact, needs_compaction
from ferrymq.storage.stream_log import StreamLog
from ferrymq.storage.stream_store import StreamStore

log = logging.getLogger("ferrymq.kafka")
RECORD_CODEC = RecordCodec(compaction.keys, compaction.filter_batch)


PRODUCER_STATE_BATCHES = 10_000  # batch headers read back per partition at start-up (a few ms)


def producers_from(lg: StreamLog) -> ProducerState:
    """Idempotent-producer state rebuilt from the newest batch headers, as Kafka rebuilds it from the
    log: a retry that crosses a broker restart is still recognised as a duplicate."""
    state = ProducerState()
    for head in lg.tail_headers(PRODUCER_STATE_BATCHES):
        base, _l, _e, _m, _c, _a, last_delta, _t, _mt, pid, epoch, seq, _n = batch.header(head)
        state.record(pid, epoch, seq, last_delta + 1, base)
    return state


def segment_ms(spec: TopicSpec) -> int:
    return spec.int_config("segment.ms")


@dataclass(slots=True)
class Topic:
    spec: TopicSpec
    logs: list[StreamLog]
    producers: list[ProducerState] = field(default_factory=list)
    internal: bool = False


class Topics:
    def __init__(self, store: StreamStore, num_partitions: int) -> None:
        self.store = store
        self.num_partitions = num_partitions
        self.topics: dict[str, Topic] = {}

    def load(self) -> int:
        """Open every stored topic; returns bytes of torn tail truncated across their logs."""
        truncated = 0
        for meta in self.store.load():
            spec = TopicSpec(meta["name"], meta["partitions"], meta["configs"])
            t = self._open(spec, meta.get("internal", False))
            truncated += sum(lg.recovery.bytes_truncated for lg in t.logs)
        return truncated

    def _open(self, spec: TopicSpec, internal: bool) -> Topic:
        seg, ms = max(spec.int_config("segment.bytes"), limits.KAFKA_SEGMENT_BYTES_MIN), segment_ms(spec)
        logs = [self.store.open_partition(spec.name, p, seg, ms) for p in range(spec.partitions)]
        t = self.topics[spec.name] = Topic(spec, logs, [producers_from(lg) for lg in logs], internal)
        return t

    def get(self, name: str) -> Topic | None:
        return self.topics.get(name)

    def create(self, name: str, partitions: int, configs: dict[str, str],
               validate_only: bool = False, internal: bool = False) -> tuple[int, str | None]:
        """(error code, message) — Kafka's codes for a bad name, count or config."""
        if name in self.topics:
            return errors.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists."
        why = topic_name_error(name)
        if why:
            return errors.INVALID_TOPIC_EXCEPTION, why
        if partitions == -1:
            partitions = self.num_partitions
        if partitions < 1:
            return errors.INVALID_PARTITIONS, "Number of partitions must be larger than 0."
        why = config_error(configs)
        if why:
            return errors.INVALID_CONFIG, why
        if not validate_only:
            self.store.save(name, partitions, configs, internal)
            self._open(TopicSpec(name, partitions, dict(configs)), internal)
            log.info("created topic %s with %d partition(s)", name, partitions)
        return errors.NONE, None

    def auto_create(self, name: str) -> Topic | None:
        code, _ = self.create(name, self.num_partitions, {})
        return self.topics.get(name) if code in (errors.NONE, errors.TOPIC_ALREADY_EXISTS) else None

    def add_partitions(self, name: str, count: int, validate_only: bool) -> tuple[int, str | None]:
        t = self.topics.get(name)
        if t is None:
            return errors.UNKNOWN_TOPIC_OR_PARTITION, f"Topic '{name}' does not exist."
        if count <= t.spec.partitions:
            return errors.INVALID_PARTITIONS, (f"Topic currently has {t.spec.partitions} partitions, "
                                               f"{count} would not be an increase.")
        if not validate_only:
            self.store.save(name, count, t.spec.configs, t.internal)
            seg = max(t.spec.int_config("segment.bytes"), limits.KAFKA_SEGMENT_BYTES_MIN)
            for p in range(t.spec.partitions, count):
                t.logs.append(self.store.open_partition(name, p, seg, segment_ms(t.spec)))
                t.producers.append(ProducerState())
            t.spec.partitions = count
        return errors.NONE, None

    def delete(self, name: str) -> int:
        t = self.topics.pop(name, None)
        if t is None:
            return errors.UNKNOWN_TOPIC_OR_PARTITION
        for lg in t.logs:
            lg.close()
        self.store.delete(name)
        log.info("deleted topic %s", name)
        return errors.NONE

    def apply_retention(self, now_ms: int) -> int:
        removed = 0
        for t in self.topics.values():
            if "delete" not in t.spec.config("cleanup.policy"):
                continue
            ms, size = t.spec.int_config("retention.ms"), t.spec.int_config("retention.bytes")
            for lg in t.logs:
                removed += lg.apply_retention(now_ms, ms, size)
        return removed

    def compactable(self, now_ms: int) -> list[tuple[StreamLog, int]]:
        """(log, delete.retention.ms) of every compacted partition a cleaner pass would change."""
        out = []
        for t in self.topics.values():
            if "compact" not in t.spec.config("cleanup.policy"):
                continue
            keep_ms = t.spec.int_config("delete.retention.ms")
            out += [(lg, keep_ms) for lg in t.logs if needs_compaction(lg, now_ms)]
        return out

    def compact(self, now_ms: int) -> int:
        """One cleaner pass over every compacted partition, here and now; records removed."""
        return sum(compact(lg, RECORD_CODEC, now_ms, keep_ms) for lg, keep_ms in self.compactable(now_ms))

    def close(self) -> None:
        for t in self.topics.values():
            for lg in t.logs:
                lg.close()
