"""Streams as Kafka sees them: topic names and configs, and idempotent-producer sequence state.

Pure: the server owns the partition logs; this module decides what is valid. Config names and
defaults are Kafka's (DescribeConfigs must return every config with its default).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from ferrymq.core.txns import PartitionTxns
from ferrymq.kafka_codes import (
    DUPLICATE_SEQUENCE_NUMBER,
    INVALID_PRODUCER_EPOCH,
    NONE,
    OUT_OF_ORDER_SEQUENCE_NUMBER,
)

TOPIC_NAME_MAX = 249
_LEGAL = re.compile(r"^[a-zA-Z0-9._-]+$")

# Kafka's topic-level defaults (the broker-wide ones; a topic overrides any of them at creation).
TOPIC_CONFIG_DEFAULTS: dict[str, str] = {
    "cleanup.policy": "delete",
    "compression.type": "producer",
    "delete.retention.ms": "86400000",
    "max.message.bytes": "1048588",
    "message.timestamp.type": "CreateTime",
    "min.insync.replicas": "1",
    "retention.bytes": "-1",
    "retention.ms": "604800000",
    "segment.bytes": "1073741824",
    "segment.ms": "604800000",
}
# Kafka's other topic configs: accepted and echoed (no effect on one node yet); any other name is
# refused with INVALID_CONFIG, as Kafka's CreateTopics does ("Unknown topic config name").
TOPIC_CONFIG_OTHER_NAMES = frozenset({
    "file.delete.delay.ms", "flush.messages", "flush.ms", "follower.replication.throttled.replicas",
    "index.interval.bytes", "leader.replication.throttled.replicas", "local.retention.bytes",
    "local.retention.ms", "max.compaction.lag.ms", "message.downconversion.enable", "message.format.version",
    "message.timestamp.after.max.ms", "message.timestamp.before.max.ms",
    "message.timestamp.difference.max.ms",
    "min.cleanable.dirty.ratio", "min.compaction.lag.ms", "preallocate", "remote.storage.enable",
    "segment.index.bytes", "segment.jitter.ms", "unclean.leader.election.enable",
})
PRODUCER_BATCHES_KEPT = 5  # Kafka keeps the last 5 batches per producer for duplicate detection
SEQUENCE_MAX = 2**31 - 1

# Verdicts of ProducerState.check: Kafka error codes (ACCEPT is NONE).
ACCEPT = NONE


def topic_name_error(name: str) -> str | None:
    """Why a topic name is illegal (Kafka's rule), or None."""
    if not name or name in (".", ".."):
        return "topic name is empty, '.' or '..'"
    if len(name) > TOPIC_NAME_MAX:
        return f"topic name longer than {TOPIC_NAME_MAX} characters"
    if not _LEGAL.match(name):
        return "topic name may hold only ASCII letters, digits, '.', '_' and '-'"
    return None


def config_error(configs: dict[str, str]) -> str | None:
    for key, value in configs.items():
        if key not in TOPIC_CONFIG_DEFAULTS:
            if key not in TOPIC_CONFIG_OTHER_NAMES:
                return f"Unknown topic config name: {key}"
            continue
        if key.endswith((".ms", ".bytes")) and not value.lstrip("-").isdigit():
            return f"config {key} must be an integer, got {value!r}"
        if key == "cleanup.policy" and not set(value.split(",")) <= {"delete", "compact"}:
            return f"cleanup.policy must be delete, compact or both, got {value!r}"
    return None


@dataclass(slots=True)
class TopicSpec:
    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    # the broker-wide defaults (Kafka's server.properties; its registry's, e.g. message.max.bytes)
    defaults: dict[str, str] = field(default_factory=lambda: TOPIC_CONFIG_DEFAULTS, repr=False, compare=False)

    def config(self, key: str) -> str:
        return self.configs.get(key, self.defaults[key])

    def int_config(self, key: str) -> int:
        return int(self.config(key))


@dataclass(slots=True)
class _Producer:
    epoch: int
    batches: deque[tuple[int, int, int]]  # (first sequence, last sequence, base offset)


class ProducerState:
    """Per partition: each idempotent producer's epoch and last batches, for exactly-once appends.

    A batch continues the sequence (accepted), repeats one of the last five (duplicate: answer with
    its original offset, store nothing), or leaves a gap (out of order). A newer epoch restarts at 0.
    """

    __slots__ = ("_producers", "txns")

    def __init__(self) -> None:
        self._producers: dict[int, _Producer] = {}
        self.txns = PartitionTxns()  # the partition's open and aborted transactions

    def check(self, pid: int, epoch: int, seq: int, count: int) -> tuple[int, int]:
        """(verdict, original base offset for a duplicate else -1). Non-idempotent batches pass."""
        if pid < 0 or seq < 0:
            return ACCEPT, -1
        p = self._producers.get(pid)
        if p is None:
            return ACCEPT, -1  # unknown producer (new, or state lost with a restart): start here
        if epoch < p.epoch:
            return INVALID_PRODUCER_EPOCH, -1
        if epoch > p.epoch:
            return (ACCEPT, -1) if seq == 0 else (OUT_OF_ORDER_SEQUENCE_NUMBER, -1)
        last = seq + count - 1
        for first, last_seen, offset in p.batches:
            if first == seq and last_seen == last:
                return DUPLICATE_SEQUENCE_NUMBER, offset
        expected = (p.batches[-1][1] + 1) % (SEQUENCE_MAX + 1) if p.batches else seq
        return (ACCEPT, -1) if seq == expected else (OUT_OF_ORDER_SEQUENCE_NUMBER, -1)

    def record(self, pid: int, epoch: int, seq: int, count: int, base_offset: int) -> None:
        if pid < 0 or seq < 0:
            return
        p = self._producers.get(pid)
        if p is None or epoch != p.epoch:
            p = self._producers[pid] = _Producer(epoch, deque(maxlen=PRODUCER_BATCHES_KEPT))
        p.batches.append((seq, (seq + count - 1) % (SEQUENCE_MAX + 1), base_offset))
