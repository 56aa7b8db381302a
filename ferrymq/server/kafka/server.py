"""The Kafka listener and its per-loop-turn machinery: dispatch, group commit of produced batches
(acks held until the fsync that covers them), long-polling fetches, and the group coordinator's timers.

The turn: requests are handled as their bytes arrive (produce appends to the partition logs with one
pwrite per partition); at the end of the turn ``flush`` wakes the fetches the turn's appends can
satisfy, starts one group commit (a thread; the loop never waits for the disk) and writes every
connection's answered responses once. A commit's return releases the produce and offset-commit
responses of the turns it covers.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from ferrymq import limits
from ferrymq.config import Settings
from ferrymq.core.groups import Coordinator
from ferrymq.protocols.kafka import errors, versions
from ferrymq.protocols.kafka.header import parse_header
from ferrymq.server.kafka.apis import KafkaApis
from ferrymq.server.kafka.cleaner import LogCleaner
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.data import DataApis, FetchWaiter
from ferrymq.server.kafka.offsets import OffsetsLog
from ferrymq.server.kafka.topics import Topics
from ferrymq.storage.commit import FsyncPolicy, GroupCommit
from ferrymq.storage.stream_store import StreamStore

log = logging.getLogger("ferrymq.kafka")

Handler = Callable[[KafkaConnection, Slot, object], None]


class KafkaServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
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
        self.policy = FsyncPolicy.parse(settings.fsync) if settings.data_dir else FsyncPolicy("never")
        self.group_commit = GroupCommit(self.policy)
        num_partitions = settings.kafka_num_partitions
        self.topics = Topics(StreamStore(root), num_partitions)
        self.coordinator = Coordinator(id_prefix=f"{time.time_ns() % 10**9:x}-")
        self.offsets = OffsetsLog(base / "stream-offsets")
        self.apis = KafkaApis(self)
        self.data = DataApis(self)
        self.handlers: dict[int, Handler] = {**self.apis.handlers(), **self.data.handlers()}
        # turn-based durability: responses held until the commit covering their turn returns
        self.turn = 1
        self.held: list[tuple[int, Callable[[bool], None]]] = []
        self.in_flight = False
        self.dirty_in_turn = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ferrymq-kafka-fsync")
        self._to_flush: set[KafkaConnection] = set()
        self._flush_scheduled = False
        self.woken: set[FetchWaiter] = set()
        self._server: asyncio.base_events.Server | None = None
        self._loaded = False
        self.append_listeners: list[Callable[[str, int], None]] = []  # (topic, partition) grew
        self._timer: asyncio.TimerHandle | None = None
        self._retention_timer: asyncio.TimerHandle | None = None
        self._interval_timer: asyncio.TimerHandle | None = None
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
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if self.woken:
            woken, self.woken = self.woken, set()
            for w in woken:
                self.data.try_complete(w)
        self._end_turn()
        to_flush, self._to_flush = self._to_flush, set()
        for conn in to_flush:
            if not conn.closed:
                conn.write_out()

    def hold(self, send: Callable[[bool], None]) -> None:
        """Run ``send(stored)`` once this turn's appends are durable (at once if nothing waits)."""
        if self.policy.mode != "always" or (not self.dirty_in_turn and not self.in_flight and not self.held):
            send(True)
            return
        self.held.append((self.turn, send))

    def note_append(self, lg: object) -> None:
        self.group_commit.note_append(lg)  # type: ignore[arg-type]
        self.dirty_in_turn = True
        self.want_flush()

    def _end_turn(self) -> None:
        covers = self.turn
        self.turn += 1
        self.dirty_in_turn = False
        if self.in_flight or not self.group_commit.pending:
            if not self.in_flight:
                self._release(covers, True)
            return
        if self.policy.mode == "always":
            self._start_commit(covers)
        elif self.policy.mode == "interval" and self._interval_timer is None:
            self._interval_timer = self.loop.call_later(self.policy.interval_ms / 1000, self._on_interval)
        elif self.policy.mode == "never":
            self.group_commit.commit()  # forgets the dirty set: the page cache is the store

    def _on_interval(self) -> None:
        self._interval_timer = None
        if self.group_commit.pending and not self.in_flight:
            self._start_commit(self.turn - 1)

    def _start_commit(self, covers: int) -> None:
        self.in_flight = True
        fut = self._executor.submit(self.group_commit.commit, int(self.loop.time() * 1000))
        fut.add_done_callback(lambda f: self.loop.call_soon_threadsafe(self._committed, f, covers))

    def _committed(self, fut: Future[int], covers: int) -> None:
        self.in_flight = False
        exc = fut.exception()
        if exc is not None:
            log.error("stream fsync failed (%s): failing the produce acks it covered", exc)
        self._release(covers, exc is None)
        if self.group_commit.pending and self.policy.mode == "always":
            self._start_commit(self.turn - 1)
        elif not self.group_commit.pending:
            self._release(self.turn - 1, True)  # held later without an append of their own
        self.want_flush()

    def _release(self, upto: int, ok: bool) -> None:
        held = self.held
        n = 0
        while n < len(held) and held[n][0] <= upto:
            held[n][1](ok)
            n += 1
        if n:
            del held[:n]

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

    async def close(self) -> None:
        for t in (self._timer, self._retention_timer, self._interval_timer):
            if t is not None:
                t.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.abort("broker shutting down")
        if self._server is not None:
            await self._server.wait_closed()
        await self.cleaner.close()
        self._executor.shutdown(wait=True)
        try:
            if self.policy.mode != "never":
                self.group_commit.commit()
        except OSError as exc:
            log.error("final stream commit failed: %s", exc)
        self.topics.close()
        self.offsets.close()
        if self._tmp is not None:
            self._tmp.cleanup()
