"""Durable queues: the data directory, topology metadata and queue logs, recovery at start-up
(topology from SQLite, messages from the queue logs) with a one-line summary, and the disk alarm
(free space below the limit blocks publishers, as RabbitMQ does).

Queue logs buffer a turn's records and are written and committed by the one commit pipeline
(ferrymq.server.commit), which every front end shares.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferrymq.config import Settings
from ferrymq.core.broker import Broker
from ferrymq.core.policy import make_policy
from ferrymq.protocols.amqp.properties import encode_properties, intern_properties
from ferrymq.protocols.amqp.tables import decode_table, encode_table
from ferrymq.server.commit import CommitPipeline
from ferrymq.storage.data_dir import DataDir
from ferrymq.storage.log import Log, LogRecoveryReport
from ferrymq.storage.metadata import Metadata
from ferrymq.storage.queue_log import QueueLog

log = logging.getLogger("ferrymq.storage")

QUEUE_SEGMENT_BYTES = 16 * 1024 * 1024


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
    """One per broker with a data directory; runs on the loop."""

    def __init__(self, settings: Settings, pipeline: CommitPipeline) -> None:
        self.pipeline = pipeline
        self.data = DataDir(settings.data_dir)
        self.disk_free_limit = settings.disk_free_limit_bytes
        self.reports: list[LogRecoveryReport] = []
        self.metadata = Metadata(self.data.path, self._open_queue, encode_table, _decode_args)
        self.summary = RecoverySummary()

    # --- stores ----------------------------------------------------------------------------------

    def _open_queue(self, path: Path, arguments: dict[str, Any]) -> QueueLog:
        qlog = Log(path, segment_bytes=QUEUE_SEGMENT_BYTES)
        self.reports.append(qlog.recovery)
        if not qlog.recovery.clean:
            log.warning("recovery: %s", qlog.recovery.summary())
        default = "never" if self.pipeline.policy.mode == "never" else "always"
        sync = arguments.get("x-fsync", default) != "never"
        return QueueLog(qlog, encode_properties, intern_properties, self.pipeline, sync=sync)

    # --- recovery --------------------------------------------------------------------------------

    def recover(self, broker: Broker) -> RecoverySummary:
        """Declare the stored topology again; each durable queue rebuilds itself from its log."""
        clock = self.pipeline.clock
        started = clock.monotonic_ms()
        s = self.summary
        top = self.metadata.load()
        s.orphans_removed = len(top.orphans_removed)
        for name in top.orphans_removed:
            log.warning("recovery: removed queue directory %s: no durable queue owns it", name)
        broker.restore_access(top.vhosts, top.users, top.permissions, top.access)  # the base for what follows
        for body in top.policies:  # then policies, so every queue and exchange is declared under them
            policy = self._replay(make_policy, body.get("vhost", "/"), body.get("name", ""), body)
            if policy is not None:
                broker.add_vhost(policy.vhost).set_policy(policy)
        for vhost, name, type_, auto_delete, internal, args in top.exchanges:
            ex = self._replay(broker.add_vhost(vhost).declare_exchange, name, type_, durable=True,
                              auto_delete=auto_delete, internal=internal, arguments=args)
            s.exchanges += ex is not None
        for vh in list(broker.vhosts.values()):
            if (self.data.path / "delayed").exists():
                vh.attach_delay_store()
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
        s.took_ms = float(clock.monotonic_ms() - started)
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

    # --- disk alarm ------------------------------------------------------------------------------

    def disk_low(self) -> bool:
        try:
            return shutil.disk_usage(self.data.path).free < self.disk_free_limit
        except OSError:
            return False

    # --- shutdown --------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the queue files and the metadata (the pipeline has written and synced them)."""
        for store in self.metadata.queue_stores():
            if isinstance(store, QueueLog) and not store.dropped:
                store.log.close()
        self.metadata.close()
        self.data.close()
