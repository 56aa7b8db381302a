"""The log cleaner: compacts partitions of ``cleanup.policy=compact`` topics in a thread of its own.

Why a thread: a pass reads and decodes every record of the inactive segments, seconds of work for a
big partition, and the loop must keep serving. The thread only reads inactive segments (through its
own descriptors) and writes ``.cleaned`` files; the swap happens back on the loop, between requests,
so a fetch never sees half a segment. One pass at a time; Kafka's ``log.cleaner.backoff.ms`` apart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from ferrymq.server.kafka.topics import RECORD_CODEC, Topics
from ferrymq.storage.stream_compact import CompactionPlan, apply, plan

log = logging.getLogger("ferrymq.kafka")

CLEANER_BACKOFF_MS = 15_000  # Kafka's log.cleaner.backoff.ms: the pause when nothing is left to clean


class LogCleaner:
    def __init__(self, topics: Topics, backoff_ms: int = CLEANER_BACKOFF_MS) -> None:
        self.topics = topics
        self.backoff_ms = backoff_ms
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
        now_ms = int(time.time() * 1000)
        removed = 0
        for lg, keep_ms in self.topics.compactable(now_ms):
            p: CompactionPlan = await self.loop.run_in_executor(
                self._executor, plan, lg, RECORD_CODEC, now_ms, keep_ms)
            swapped = apply(p)
            removed += p.records_removed
            if swapped:
                log.info("compacted %s: %d segment(s) rewritten, %d record(s) removed",
                         lg.path, swapped, p.records_removed)
        self.passes += 1
        self.records_removed += removed
        return removed

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)
