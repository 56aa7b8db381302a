"""Stream segments are the one segment (ferrymq.storage.segment) with the Kafka batch format
(ferrymq.storage.formats.KAFKA_BATCHES); this module only keeps the old import path working."""

from __future__ import annotations

from ferrymq.storage.formats import BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES, MAX_BATCH_BYTES
from ferrymq.storage.segment import StreamSegment

__all__ = ["BATCH_HEADER_BYTES", "LOG_OVERHEAD_BYTES", "MAX_BATCH_BYTES", "StreamSegment"]
