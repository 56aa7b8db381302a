"""Kafka transactions as pure state: the transaction coordinator (one state per transactional.id:
its producer id and epoch, the partitions and groups it touched, offsets held until commit) and the
per-partition index of open and aborted transactions that read_committed fetches are served from.

Pure: time comes in as ``now_ms`` (the server's monotonic clock), producer ids from a callable; the
coordinator answers with Kafka error codes and with ``Ending`` effects (markers to write, offsets
to commit) that the shell carries out. States and codes are Kafka's (TransactionState, Errors).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ferrymq.kafka_codes import (
    INVALID_PRODUCER_EPOCH,
    INVALID_PRODUCER_ID_MAPPING,
    INVALID_TRANSACTION_TIMEOUT,
    INVALID_TXN_STATE,
    NONE,
)

EMPTY, ONGOING = "Empty", "Ongoing"
PREPARE_COMMIT, PREPARE_ABORT = "PrepareCommit", "PrepareAbort"
COMPLETE_COMMIT, COMPLETE_ABORT = "CompleteCommit", "CompleteAbort"
MAX_TIMEOUT_MS = 900_000  # Kafka's transaction.max.timeout.ms default
EPOCH_MAX = 32767  # producer epochs are i16; past the last one the producer gets a new id
Partition = tuple[str, int]
PendingOffsets = dict[str, dict[Partition, tuple[int, str]]]  # group -> (topic, partition) -> offset


@dataclass(slots=True)
class Txn:
    txn_id: str
    producer_id: int
    epoch: int
    timeout_ms: int
    state: str = EMPTY
    partitions: set[Partition] = field(default_factory=set)
    offsets: PendingOffsets = field(default_factory=dict)
    deadline_ms: int = -1  # when an Ongoing transaction is aborted (monotonic; not stored)

    def snapshot(self) -> dict[str, Any]:
        """What survives a restart (JSON-able)."""
        return {"pid": self.producer_id, "epoch": self.epoch, "timeout": self.timeout_ms,
                "state": self.state, "partitions": sorted(self.partitions),
                "offsets": {g: [[t, p, o, m] for (t, p), (o, m) in sorted(offs.items())]
                            for g, offs in self.offsets.items()}}


@dataclass(slots=True)
class Ending:
    """A transaction being ended: the markers the shell writes (one per partition) and, on commit,
    the offsets it commits; then it calls ``TxnCoordinator.completed``."""

    txn_id: str
    producer_id: int
    epoch: int
    commit: bool
    partitions: list[Partition]
    offsets: PendingOffsets


def restore(txn_id: str, snap: dict[str, Any]) -> Txn:
    offsets: PendingOffsets = {g: {(t, p): (o, m) for t, p, o, m in rows}
                               for g, rows in snap.get("offsets", {}).items()}
    return Txn(txn_id, snap["pid"], snap["epoch"], snap["timeout"], snap["state"],
               {(t, p) for t, p in snap["partitions"]}, offsets)


class TxnCoordinator:
    """Every transactional.id's state. ``new_pid()`` hands out producer ids unique across restarts."""

    def __init__(self, new_pid: Callable[[], int]) -> None:
        self.new_pid = new_pid
        self.txns: dict[str, Txn] = {}
        self.by_pid: dict[int, Txn] = {}

    def load(self, txn: Txn, now_ms: int) -> Ending | None:
        """A stored state at start-up: an Ongoing transaction's timeout starts again; one caught
        between prepare and complete is finished (its markers written again)."""
        self.txns[txn.txn_id] = txn
        self.by_pid[txn.producer_id] = txn
        if txn.state == ONGOING:
            txn.deadline_ms = now_ms + txn.timeout_ms
        if txn.state in (PREPARE_COMMIT, PREPARE_ABORT):
            return self._ending(txn, txn.state == PREPARE_COMMIT)
        return None

    # --- requests ----------------------------------------------------------------------------------

    def init_producer(self, txn_id: str, timeout_ms: int) -> tuple[int, Txn | None, Ending | None]:
        """InitProducerId with a transactional.id: (code, state, abort of the old epoch's open
        transaction). A re-init bumps the epoch, which fences every request of the old one."""
        if not 0 < timeout_ms <= MAX_TIMEOUT_MS:
            return INVALID_TRANSACTION_TIMEOUT, None, None
        txn = self.txns.get(txn_id)
        if txn is None:
            txn = Txn(txn_id, self.new_pid(), 0, timeout_ms)
            self.txns[txn_id] = txn
            self.by_pid[txn.producer_id] = txn
            return NONE, txn, None
        ending = self._abort_open(txn)
        self._bump(txn)
        txn.timeout_ms = timeout_ms
        return NONE, txn, ending

    def add_partitions(self, txn_id: str, pid: int, epoch: int, parts: Iterable[Partition],
                       now_ms: int) -> int:
        txn, code = self._begin(txn_id, pid, epoch, now_ms)
        if txn is not None:
            txn.partitions.update(parts)
        return code

    def add_offsets(self, txn_id: str, pid: int, epoch: int, group: str, now_ms: int) -> int:
        txn, code = self._begin(txn_id, pid, epoch, now_ms)
        if txn is not None:
            txn.offsets.setdefault(group, {})
        return code

    def txn_offset_commit(self, txn_id: str, pid: int, epoch: int, group: str,
                          entries: Iterable[tuple[str, int, int, str]]) -> int:
        """Offsets held with the transaction: committed by its commit, dropped by its abort."""
        txn, code = self._check(txn_id, pid, epoch)
        if txn is None:
            return code
        if txn.state != ONGOING:
            return INVALID_TXN_STATE
        held = txn.offsets.setdefault(group, {})
        for t, p, o, m in entries:
            held[(t, p)] = (o, m)
        return NONE

    def end(self, txn_id: str, pid: int, epoch: int, commit: bool) -> tuple[int, Ending | None]:
        """EndTxn: the Ending to carry out, or a retry of the one just done answered NONE."""
        txn, code = self._check(txn_id, pid, epoch)
        if txn is None:
            return code, None
        if txn.state == ONGOING:
            return NONE, self._ending(txn, commit)
        done = COMPLETE_COMMIT if commit else COMPLETE_ABORT
        return (NONE if txn.state == done else INVALID_TXN_STATE), None

    def completed(self, ending: Ending) -> None:
        """The shell wrote the markers (and offsets): the transaction is over."""
        txn = self.txns.get(ending.txn_id)
        if txn is not None and txn.state in (PREPARE_COMMIT, PREPARE_ABORT):
            txn.state = COMPLETE_COMMIT if ending.commit else COMPLETE_ABORT
            txn.partitions, txn.offsets, txn.deadline_ms = set(), {}, -1

    def check_produce(self, pid: int, epoch: int, partition: Partition) -> int:
        """A transactional batch: its producer's current epoch, inside an open transaction that
        added this partition (else the partition's stable offset could never move past it)."""
        txn = self.by_pid.get(pid)
        if txn is None:
            return INVALID_PRODUCER_ID_MAPPING
        if epoch != txn.epoch:
            return INVALID_PRODUCER_EPOCH
        if txn.state != ONGOING or partition not in txn.partitions:
            return INVALID_TXN_STATE
        return NONE

    # --- timers are data -----------------------------------------------------------------------------

    def next_deadline_ms(self) -> int | None:
        deadlines = [t.deadline_ms for t in self.txns.values() if t.state == ONGOING]
        return min(deadlines) if deadlines else None

    def expire(self, now_ms: int) -> list[Ending]:
        """Transactions open past transaction.timeout.ms are aborted, and their producer fenced
        (its epoch bumped), as Kafka's coordinator does."""
        out = []
        for txn in self.txns.values():
            if txn.state == ONGOING and txn.deadline_ms <= now_ms:
                self._bump(txn)
                out.append(self._ending(txn, False))
        return out

    # --- the pieces ------------------------------------------------------------------------------------

    def _check(self, txn_id: str, pid: int, epoch: int) -> tuple[Txn | None, int]:
        txn = self.txns.get(txn_id)
        if txn is None or txn.producer_id != pid:
            return None, INVALID_PRODUCER_ID_MAPPING
        if epoch != txn.epoch:  # Kafka's PRODUCER_FENCED, as clients of these versions know it
            return None, INVALID_PRODUCER_EPOCH
        return txn, NONE

    def _begin(self, txn_id: str, pid: int, epoch: int, now_ms: int) -> tuple[Txn | None, int]:
        txn, code = self._check(txn_id, pid, epoch)
        if txn is None:
            return None, code
        if txn.state in (PREPARE_COMMIT, PREPARE_ABORT):
            return None, INVALID_TXN_STATE
        if txn.state != ONGOING:
            txn.state, txn.deadline_ms = ONGOING, now_ms + txn.timeout_ms
        return txn, NONE

    def _ending(self, txn: Txn, commit: bool) -> Ending:
        txn.state = PREPARE_COMMIT if commit else PREPARE_ABORT
        offsets = txn.offsets if commit else {}
        return Ending(txn.txn_id, txn.producer_id, txn.epoch, commit, sorted(txn.partitions), offsets)

    def _abort_open(self, txn: Txn) -> Ending | None:
        return self._ending(txn, False) if txn.state == ONGOING else None

    def _bump(self, txn: Txn) -> None:
        if txn.epoch + 1 >= EPOCH_MAX:
            del self.by_pid[txn.producer_id]
            txn.producer_id, txn.epoch = self.new_pid(), 0
            self.by_pid[txn.producer_id] = txn
        else:
            txn.epoch += 1


