"""The Kafka listener and its per-loop-turn machinery: dispatch, long-polling fetch wake-ups, and the
group coordinator's timers.

The turn: requests are handled as their bytes arrive (produce appends to the partition logs with one
pwrite per partition, and hands the logs to the shared commit pipeline, which holds the produce and
offset-commit responses until the fsync that covers them); at the end of the turn ``flush`` wakes the
fetches the turn's appends can satisfy and writes every connection's answered responses once.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ferrymq import limits
from ferrymq.config import Settings
from ferrymq.core.groups import Coordinator
from ferrymq.protocols.kafka import errors, versions
from ferrymq.protocols.kafka.header import parse_header
from ferrymq.server.commit import CommitPipeline
from ferrymq.server.kafka.apis import KafkaApis
from ferrymq.server.kafka.cleaner import LogCleaner
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.data import DataApis, FetchWaiter
from ferrymq.server.kafka.offsets import OffsetsLog
from ferrymq.server.kafka.topics import Topics
from ferrymq.storage.stream_store import StreamStore

log = logging.getLogger("ferrymq.kafka")

Handler = Callable[[KafkaConnection, Slot, object], None]


class KafkaServer:
    def __init__(self, settings: Settings, commit: CommitPipeline) -> None:
        self.settings = settings
        self.commit = commit
        commit.attach(self)
        self.loop = asyncio.get_running_loop()
        self.connections: set[KafkaConnection] = set()
        self.port = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if settings.data_dir:
            base = Path(settings.data_dir)
        else:  # no data directory: streams still need files; they go with the process
            self._tmp = tempfile.TemporaryDirectory(prefix="ferrymq-streams-")
            base = Path(self._tmp.name)
        root = base / "streams"
        num_partitions = settings.kafka_num_partitions
        self.topics = Topics(StreamStore(root), num_partitions)
        self.coordinator = Coordinator(id_prefix=f"{time.time_ns() % 10**9:x}-")
        self.offsets = OffsetsLog(base / "stream-offsets")
        self.apis = KafkaApis(self)
        self.data = DataApis(self)
        self.handlers: dict[int, Handler] = {**self.apis.handlers(), **self.data.handlers()}
        self._to_flush: set[KafkaConnection] = set()
        self.woken: set[FetchWaiter] = set()
        self._server: asyncio.base_events.Server | None = None
        self._loaded = False
        self.append_listeners: list[Callable[[str, int], None]] = []  # (topic, partition) grew
        self._timer: asyncio.TimerHandle | None = None
        self._retention_timer: asyncio.TimerHandle | None = None
        self.cleaner = LogCleaner(self.topics)

    def load(self) -> None:
        """Open the stored topics and offsets (once): AMQP stream queues recover on them too."""
        if self._loaded:
            return
        self._loaded = True
        truncated = self.topics.load()
        restored = self.offsets.load(self.coordinator)
        log.info("streams: %d topic(s) opened, %d byte(s) of torn tail truncated, %d committed offset(s)",
                 len(self.topics.topics), truncated, restored)

    async def start(self, host: str, port: int) -> int:
        self.load()
        self._server = await self.loop.create_server(
            lambda: KafkaConnection(self), host, port, reuse_address=True, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        self._arm_timer()
        self._retention_timer = self.loop.call_later(limits.KAFKA_RETENTION_CHECK_MS / 1000, self._retention)
        self.cleaner.start()
        return self.port

    # --- dispatch ------------------------------------------------------------------------------

    def handle(self, conn: KafkaConnection, frame: memoryview) -> None:
        if conn.sasl_raw:
            self.apis.sasl_raw_token(conn, bytes(frame))
            return
        header, reader = parse_header(frame, versions.flexible)
        key, version = header.api_key, header.api_version
        conn.peer_client_id = header.client_id or ""
        slot = conn.new_slot(key, version, header.correlation_id, versions.flexible(key, version))
        if key == versions.API_VERSIONS:
            self.apis.api_versions(conn, slot, reader)
            return
        if not versions.supported(key, version):
            conn.abort(str(errors.UnsupportedVersion(key, version)))
            return
        self.handlers[key](conn, slot, (header, reader))

    # --- flush once per loop turn --------------------------------------------------------------

    def want_flush(self, conn: KafkaConnection | None = None) -> None:
        if conn is not None:
            self._to_flush.add(conn)
        self.commit.request_turn_end()

    def drain(self) -> None:
        """The turn's first step: parked fetches the turn's appends can satisfy answer now."""
        if self.woken:
            woken, self.woken = self.woken, set()
            for w in woken:
                self.data.try_complete(w)

    def write_out(self) -> None:
        """The turn's last step: every connection's answered responses in one write each."""
        to_flush, self._to_flush = self._to_flush, set()
        for conn in to_flush:
            if not conn.closed:
                conn.write_out()

    def hold(self, send: Callable[[bool], None]) -> None:
        """Run ``send(stored)`` once this turn's appends are durable (the pipeline's one rule)."""
        self.commit.hold(send)

    def note_append(self, lg: object) -> None:
        self.commit.note_append(lg)  # type: ignore[arg-type]
        self.want_flush()

    # --- timers --------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(self.loop.time() * 1000)

    def _arm_timer(self) -> None:
        delay = limits.KAFKA_GROUP_TICK_MS / 1000
        deadline = self.coordinator.next_deadline_ms()
        if deadline is not None:
            delay = min(delay, max(0.0, (deadline - self.now_ms()) / 1000))
        self._timer = self.loop.call_later(delay, self._tick)

    def _tick(self) -> None:
        self.apis.deliver(self.coordinator.tick(self.now_ms()))
        self._arm_timer()

    def _retention(self) -> None:
        removed = self.topics.apply_retention(int(time.time() * 1000))
        if removed:
            log.info("retention removed %d stream segment(s)", removed)
        self._retention_timer = self.loop.call_later(limits.KAFKA_RETENTION_CHECK_MS / 1000, self._retention)

    def forget(self, conn: KafkaConnection) -> None:
        self.data.forget(conn)

    # --- shutdown ------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop listening, timers and the cleaner; the stores stay open for the final commit."""
        for t in (self._timer, self._retention_timer):
            if t is not None:
                t.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.abort("broker shutting down")
        if self._server is not None:
            await self._server.wait_closed()
        await self.cleaner.close()

    def close(self) -> None:
        """Close the partition and offsets logs (after the pipeline's final commit)."""
        self.topics.close()
        self.offsets.close()
        if self._tmp is not None:
            self._tmp.cleanup()
