"""Committed consumer-group offsets, stored durably in an internal stream (as Kafka's
``__consumer_offsets``): one uncompressed record batch per OffsetCommit, key = [group, topic,
partition], value = [offset, metadata] (JSON), replayed into the coordinator at start-up; the
latest record for a key wins.

The log is passed in (a StreamLog in the server, a faulty one in the simulator), so both run the
same format and the same commit (``commit_offsets``) over the core's Coordinator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ferrymq.core.clock import Clock
from ferrymq.core.groups import Coordinator
from ferrymq.core.topics import PartitionLog, TopicRegistry
from ferrymq.protocols.kafka import errors
from ferrymq.protocols.kafka.batch import validate
from ferrymq.protocols.kafka.records import Record, decode_batches, encode_batch

OFFSETS_TOPIC = "__consumer_offsets"  # the log, shown to clients as Kafka's internal topic
OFFSETS_TOPIC_CONFIGS = {"cleanup.policy": "compact"}  # as Kafka's (kept whole here: no cleaner)
SEGMENT_BYTES = 64 * 1024 * 1024
READ_BYTES = 4 * 1024 * 1024
# What an OffsetCommit asks, per topic: (partition, offset, metadata or None).
Wanted = list[tuple[str, list[tuple[int, int, str | None]]]]


def stored_records(log: PartitionLog) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(key, value) of every record of one of the broker's own internal logs, oldest first."""
    offset = log.start_offset
    while offset < log.next_offset:
        data = log.read(offset, READ_BYTES)
        if not data:
            return
        before = offset
        for off, _ts, key, value, _h in decode_batches(data):
            if off >= offset:
                yield key, value
            offset = max(offset, off + 1)
        if offset == before:  # nothing readable past it (only control batches): the end
            return


class OffsetsLog:
    def __init__(self, log: PartitionLog, clock: Clock) -> None:
        self.log = log
        self.clock = clock

    def load(self, coordinator: Coordinator) -> int:
        latest: dict[tuple[str, str, int], tuple[int, str]] = {}
        for key, value in stored_records(self.log):
            if key is None:
                continue
            g, t, p = json.loads(key)
            if value is None:  # a tombstone: OffsetDelete or DeleteGroups removed it
                latest.pop((g, t, p), None)
                continue
            o, m = json.loads(value)
            latest[(g, t, p)] = (o, m)
        for (g, t, p), (o, m) in latest.items():
            coordinator.commit(g, t, p, o, m)
        return len(latest)

    def append(self, group: str, entries: list[tuple[str, int, int, str]]) -> PartitionLog:
        """Store one commit's (topic, partition, offset, metadata) entries as one batch."""
        return self._append([(json.dumps([group, t, p]).encode(), json.dumps([o, m]).encode(), ())
                             for t, p, o, m in entries])

    def append_tombstones(self, group: str, keys: list[tuple[str, int]]) -> PartitionLog:
        """Store that these (topic, partition) offsets of ``group`` are gone, as one batch."""
        return self._append([(json.dumps([group, t, p]).encode(), None, ()) for t, p in keys])

    def _append(self, records: list[Record]) -> PartitionLog:
        data = bytearray(encode_batch(records, self.clock.now_ms(), base_offset=self.log.next_offset))
        info = validate(data, len(data))[0]
        self.log.append(data, [(0, info.count, info.max_timestamp)])
        return self.log

    def close(self) -> None:
        self.log.close()


def commit_offsets(coordinator: Coordinator, topics: TopicRegistry, offsets: OffsetsLog, group: str,
                   generation: int, member: str, wanted: Wanted) -> tuple[list[dict[str, Any]], Any]:
    """An OffsetCommit: checked by the coordinator (generation, member), refused per partition of an
    unknown topic, applied, and appended to the offsets log as one batch. Returns the response's
    topics and the log appended to (None if nothing was), which the commit pipeline must cover
    before the response leaves."""
    code = coordinator.check_commit(group, generation, member)
    entries = []
    out = []
    for name, parts in wanted:
        answers = []
        for partition, offset, meta in parts:
            pc = code
            if pc == errors.NONE and topics.get(name) is None:
                pc = errors.UNKNOWN_TOPIC_OR_PARTITION
            if pc == errors.NONE:
                entries.append((name, partition, offset, meta or ""))
            answers.append({"partition_index": partition, "error_code": pc})
        out.append({"name": name, "partitions": answers})
    for name, partition, offset, meta in entries:
        coordinator.commit(group, name, partition, offset, meta)
    return out, offsets.append(group, entries) if entries else None
