"""A durable queue's log: what happened to its messages, as records in one Log directory.

Record kinds (payloads big-endian):
  PUBLISH   flags u8 | expires_wall_ms u64 | exchange (u8 len) | routing key (u8 len) |
            properties (u32 len, wire form) | body          (its offset is the message's id)
  SETTLE    runs of (first offset u64, count u32): these messages left the queue for good
  REQUEUE   runs, as SETTLE: these deliveries came back (recovery counts them)
  DELIVERED u64: every message up to this offset has been delivered (the redelivered hint)
  DROP      (start u64, end u64): every PUBLISH in [start, end) is settled (purge of a paged tail)

Why one log per queue and settlements as records: appends stay sequential, a crash can only cut
the tail, and space comes back a whole segment at a time: a segment is deleted once no message in
it (or before it) is still live, because every record refers only to offsets before its own.

Appends are buffered and written by ``write()`` once per loop turn (one pwrite per queue), so the
core can call ``log_*`` per message without a system call each.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ferrymq.core.message import Message
from ferrymq.core.properties import Properties
from ferrymq.core.store import StoredMessage

PUBLISH, SETTLE, REQUEUE, DELIVERED, DROP = 1, 2, 3, 4, 5
FLAG_TRANSIENT = 1
BUCKET_SHIFT = 12  # live messages are counted per 4,096 offsets: reclaim needs only the lowest
READ_RUN_BYTES = 1 << 20
ROLL_IDLE_BYTES = 4 * 1024 * 1024  # an all-settled log rolls once its active segment passes this

_PUB = struct.Struct(">BQ")
_U32 = struct.Struct(">I")
_RUN = struct.Struct(">QI")
_U64 = struct.Struct(">Q")
_RANGE = struct.Struct(">QQ")


class WriteSink(Protocol):
    """Who writes dirty queue logs at the end of the turn (the server's durability shell)."""

    publish_pending: bool

    def note_dirty(self, qlog: QueueLog) -> None: ...

    def after_commit(self, run: Callable[[bool], None]) -> None:
        """``run(stored)`` once a commit covers what this turn wrote (at once if none is needed)."""
        ...


class _NoSink:
    publish_pending = False

    def note_dirty(self, qlog: QueueLog) -> None:
        pass

    def after_commit(self, run: Callable[[bool], None]) -> None:
        run(True)


class LogLike(Protocol):
    """What a queue log needs of its Log (Log, MemoryLog and FaultyLog all fit)."""

    @property
    def first_offset(self) -> int: ...
    @property
    def next_offset(self) -> int: ...
    def append(self, batch: list[tuple[int, bytes]]) -> list[int]: ...
    def read_run(self, offset: int, max_bytes: int) -> list[tuple[int, bytes]]: ...
    def roll(self) -> None: ...
    def delete_segments_before(self, offset: int) -> int: ...
    def fsync(self) -> int: ...
    def close(self) -> None: ...


EncodeProps = Callable[[Properties], bytes]
DecodeProps = Callable[[bytes], tuple[bytes, Properties]]


def encode_publish(msg: Message, expires_wall_ms: int, transient: bool, encode_props: EncodeProps) -> bytes:
    raw = msg.raw_props if msg.raw_props is not None else encode_props(msg.props)
    ex = msg.exchange.encode()
    rk = msg.routing_key.encode()
    return b"".join((
        _PUB.pack(FLAG_TRANSIENT if transient else 0, expires_wall_ms),
        bytes((len(ex),)), ex, bytes((len(rk),)), rk, _U32.pack(len(raw)), raw, msg.body,
    ))


def decode_publish(payload: bytes, decode_props: DecodeProps) -> tuple[Message, int, bool]:
    """(message, expires_wall_ms, transient) from a PUBLISH payload."""
    flags, expires = _PUB.unpack_from(payload, 0)
    at = _PUB.size
    n = payload[at]
    exchange = payload[at + 1 : at + 1 + n].decode()
    at += 1 + n
    n = payload[at]
    routing_key = payload[at + 1 : at + 1 + n].decode()
    at += 1 + n
    (n,) = _U32.unpack_from(payload, at)
    raw, props = decode_props(payload[at + 4 : at + 4 + n])
    body = payload[at + 4 + n :]
    return Message(exchange, routing_key, body, props, raw), expires, bool(flags & FLAG_TRANSIENT)


def encode_runs(offsets: list[int]) -> bytes:
    """Offsets as (first, count) runs: acks arrive mostly in order, so a turn's acks are a few runs."""
    offsets.sort()
    out: list[bytes] = []
    first = prev = offsets[0]
    for off in offsets[1:]:
        if off == prev + 1:
            prev = off
            continue
        out.append(_RUN.pack(first, prev - first + 1))
        first = prev = off
    out.append(_RUN.pack(first, prev - first + 1))
    return b"".join(out)


def decode_runs(payload: bytes) -> list[tuple[int, int]]:
    return [_RUN.unpack_from(payload, at) for at in range(0, len(payload), _RUN.size)]


class QueueLog:
    """The QueueStore (ferrymq.core.store) of one durable queue, over a Log."""

    def __init__(
        self, log: LogLike, encode_props: EncodeProps, decode_props: DecodeProps,
        sink: WriteSink | None = None, sync: bool = True,
    ) -> None:
        """``sync``: confirms of this queue's messages wait for an fsync (False: the page cache will do)."""
        self.log = log
        self._encode_props = encode_props
        self._decode_props = decode_props
        self._sink: WriteSink = sink if sink is not None else _NoSink()
        self.sync = sync
        self._pending: list[tuple[int, bytes]] = []
        self._settles: list[int] = []
        self._moved: list[int] = []  # settles that wait for the commit covering where the messages went
        self._requeues: list[int] = []
        self._delivered = -1  # highest offset delivered, not yet logged
        self._delivered_logged = -1
        self._live: dict[int, int] = {}  # bucket -> live messages held in memory (ready or unacked)
        self._tail: dict[int, int] = {}  # bucket -> live messages of the paged tail
        self._cursor = -1  # next offset page_in reads from (-1: nothing paged)
        self._paged = 0  # messages in the paged tail
        self._filter: bytearray | None = None  # after recovery: 1 = live, for offsets below _filter_end
        self._filter_base = self._filter_end = 0
        self._extra: dict[int, int] = {}  # after recovery: offset -> deliveries before the crash
        self._reclaim_from = log.first_offset
        self.dirty = False  # buffered records not yet written
        self.dropped = False
        self.counters = dict.fromkeys(("published", "settled", "paged_in", "reclaimed"), 0)

    # --- the QueueStore contract (called by the core) -----------------------------------------

    def _next(self) -> int:
        return self.log.next_offset + len(self._pending)

    def _mark(self) -> None:
        if not self.dirty:
            self.dirty = True
            self._sink.note_dirty(self)

    def log_publish(self, msg: Message, expires_wall_ms: int, transient: bool) -> int:
        offset = self._next()
        self._pending.append((PUBLISH, encode_publish(msg, expires_wall_ms, transient, self._encode_props)))
        bucket = offset >> BUCKET_SHIFT
        counts = self._live
        if self._cursor >= 0:
            counts = self._tail
            self._paged += 1
        counts[bucket] = counts.get(bucket, 0) + 1
        self.counters["published"] += 1
        if self.sync:
            self._sink.publish_pending = True
        self._mark()
        return offset

    def log_settle(self, offset: int) -> None:
        if self.dropped:
            return
        self._settles.append(offset)
        self._dec(self._live, offset >> BUCKET_SHIFT)
        self._mark()

    def log_moved(self, offset: int) -> None:
        if not self.dropped:
            self._moved.append(offset)
            self._mark()

    def _settle_moved(self, offsets: list[int], stored: bool) -> None:
        """The commit covering the moved messages' new homes returned. If it failed they stay live
        here (recovery brings them back: a duplicate at worst)."""
        if stored:
            for offset in offsets:
                self.log_settle(offset)

    def log_requeue(self, offset: int) -> None:
        if not self.dropped:
            self._requeues.append(offset)
            self._mark()

    def log_delivered(self, offset: int) -> None:
        if offset > self._delivered:
            self._delivered = offset
            if offset > self._delivered_logged:
                self._mark()

    def start_paging(self) -> None:
        if self._cursor < 0:
            self._cursor = self._next()

    def drop_paged(self) -> None:
        if self._cursor < 0:
            return
        self._pending.append((DROP, _RANGE.pack(self._cursor, self._next())))
        self._tail.clear()
        self._cursor = -1
        self._paged = 0
        self._filter = None
        self._mark()

    def page_in(self, max_count: int, max_bytes: int) -> list[StoredMessage]:
        out: list[StoredMessage] = []
        size = 0
        while self._paged and len(out) < max_count and size < max_bytes:
            offset = self._cursor
            if offset >= self._next():  # the tail is shorter than counted: a record was lost
                self._paged = 0
                break
            run = self._read_run(offset)
            for i, (type_, payload) in enumerate(run):
                at = offset + i
                self._cursor = at + 1
                if type_ != PUBLISH or not self._in_tail(at):
                    continue
                msg, expires, _transient = decode_publish(payload, self._decode_props)
                bucket = at >> BUCKET_SHIFT
                self._dec(self._tail, bucket)
                self._live[bucket] = self._live.get(bucket, 0) + 1
                out.append(StoredMessage(at, msg, expires, self._extra.pop(at, 0)))
                self._paged -= 1
                size += len(msg.body)
                if not self._paged or len(out) >= max_count or size >= max_bytes:
                    break
        if self._filter is not None and self._cursor >= self._filter_end:
            self._filter = None
        if not self._paged:
            self._cursor = -1
            self._filter = None
        self.counters["paged_in"] += len(out)
        return out

    def _in_tail(self, offset: int) -> bool:
        f = self._filter
        if f is None or offset >= self._filter_end:
            return True
        return offset >= self._filter_base and bool(f[offset - self._filter_base])

    def _read_run(self, offset: int) -> list[tuple[int, bytes]]:
        written = self.log.next_offset
        if offset >= written:  # still buffered (paged in within the turn it was published)
            return self._pending[offset - written :]
        return self.log.read_run(offset, READ_RUN_BYTES)

    def drop(self) -> None:
        if not self.dropped:
            self.dropped = True
            self._pending.clear()
            self._settles.clear()
            self._moved.clear()
            self._requeues.clear()
            self.log.close()

    @staticmethod
    def _dec(counts: dict[int, int], bucket: int) -> None:
        n = counts.get(bucket, 0) - 1
        if n > 0:
            counts[bucket] = n
        else:
            counts.pop(bucket, None)

    # --- the shell's side: write once per turn, reclaim -----------------------------------------

    def write(self) -> bool:
        """Put buffered records into the log with one write. True if a PUBLISH went out that a commit
        must cover before its confirm. On OSError (disk full) everything stays buffered."""
        if self.dropped:
            self.dirty = False
            return False
        batch = self._pending
        had_publish = any(t == PUBLISH for t, _ in batch)
        if self._settles:
            batch.append((SETTLE, encode_runs(self._settles)))
        if self._requeues:
            batch.append((REQUEUE, encode_runs(self._requeues)))
        if self._delivered > self._delivered_logged:
            batch.append((DELIVERED, _U64.pack(self._delivered)))
        if batch:
            try:
                self.log.append(batch)
            except OSError:
                for type_ in (DELIVERED, REQUEUE, SETTLE):  # the derived ones are rebuilt next time
                    if batch and batch[-1][0] == type_:
                        batch.pop()
                raise
            self.counters["settled"] += len(self._settles)
        self._pending = []
        self._settles = []
        self._requeues = []
        self._delivered_logged = self._delivered
        self.dirty = False
        self._reclaim()
        if self._moved:  # written in a later turn, once the targets' publishes are committed
            moved, self._moved = self._moved, []
            self._sink.after_commit(lambda stored: self._settle_moved(moved, stored))
        return had_publish and self.sync

    def _reclaim(self) -> None:
        """Delete segments that hold nothing live; roll an idle log so its last file goes too."""
        low = min(min(self._live, default=1 << 62), min(self._tail, default=1 << 62))
        log = self.log
        if low == 1 << 62:
            upto = log.next_offset
            if self._cursor < 0 and _active_bytes(log) > ROLL_IDLE_BYTES:
                log.roll()
        else:
            upto = low << BUCKET_SHIFT
        if upto > self._reclaim_from:
            self.counters["reclaimed"] += log.delete_segments_before(upto)
            self._reclaim_from = upto

    # --- recovery ----------------------------------------------------------------------------

    def recover(self, window: int) -> tuple[list[StoredMessage], int, int]:
        """Replay the log: live messages in order, the first ``window`` loaded, the rest paged."""
        r = _replay(self.log)
        base, end, live = r.base, r.end, r.live
        for off, n in r.requeues.items():
            if base <= off < end and live[off - base]:
                self._extra[off] = n
        i = live.find(1)
        while 0 <= i <= r.delivered - base:  # delivered before: at least one delivery (redelivered)
            self._extra.setdefault(base + i, 1)
            i = live.find(1, i + 1)
        total = live.count(1)
        if not total:
            return [], 0, 0
        self._filter, self._filter_base, self._filter_end = live, base, end
        self._cursor = base + live.find(1)
        self._paged = total
        for bucket in range(base >> BUCKET_SHIFT, ((end - 1) >> BUCKET_SHIFT) + 1):
            lo = max(bucket << BUCKET_SHIFT, base) - base
            n = live.count(1, lo, ((bucket + 1) << BUCKET_SHIFT) - base)
            if n:
                self._tail[bucket] = n
        loaded = self.page_in(window, 1 << 62)
        paged_bytes = 0
        if self._paged:
            i = live.find(1, self._cursor - base)
            while i >= 0:
                paged_bytes += r.sizes[i]
                i = live.find(1, i + 1)
        return loaded, self._paged, paged_bytes


@dataclass(slots=True)
class _Replay:
    """What a queue log says once read through: which offsets are live (1) and their sizes,
    deliveries returned per offset, and the delivered-up-to hint."""

    base: int
    end: int
    live: bytearray
    sizes: array[int]
    requeues: dict[int, int]
    delivered: int = -1


def _replay(log: LogLike) -> _Replay:
    """Read every record once, in large runs, applying each to the live map (no object per message)."""
    base, end = log.first_offset, log.next_offset
    r = _Replay(base, end, bytearray(end - base), array("I", bytes(4 * (end - base))), {})
    live, sizes, requeues = r.live, r.sizes, r.requeues
    offset = base
    while offset < end:
        for type_, payload in log.read_run(offset, READ_RUN_BYTES):
            if type_ == PUBLISH:
                if not payload[0] & FLAG_TRANSIENT:
                    live[offset - base] = 1
                    sizes[offset - base] = len(payload)
            elif type_ == SETTLE:
                for first, count in decode_runs(payload):
                    if first + count > base:
                        lo = max(first, base) - base
                        live[lo : first + count - base] = bytes(first + count - base - lo)
            elif type_ == REQUEUE:
                for first, count in decode_runs(payload):
                    for off in range(first, first + count):
                        requeues[off] = requeues.get(off, 0) + 1
            elif type_ == DELIVERED:
                r.delivered = max(r.delivered, _U64.unpack(payload)[0])
            elif type_ == DROP:
                start, stop = _RANGE.unpack(payload)
                lo, hi = max(start, base) - base, max(min(stop, end), base) - base
                if hi > lo:
                    live[lo:hi] = bytes(hi - lo)
            offset += 1
    return r


def _active_bytes(log: LogLike) -> int:
    segments = getattr(log, "segments", None)
    if segments:
        return int(segments[-1].size)
    return 0