class PartitionTxns:
    """One partition's transactions as its log shows them: each open transaction's first offset
    (the last stable offset is the earliest of them) and the aborted ones, by marker offset, as
    ``(marker offset, producer id, first offset)``. Fed by batch headers and markers only."""

    __slots__ = ("aborted", "open")

    def __init__(self) -> None:
        self.open: dict[int, int] = {}
        self.aborted: list[tuple[int, int, int]] = []

    def note_batch(self, pid: int, base_offset: int) -> None:
        self.open.setdefault(pid, base_offset)

    def note_marker(self, pid: int, commit: bool, offset: int) -> None:
        first = self.open.pop(pid, None)
        if first is not None and not commit:
            self.aborted.append((offset, pid, first))

    def stable_offset(self, high_watermark: int) -> int:
        return min(self.open.values()) if self.open else high_watermark

    def aborted_between(self, start: int, end: int) -> list[tuple[int, int]]:
        """(producer id, first offset) of aborted transactions whose records may lie in [start, end)."""
        i = bisect_left(self.aborted, (start, -1, -1))
        return [(pid, first) for _m, pid, first in self.aborted[i:] if first < end]

    def aborted_spans(self, start: int, end: int) -> dict[int, list[tuple[int, int]]]:
        """Producer id -> (first offset, marker offset) of each aborted transaction whose records may
        lie in [start, end): what a reader needs to drop aborted batches by their headers alone."""
        i = bisect_left(self.aborted, (start, -1, -1))
        spans: dict[int, list[tuple[int, int]]] = {}
        for marker, pid, first in self.aborted[i:]:
            if first < end:
                spans.setdefault(pid, []).append((first, marker))
        return spans

    def forget_before(self, offset: int) -> None:
        """Retention removed the log below ``offset``: aborts whose markers went with it no longer matter."""
        i = bisect_left(self.aborted, (offset, -1, -1))
        if i:
            del self.aborted[:i]
