"""The streams every front end shares: the core's topic registry over the stream store on disk,
opened once at start-up, with its upkeep (the retention timer and the log cleaner).

Why here and not in a front end: Kafka topics and AMQP stream queues are the same logs; retention and
compaction run whether or not the Kafka listener could bind its port.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

from ferrymq.config import Settings
from ferrymq.core.clock import Clock
from ferrymq.core.topics import TopicRegistry
from ferrymq.protocols.kafka.partitions import producers_from
from ferrymq.server.cleaner import LogCleaner
from ferrymq.storage.stream_store import StreamStore

log = logging.getLogger("ferrymq.kafka")

class Streams:
    """The topic registry and where it lives (``<data_dir>/streams``, or a temporary directory)."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.clock = clock
        self.retention_check_ms = settings.kafka_retention_check_ms
        self.cleaner_backoff_ms = settings.kafka_cleaner_backoff_ms
        self.cleaner_buffer_bytes = settings.kafka_cleaner_dedupe_buffer_bytes
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if settings.data_dir:
            self.base = Path(settings.data_dir)
        else:  # no data directory: streams still need files; they go with the process
            self._tmp = tempfile.TemporaryDirectory(prefix="ferrymq-streams-")
            self.base = Path(self._tmp.name)
        self.topics = TopicRegistry(StreamStore(self.base / "streams"), settings.kafka_num_partitions,
                                    producers_from,
                                    {"max.message.bytes": str(settings.kafka_message_max_bytes)})
        self.cleaner: LogCleaner | None = None
        self._retention_timer: asyncio.TimerHandle | None = None

    def load(self) -> int:
        """Open the stored topics; returns bytes of torn tail truncated across their logs."""
        opened = self.topics.load()
        return sum(lg.recovery.bytes_truncated for t in opened for lg in t.logs)

    def start(self) -> None:
        """Retention every ``log.retention.check.interval.ms``; the cleaner in its thread."""
        loop = asyncio.get_running_loop()
        self._retention_timer = loop.call_later(self.retention_check_ms / 1000, self._retention)
        self.cleaner = LogCleaner(self.topics, self.clock, self.cleaner_backoff_ms,
                                  self.cleaner_buffer_bytes)
        self.cleaner.start()

    def _retention(self) -> None:
        removed = self.topics.apply_retention(self.clock.now_ms())
        if removed:
            log.info("retention removed %d stream segment(s)", removed)
        loop = asyncio.get_running_loop()
        self._retention_timer = loop.call_later(self.retention_check_ms / 1000, self._retention)

    async def stop(self) -> None:
        if self._retention_timer is not None:
            self._retention_timer.cancel()
        if self.cleaner is not None:
            await self.cleaner.close()

    def close(self) -> None:
        """Close the partition logs (after the commit pipeline's final commit)."""
        self.topics.close()
        if self._tmp is not None:
            self._tmp.cleanup()
