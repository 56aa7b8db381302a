"""DeleteRecords (21): move partitions' log start offset (the low watermark) forward.

The new start is made durable before the answer (the partition log writes it with one small file
replace, as Kafka checkpoints its log start offsets), then whole segments below it are deleted by
the path retention takes. What a partition answers is ``TopicRegistry.delete_records``.
"""

from __future__ import annotations

import logging
from typing import Any

from ferrymq.core.topics import TopicRegistry
from ferrymq.protocols.kafka import errors, versions
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.handlers import Handler, decoded, reply

log = logging.getLogger("ferrymq.kafka")


class RecordApis:
    """``topics``: whose partitions lose their oldest records."""

    def __init__(self, topics: TopicRegistry) -> None:
        self.topics = topics

    def handlers(self) -> dict[int, Handler]:
        return {versions.DELETE_RECORDS: decoded(self.delete_records)}

    def delete_records(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        out = []
        for t in req.topics:
            topic = self.topics.get(t.name)
            parts = []
            for p in t.partitions:
                if topic is None or not 0 <= p.partition_index < topic.spec.partitions:
                    code, low = errors.UNKNOWN_TOPIC_OR_PARTITION, -1
                else:
                    code, low = self._delete(topic, p.partition_index, p.offset)
                parts.append({"partition_index": p.partition_index, "low_watermark": low, "error_code": code})
            out.append({"name": t.name, "partitions": parts})
        reply(slot, {"throttle_time": 0, "topics": out})

    def _delete(self, topic: Any, partition: int, offset: int) -> tuple[int, int]:
        try:
            code, low = self.topics.delete_records(topic, partition, offset)
        except OSError as exc:  # the new start could not be stored: nothing moved
            log.error("DeleteRecords on %s-%d failed: %s", topic.spec.name, partition, exc)
            return errors.KAFKA_STORAGE_ERROR, -1
        if code == errors.NONE:
            log.info("log start offset of %s-%d is now %d (DeleteRecords)", topic.spec.name, partition, low)
        return code, low
