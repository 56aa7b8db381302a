"""The transaction coordinator's requests (InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
TxnOffsetCommit, EndTxn) on the core's TxnCoordinator, its timeout timer, and its durable log.

Every state change is appended to the transaction log, and the response held in the commit
pipeline until the fsync that covers it; an EndTxn writes its markers into the partitions and, on
commit, the offsets it held into the offsets log, all covered by the same fsync.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ferrymq.core.clock import Clock
from ferrymq.core.groups import Coordinator
from ferrymq.core.topics import TopicRegistry
from ferrymq.core.txns import Ending, Txn, TxnCoordinator
from ferrymq.protocols.kafka import errors, transactions, versions
from ferrymq.protocols.kafka.entities import ms
from ferrymq.protocols.kafka.offsets import OffsetsLog
from ferrymq.server.commit import CommitPipeline
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.handlers import Handler, decoded, reply
from ferrymq.server.kafka.timer import DeadlineTimer
from ferrymq.storage.stream_log import StreamLog

log = logging.getLogger("ferrymq.kafka")


class TransactionApis:
    """Collaborators: the topics (markers go into their logs), the group coordinator and offsets log
    (a commit's held offsets), the commit pipeline, the clock, the loop (the timeout timer), where
    new producer ids come from, and the directory of the transaction log."""

    def __init__(self, topics: TopicRegistry, groups: Coordinator, offsets: OffsetsLog,
                 commit: CommitPipeline, clock: Clock, loop: asyncio.AbstractEventLoop,
                 new_pid: Callable[[], int], path: Any) -> None:
        self.topics, self.groups, self.offsets = topics, groups, offsets
        self.commit, self.clock, self.loop = commit, clock, loop
        self.new_pid = new_pid
        self.coordinator = TxnCoordinator(new_pid)
        store = StreamLog(path, segment_bytes=transactions.SEGMENT_BYTES)
        self.log = transactions.TxnLog(store, clock.now_ms)
        self.timer = DeadlineTimer(loop, clock, self.coordinator.next_deadline_ms, self._tick)

    def handlers(self) -> dict[int, Handler]:
        v = versions
        table = {
            v.INIT_PRODUCER_ID: self.init_producer_id, v.ADD_PARTITIONS_TO_TXN: self.add_partitions,
            v.ADD_OFFSETS_TO_TXN: self.add_offsets, v.TXN_OFFSET_COMMIT: self.txn_offset_commit,
            v.END_TXN: self.end_txn,
        }
        return {key: decoded(fn) for key, fn in table.items()}

    def load(self) -> int:
        """The stored states back; transactions caught half ended are finished now."""
        now = self.clock.monotonic_ms()
        for ending in transactions.recover(self.coordinator, self.log, self.topics, now):
            self._finish(ending)
        return len(self.coordinator.txns)

    # --- timers are data ----------------------------------------------------------------------------

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self, now_ms: int) -> None:
        for ending in self.coordinator.expire(now_ms):
            log.info("transaction %s timed out: aborted, producer fenced", ending.txn_id)
            self._finish(ending)

    # --- requests -------------------------------------------------------------------------------------

    def init_producer_id(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        if not req.transactional_id:  # idempotent only: a fresh id, nothing to store
            reply(slot, {"throttle_time": 0, "error_code": 0, "producer_id": self.new_pid(),
                         "producer_epoch": 0})
            return
        code, txn, ending = self.coordinator.init_producer(req.transactional_id, ms(req.transaction_timeout))
        if ending is not None:
            self._finish(ending)
        if txn is not None:
            self._persist(txn)
        self._answer(slot, {"throttle_time": 0, "error_code": code,
                            "producer_id": txn.producer_id if txn else -1,
                            "producer_epoch": txn.epoch if txn else -1})
        self.timer.rearm()

    def add_partitions(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        txn_id, pid, epoch = (req.v3_and_below_transactional_id, req.v3_and_below_producer_id,
                              req.v3_and_below_producer_epoch)
        wanted = [(t.name, list(t.partitions)) for t in req.v3_and_below_topics]
        unknown = {(n, p) for n, ps in wanted for p in ps if not self._exists(n, p)}
        code = errors.UNKNOWN_TOPIC_OR_PARTITION if unknown else self.coordinator.add_partitions(
            txn_id, pid, epoch, [(n, p) for n, ps in wanted for p in ps], self.clock.monotonic_ms())
        if unknown:  # Kafka fails the whole request: the known partitions answer OPERATION_NOT_ATTEMPTED
            codes = {(n, p): errors.UNKNOWN_TOPIC_OR_PARTITION if (n, p) in unknown
                     else errors.OPERATION_NOT_ATTEMPTED for n, ps in wanted for p in ps}
        else:
            codes = {(n, p): code for n, ps in wanted for p in ps}
        self._persist_id(txn_id, code)
        self._answer(slot, {"throttle_time": 0, "results_by_topic_v3_and_below": [
            {"name": n, "results_by_partition": [{"partition_index": p, "partition_error_code": codes[(n, p)]}
                                                 for p in ps]} for n, ps in wanted]})
        self.timer.rearm()

    def add_offsets(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        code = self.coordinator.add_offsets(req.transactional_id, req.producer_id, req.producer_epoch,
                                            req.group_id, self.clock.monotonic_ms())
        self._persist_id(req.transactional_id, code)
        self._answer(slot, {"throttle_time": 0, "error_code": code})
        self.timer.rearm()

    def txn_offset_commit(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        entries = [(t.name, p.partition_index, p.committed_offset, p.committed_metadata or "")
                   for t in req.topics for p in t.partitions]
        code = self.coordinator.txn_offset_commit(req.transactional_id, req.producer_id, req.producer_epoch,
                                                  req.group_id, entries)
        self._persist_id(req.transactional_id, code)
        self._answer(slot, {"throttle_time": 0, "topics": [
            {"name": t.name, "partitions": [{"partition_index": p.partition_index, "error_code": code}
                                            for p in t.partitions]} for t in req.topics]})

    def end_txn(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        code, ending = self.coordinator.end(req.transactional_id, req.producer_id, req.producer_epoch,
                                            req.committed)
        if ending is not None:
            self._finish(ending)
        self._answer(slot, {"throttle_time": 0, "error_code": code})
        self.timer.rearm()

    # --- the pieces -------------------------------------------------------------------------------------

    def _finish(self, ending: Ending) -> None:
        """Prepare (stored), markers, held offsets, complete (stored): one fsync covers them all, and
        a restart between two of them finishes the ending again from the prepared state."""
        txn = self.coordinator.txns[ending.txn_id]
        self._persist(txn)
        transactions.write_markers(self.topics, ending, self.commit, self.clock.now_ms())
        for group, held in ending.offsets.items():
            entries = [(t, p, o, m) for (t, p), (o, m) in sorted(held.items())]
            for t, p, o, m in entries:
                self.groups.commit(group, t, p, o, m)
            if entries:
                self.commit.note_append(self.offsets.append(group, entries))
        self.coordinator.completed(ending)
        self._persist(txn)

    def _persist(self, txn: Txn) -> None:
        self.commit.note_append(self.log.append([txn]))
        self.log.compact_if_due(self.coordinator.txns.values())

    def _persist_id(self, txn_id: str, code: int) -> None:
        txn = self.coordinator.txns.get(txn_id)
        if code == errors.NONE and txn is not None:
            self._persist(txn)

    def _answer(self, slot: Slot, values: dict[str, Any]) -> None:
        """The reply leaves after the fsync covering the state it reports."""
        def send(stored: bool) -> None:
            reply(slot, values if stored else _failed(values))
        self.commit.hold(send)

    def _exists(self, name: str, partition: int) -> bool:
        topic = self.topics.get(name)
        return topic is not None and 0 <= partition < topic.spec.partitions

    def close(self) -> None:
        self.log.close()


def _failed(values: Any) -> Any:
    """The same answer with every error code COORDINATOR_NOT_AVAILABLE: the state was not stored,
    so the client retries (as it does while a Kafka coordinator moves)."""
    if isinstance(values, list):
        return [_failed(v) for v in values]
    if not isinstance(values, dict):
        return values
    return {k: errors.COORDINATOR_NOT_AVAILABLE if k.endswith("error_code") else _failed(v)
            for k, v in values.items()}
