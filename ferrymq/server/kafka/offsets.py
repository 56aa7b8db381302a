"""Committed consumer-group offsets, stored durably in an internal stream (as Kafka's
``__consumer_offsets``): one uncompressed record batch per OffsetCommit, key = [group, topic,
partition], value = [offset, metadata] (JSON), replayed into the coordinator at start-up; the
latest record for a key wins."""

from __future__ import annotations

import json
from pathlib import Path

from ferrymq.core.clock import Clock
from ferrymq.core.groups import Coordinator
from ferrymq.protocols.kafka.batch import validate
from ferrymq.protocols.kafka.records import decode_batches, encode_batch
from ferrymq.storage.stream_log import StreamLog

SEGMENT_BYTES = 64 * 1024 * 1024
READ_BYTES = 4 * 1024 * 1024


class OffsetsLog:
    def __init__(self, path: Path, clock: Clock) -> None:
        self.log = StreamLog(path, segment_bytes=SEGMENT_BYTES)
        self.clock = clock

    def load(self, coordinator: Coordinator) -> int:
        latest: dict[tuple[str, str, int], tuple[int, str]] = {}
        offset = self.log.start_offset
        while offset < self.log.next_offset:
            data = self.log.read(offset, READ_BYTES)
            if not data:
                break
            for off, _ts, key, value, _h in decode_batches(data):
                if key is not None and value is not None and off >= offset:
                    g, t, p = json.loads(key)
                    o, m = json.loads(value)
                    latest[(g, t, p)] = (o, m)
                offset = max(offset, off + 1)
        for (g, t, p), (o, m) in latest.items():
            coordinator.commit(g, t, p, o, m)
        return len(latest)

    def append(self, group: str, entries: list[tuple[str, int, int, str]]) -> StreamLog:
        """Store one commit's (topic, partition, offset, metadata) entries as one batch."""
        records = [(json.dumps([group, t, p]).encode(), json.dumps([o, m]).encode(), ())
                   for t, p, o, m in entries]
        data = bytearray(encode_batch(records, self.clock.now_ms(), base_offset=self.log.next_offset))
        info = validate(data, len(data))[0]
        self.log.append(data, [(0, info.count, info.max_timestamp)])
        return self.log

    def close(self) -> None:
        self.log.close()
