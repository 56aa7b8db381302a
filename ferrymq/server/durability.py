"""The durability shell: writes queue logs once per loop turn, group-commits them off the loop, and
holds publisher confirms until the fsync that covers their messages has returned.

The turn's pipeline (AMQPServer.flush): channels drain their effects (confirms are held here while
anything durable is pending), then ``end_of_turn`` writes every dirty queue log with one write each,
then a commit (one fsync per written log) runs in a thread; when it returns, the confirms of every
turn it covers are sent, in order. The loop never waits for the disk.

Also here: recovery at start-up (topology from SQLite, messages from the queue logs), with a one-line
summary, and the disk alarm (free space below the limit blocks publishers, as RabbitMQ does).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ferrymq.config import Settings
from ferrymq.core.broker import Broker
from ferrymq.protocols.amqp.properties import encode_properties, intern_properties
from ferrymq.protocols.amqp.tables import decode_table, encode_table
from ferrymq.storage.commit import FsyncPolicy, GroupCommit
from ferrymq.storage.data_dir import DataDir
from ferrymq.storage.log import Log, LogRecoveryReport
from ferrymq.storage.metadata import Metadata
from ferrymq.storage.queue_log import QueueLog

if TYPE_CHECKING:
    from ferrymq.core.channel import Channel
    from ferrymq.server.amqp.connection import AMQPConnection

log = logging.getLogger("ferrymq.storage")

QUEUE_SEGMENT_BYTES = 16 * 1024 * 1024

# (turn, connection, channel, what to send once the turn's writes are durable)
Held = tuple[int, "AMQPConnection", "Channel", "Callable[[bool], None]"]


def _decode_args(raw: bytes) -> dict[str, Any]:
    return decode_table(raw, 4, len(raw))


@dataclass(slots=True)
class RecoverySummary:
    queues: int = 0
    exchanges: int = 0
    bindings: int = 0
    messages: int = 0
    paged: int = 0
    bytes_truncated: int = 0
    segments_removed: int = 0
    orphans_removed: int = 0
    errors: int = 0
    took_ms: float = 0.0

    def line(self) -> str:
        return (f"recovered {self.queues} durable queue(s), {self.exchanges} exchange(s), "
                f"{self.bindings} binding(s), {self.messages} message(s) ({self.paged} left on disk); "
                f"{self.bytes_truncated} byte(s) of torn tail truncated, {self.segments_removed} "
                f"segment(s) and {self.orphans_removed} orphan queue dir(s) removed, {self.errors} "
                f"error(s), in {self.took_ms:.0f} ms")


class Durability:
    """One per broker with a data directory. Not thread-safe except for the commit it runs."""

    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.data = DataDir(settings.data_dir)
        self.policy = FsyncPolicy.parse(settings.fsync)
        # Only logs that want fsync are ever noted for a commit; under a broker-wide "never" those
        # are the queues that said x-fsync: always, and they are committed at once.
        self.group = GroupCommit(self.policy if self.policy.mode != "never" else FsyncPolicy("always"))
        self.disk_free_limit = settings.disk_free_limit_bytes
        self.reports: list[LogRecoveryReport] = []
        self.metadata = Metadata(self.data.path, self._open_queue, encode_table, _decode_args)
        self.dirty: list[QueueLog] = []
        self.publish_pending = False  # a PUBLISH record was logged since the last write
        self.turn = 1  # confirms drained during this turn are held under this number
        self.written_turn = 0  # every turn up to this one has been written to the OS
        self.held: list[Held] = []
        self.in_flight = False
        self._interval_timer: asyncio.TimerHandle | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ferrymq-fsync")
        self._write_error_logged = False
        self.schedule_flush = lambda: None  # set by the server: a write wants a turn's end
        self.counters = dict.fromkeys(
            ("writes", "write_errors", "commits", "fsyncs", "fsync_errors", "confirms_held"), 0)
        self.summary = RecoverySummary()
        self.closed = False

    # --- stores ----------------------------------------------------------------------------------

    def _open_queue(self, path: Path, arguments: dict[str, Any]) -> QueueLog:
        qlog = Log(path, segment_bytes=QUEUE_SEGMENT_BYTES)
        self.reports.append(qlog.recovery)
        if not qlog.recovery.clean:
            log.warning("recovery: %s", qlog.recovery.summary())
        sync = arguments.get("x-fsync", "never" if self.policy.mode == "never" else "always") != "never"
        return QueueLog(qlog, encode_properties, intern_properties, self, sync=sync)

    def note_dirty(self, qlog: QueueLog) -> None:
        self.dirty.append(qlog)
        self.schedule_flush()

    # --- recovery --------------------------------------------------------------------------------

    def recover(self, broker: Broker) -> RecoverySummary:
        """Declare the stored topology again; each durable queue rebuilds itself from its log."""
        started = time.perf_counter()
        s = self.summary
        top = self.metadata.load()
        s.orphans_removed = len(top.orphans_removed)
        for name in top.orphans_removed:
            log.warning("recovery: removed queue directory %s: no durable queue owns it", name)
        for vhost, name, type_, auto_delete, internal, args in top.exchanges:
            ex = self._replay(broker.add_vhost(vhost).declare_exchange, name, type_, durable=True,
                              auto_delete=auto_delete, internal=internal, arguments=args)
            s.exchanges += ex is not None
        for vhost in list(broker.vhosts.values()):
            if (self.data.path / "delayed").exists():
                vhost.attach_delay_store()
        for vhost, name, auto_delete, args in top.queues:
            queue = self._replay(broker.add_vhost(vhost).declare_queue, name, connection=None, durable=True,
                                 auto_delete=auto_delete, arguments=args)
            if queue is not None:
                s.queues += 1
                s.messages += queue.message_count
                s.paged += queue.paged_count
        for vhost, source, dest, to_exchange, key, args in top.bindings:
            done = self._replay(broker.add_vhost(vhost).bind, dest, source, key, args,
                                to_exchange=to_exchange, connection=None, result=True)
            s.bindings += done is not None
        s.bytes_truncated = sum(r.bytes_truncated for r in self.reports)
        s.segments_removed = sum(len(r.removed) for r in self.reports)
        s.took_ms = (time.perf_counter() - started) * 1000
        return s

    def _replay(self, action: Any, *args: Any, result: Any = None, **kwargs: Any) -> Any:
        """Run one declaration again; None if it failed (reported, counted, and skipped)."""
        try:
            out = action(*args, **kwargs)
        except Exception as exc:  # one bad row must not keep the broker down: report and go on
            self.summary.errors += 1
            log.error("recovery: could not restore %r: %s", args[:2], exc)
            return None
        return result if result is not None else out

    # --- confirms --------------------------------------------------------------------------------

    def must_hold(self) -> bool:
        """Confirms wait while a logged message is not yet covered by a commit (or older ones wait)."""
        return self.publish_pending or self.in_flight or bool(self.held)

    def hold(self, conn: AMQPConnection, ch: Channel, send: Callable[[bool], None]) -> None:
        """Run ``send(stored)`` once the commit covering this turn returns (``stored`` False if it
        failed), if the channel is still open by then. Confirms and tx.commit-ok wait this way."""
        self.held.append((self.turn, conn, ch, send))
        self.counters["confirms_held"] += 1

    def _release(self, upto: int, ok: bool = True) -> None:
        held = self.held
        n = 0
        while n < len(held) and held[n][0] <= upto:
            _, conn, ch, send = held[n]
            if conn.channels.get(ch.number) is ch and not conn.codec.closed:
                send(ok)
                conn.server.want_flush(conn)
            n += 1
        if n:
            del held[:n]

    # --- the end of a loop turn ------------------------------------------------------------------

    def end_of_turn(self) -> None:
        """Write every dirty queue log (one write each), then start a commit if one is due."""
        if self.closed:
            return
        dirty, self.dirty = self.dirty, []
        failed: list[QueueLog] = []
        for qlog in dirty:
            try:
                if qlog.write():
                    self.group.note_append(qlog.log)  # type: ignore[arg-type]
                self.counters["writes"] += 1
            except OSError as exc:
                failed.append(qlog)
                self.counters["write_errors"] += 1
                if not self._write_error_logged:
                    log.error("queue log write failed (%s): confirms wait until it succeeds", exc)
                    self._write_error_logged = True
        if failed:
            self.dirty.extend(failed)
        else:
            self.written_turn = self.turn
            self.publish_pending = False
            self._write_error_logged = False
        self.turn += 1
        self._maybe_commit()

    def _maybe_commit(self) -> None:
        if self.in_flight:
            return
        mode = self.group.policy.mode
        if self.group.pending and mode == "always":
            self._start_commit()
        elif self.group.pending and mode == "interval":
            if self.group.due(int(self.loop.time() * 1000)):
                self._start_commit()
            elif self._interval_timer is None:
                self._interval_timer = self.loop.call_later(self.policy.interval_ms / 1000, self._on_interval)
        else:
            self._release(self.written_turn)

    def _on_interval(self) -> None:
        self._interval_timer = None
        self._maybe_commit()

    def _start_commit(self) -> None:
        covers = self.written_turn
        self.in_flight = True
        now_ms = int(self.loop.time() * 1000)
        fut = self._executor.submit(self.group.commit, now_ms)
        fut.add_done_callback(lambda f: self.loop.call_soon_threadsafe(self._committed, f, covers))

    def _committed(self, fut: Future[int], covers: int) -> None:
        self.in_flight = False
        exc = fut.exception()
        if exc is None:
            self.counters["commits"] += 1
            self.counters["fsyncs"] += fut.result()
            self._release(covers)
        else:  # after a failed fsync nothing it covered may be called stored: nack, as RabbitMQ does
            self.counters["fsync_errors"] += 1
            log.error("fsync failed (%s): nacking the confirms it covered", exc)
            self._release(covers, ok=False)
        self._maybe_commit()
        self.schedule_flush()

    # --- disk alarm ------------------------------------------------------------------------------

    def disk_low(self) -> bool:
        try:
            return shutil.disk_usage(self.data.path).free < self.disk_free_limit
        except OSError:
            return False

    def retry_writes(self) -> None:
        """After a failed write (disk full), the timer retries; success releases the held confirms."""
        if self.dirty:
            self.end_of_turn()

    # --- shutdown --------------------------------------------------------------------------------

    def close(self) -> None:
        """Write and fsync what is pending (a clean stop loses nothing), then close the files."""
        try:
            self.end_of_turn()
            self.group.commit()
        except OSError as exc:
            log.error("final commit failed: %s", exc)
        self.closed = True
        self._executor.shutdown(wait=True)
        c = self.counters
        log.info("durability: %d writes, %d commits, %d fsyncs, %d confirms held, %d write errors, "
                 "%d fsync errors", c["writes"], c["commits"], c["fsyncs"], c["confirms_held"],
                 c["write_errors"], c["fsync_errors"])
        for store in self.metadata.queue_stores():
            if isinstance(store, QueueLog) and not store.dropped:
                store.log.close()
        self.metadata.close()
        self.data.close()
