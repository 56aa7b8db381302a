"""The log cleaner: compacts partitions of ``cleanup.policy=compact`` topics (Kafka's and AMQP stream
queues' alike) in a thread of its own. Which partitions is the core's policy (TopicRegistry); how is
storage's (stream_compact); this module runs it off the loop.

Why a thread: a pass reads and decodes every record of the inactive segments, seconds of work for a
big partition, and the loop must keep serving. The thread only reads inactive segments (through its
own descriptors) and writes ``.cleaned`` files; the swap happens back on the loop, between requests,
so a fetch never sees half a segment. One pass at a time; Kafka's ``log.cleaner.backoff.ms`` apart.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from ferrymq import limits
from ferrymq.core.clock import Clock
from ferrymq.core.topics import TopicRegistry
from ferrymq.protocols.kafka import compaction
from ferrymq.storage.stream_compact import (
    CompactionPlan,
    RecordCodec,
    apply,
    compact,
    map_keys_for,
    needs_compaction,
    plan,
)
from ferrymq.storage.stream_log import StreamLog

log = logging.getLogger("ferrymq.kafka")
RECORD_CODEC = RecordCodec(compaction.keys, compaction.filter_batch)

CLEANER_BACKOFF_MS = limits.KAFKA_CLEANER_BACKOFF_MS  # Kafka's log.cleaner.backoff.ms
DEDUPE_BUFFER_BYTES = limits.KAFKA_CLEANER_DEDUPE_BUFFER_BYTES  # Kafka's log.cleaner.dedupe.buffer.size


class LogCleaner:
    def __init__(self, topics: TopicRegistry, clock: Clock, backoff_ms: int = CLEANER_BACKOFF_MS,
                 buffer_bytes: int = DEDUPE_BUFFER_BYTES) -> None:
        self.topics = topics
        self.clock = clock
        self.backoff_ms = backoff_ms
        self.map_keys_max = map_keys_for(buffer_bytes)  # a pass maps at most this many keys
        self.loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ferrymq-kafka-cleaner")
        self._task: asyncio.Task[None] | None = None
        self.passes = 0
        self.records_removed = 0

    def start(self) -> None:
        self._task = self.loop.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.clean_once()
            except Exception:  # a bad segment must not stop the cleaner for every other topic
                log.exception("log cleaner pass failed")
            await asyncio.sleep(self.backoff_ms / 1000)

    async def clean_once(self) -> int:
        """Clean every partition that needs it; records removed."""
        now_ms = self.clock.now_ms()
        removed = 0
        for lg, keep_ms in self.compactable(now_ms):
            p: CompactionPlan = await self.loop.run_in_executor(
                self._executor, plan, lg, RECORD_CODEC, now_ms, keep_ms, self.map_keys_max)
            swapped = apply(p)
            removed += p.records_removed
            if swapped:
                log.info("compacted %s: %d segment(s) rewritten, %d record(s) removed",
                         lg.path, swapped, p.records_removed)
        self.passes += 1
        self.records_removed += removed
        return removed

    def compactable(self, now_ms: int) -> list[tuple[StreamLog, int]]:
        """(log, delete.retention.ms) of every compacted partition a pass would change."""
        return [(lg, keep) for lg, keep in self.topics.compacted() if needs_compaction(lg, now_ms)]

    def clean_now(self, now_ms: int) -> int:
        """One pass here and now, on the caller's thread (tests, tools); records removed."""
        return sum(compact(lg, RECORD_CODEC, now_ms, keep, self.map_keys_max)
                   for lg, keep in self.compactable(now_ms))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)
