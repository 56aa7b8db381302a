"""Transactions in the partition logs and on disk: control batches (the commit and abort markers,
as Kafka writes them), the per-partition index rebuilt from batch headers at start-up, and the
coordinator's durable state (a log of its own, as committed offsets have ``OffsetsLog``).

A marker is a control batch (attributes: control + transactional) of one record whose key is
ControlRecordType (version 0, type 0 abort / 1 commit) and whose value is the coordinator epoch.
Shared by the server and the simulator; no per-record work: only markers and headers are read.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Collection, Iterable
from typing import Any, Protocol

from ferrymq.core.topics import PartitionLog, TopicRegistry
from ferrymq.core.txns import Ending, PartitionTxns, Txn, TxnCoordinator, restore
from ferrymq.protocols.kafka.batch import ATTR_CONTROL, ATTR_TRANSACTIONAL, header, validate
from ferrymq.protocols.kafka.offsets import stored_records
from ferrymq.protocols.kafka.partitions import AppendSink
from ferrymq.protocols.kafka.records import Record, decode_batches, encode_batch

SEGMENT_BYTES = 16 * 1024 * 1024
COMPACT_AFTER = 10_000  # records beyond the live states before the log is rewritten as a snapshot
ABORT, COMMIT = 0, 1  # Kafka's ControlRecordType
_KEY = struct.Struct(">hh")
_VALUE = struct.Struct(">hi")  # version, coordinator epoch


def control_batch(pid: int, epoch: int, commit: bool, base_offset: int, ts: int) -> bytearray:
    record = (_KEY.pack(0, COMMIT if commit else ABORT), _VALUE.pack(0, 0), ())
    return bytearray(encode_batch([record], ts, base_offset, pid, epoch, -1,
                                  attributes=ATTR_CONTROL | ATTR_TRANSACTIONAL))


def is_commit_marker(batch: bytes) -> bool | None:
    """True for a commit marker, False for an abort, None for a control record of another type."""
    records = decode_batches(batch, control=True)
    key = records[0][2] if records else None
    if key is None or len(key) < 4:
        return None
    kind = _KEY.unpack_from(key)[1]
    return {COMMIT: True, ABORT: False}.get(kind)


def append_batch(lg: PartitionLog, data: bytearray) -> None:
    info = validate(data, len(data))[0]
    lg.append(data, [(0, info.count, info.max_timestamp)])


def write_markers(topics: TopicRegistry, ending: Ending, sink: AppendSink, now_ms: int) -> None:
    """One marker into every partition the transaction touched (a deleted one is skipped)."""
    for name, index in ending.partitions:
        topic = topics.get(name)
        if topic is None or not 0 <= index < topic.spec.partitions:
            continue
        lg = topic.logs[index]
        offset = lg.next_offset
        append_batch(lg, control_batch(ending.producer_id, ending.epoch, ending.commit, offset, now_ms))
        topic.producers[index].txns.note_marker(ending.producer_id, ending.commit, offset)
        sink.note_append(lg)
        topics.appended(name, index)


def rebuild_index(lg: PartitionLog, txns: PartitionTxns) -> None:
    """A partition's open and aborted transactions from its batch headers (and its markers' one
    record each), as Kafka rebuilds them from the log at start-up."""
    for head in lg.batch_headers():  # type: ignore[attr-defined]
        base, _l, _e, _m, _c, attrs, _ld, _t, _mt, pid, _pe, _s, _n = header(head)
        if not attrs & ATTR_TRANSACTIONAL:
            continue
        if attrs & ATTR_CONTROL:
            commit = is_commit_marker(lg.read(base, 1))
            if commit is not None:
                txns.note_marker(pid, commit, base)
        else:
            txns.note_batch(pid, base)


class TxnStore(PartitionLog, Protocol):
    """The transaction log's store (storage.StreamLog fits): a partition log that rolls and drops
    its oldest segments."""

    def roll(self) -> None: ...

    def delete_segments_before(self, offset: int) -> int: ...


class TxnLog:
    """The coordinator's state, one record per change (key: transactional.id, value: the state as
    JSON); the latest record of each id wins at start-up. A record without a key lists the
    partitions transactions ever touched (their indexes are rebuilt at start-up). Past
    ``COMPACT_AFTER`` records more than the live states, the log is rewritten as one snapshot."""

    def __init__(self, log: TxnStore, now_ms: Callable[[], int]) -> None:
        self.log = log
        self.now_ms = now_ms
        self.touched: set[tuple[str, int]] = set()

    def append(self, txns: Iterable[Txn]) -> PartitionLog:
        txns = list(txns)
        for t in txns:
            self.touched |= t.partitions
        self._write(txns, with_touched=False)
        return self.log

    def compact_if_due(self, states: Collection[Txn]) -> bool:
        """Rewrite the log as one snapshot of ``states`` once it has grown well past them."""
        if self.log.next_offset - self.log.start_offset < COMPACT_AFTER + len(states):
            return False
        self.log.roll()
        base = self.log.next_offset
        self._write(states, with_touched=True)
        self.log.delete_segments_before(base)  # it syncs the snapshot before the old files go
        return True

    def _write(self, txns: Iterable[Txn], with_touched: bool) -> None:
        records: list[Record] = []
        if with_touched:
            records.append((None, json.dumps(sorted(self.touched)).encode(), ()))
        records += [(t.txn_id.encode(), json.dumps(t.snapshot()).encode(), ()) for t in txns]
        append_batch(self.log, bytearray(encode_batch(records, self.now_ms(), self.log.next_offset)))

    def load(self) -> tuple[dict[str, Txn], set[tuple[str, int]]]:
        """(latest state of each id, every partition any transaction ever touched)."""
        latest: dict[str, Txn] = {}
        for key, value in stored_records(self.log):
            if value is not None:
                self._replay(latest, key, json.loads(value))
        return latest, set(self.touched)

    def _replay(self, latest: dict[str, Txn], key: bytes | None, value: Any) -> None:
        if key is None:
            self.touched |= {(t, p) for t, p in value}
            return
        txn = latest[key.decode()] = restore(key.decode(), value)
        self.touched |= txn.partitions

    def close(self) -> None:
        self.log.close()


def recover(coordinator: TxnCoordinator, txn_log: TxnLog, topics: TopicRegistry,
            now_ms: int) -> list[Ending]:
    """Start-up: the coordinator's states back, the touched partitions' indexes rebuilt; returns the
    endings caught half done (the caller writes their markers again)."""
    latest, touched = txn_log.load()
    for name, index in sorted(touched):
        topic = topics.get(name)
        if topic is not None and 0 <= index < topic.spec.partitions:
            rebuild_index(topic.logs[index], topic.producers[index].txns)
    endings = [coordinator.load(txn, now_ms) for txn in latest.values()]
    return [e for e in endings if e is not None]
