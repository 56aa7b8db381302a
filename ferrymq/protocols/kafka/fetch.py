"""Fetch v4-11, hand-written: the response carries stored batches as the byte runs read from the
segment files, handed to the transport as separate buffers (no concatenation, no parsing).

Request: replica_id i32 | max_wait_ms i32 | min_bytes i32 | max_bytes i32 | isolation_level i8 |
session_id i32 (v7+) | session_epoch i32 (v7+) | [topic | [partition i32 | current_leader_epoch i32
(v9+) | fetch_offset i64 | log_start_offset i64 (v5+) | partition_max_bytes i32]] | forgotten topics
(v7+) | rack_id string (v11+).
Response: throttle_time_ms i32 | error_code i16 (v7+) | session_id i32 (v7+) | [topic | [partition
i32 | error_code i16 | high_watermark i64 | last_stable_offset i64 | log_start_offset i64 (v5+) |
aborted_transactions nullable array | preferred_read_replica i32 (v11+) | records nullable bytes]].
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ferrymq.protocols.kafka.primitives import I16, I32, I64, Reader, string


@dataclass(slots=True)
class FetchPartition:
    partition: int
    offset: int
    max_bytes: int


@dataclass(slots=True)
class FetchRequest:
    max_wait_ms: int
    min_bytes: int
    max_bytes: int
    isolation_level: int
    topics: list[tuple[str, list[FetchPartition]]]


@dataclass(slots=True)
class PartitionData:
    partition: int
    error_code: int = 0
    high_watermark: int = -1
    log_start_offset: int = -1
    records: list[bytes] = field(default_factory=list)  # byte runs of whole batches
    last_stable_offset: int = -1  # -1: the high watermark (no transaction open)
    aborted: list[tuple[int, int]] | None = None  # read_committed: (producer id, first offset) each

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.records)


def decode_fetch(r: Reader, version: int) -> FetchRequest:
    r.i32()  # replica_id: always a consumer here
    max_wait, min_bytes, max_bytes, isolation = r.i32(), r.i32(), r.i32(), r.i8()
    if version >= 7:
        r.i32(), r.i32()  # sessionless: we answer session_id 0, so full requests follow
    topics: list[tuple[str, list[FetchPartition]]] = []
    for _ in range(r.array_len()):
        name = r.string()
        parts = []
        for _ in range(r.array_len()):
            index = r.i32()
            if version >= 9:
                r.i32()
            offset = r.i64()
            if version >= 5:
                r.i64()
            parts.append(FetchPartition(index, offset, r.i32()))
        topics.append((name, parts))
    if version >= 7:
        for _ in range(r.array_len()):
            r.string()
            for _ in range(r.array_len()):
                r.i32()
    if version >= 11:
        r.string()
    return FetchRequest(max_wait, min_bytes, max_bytes, isolation, topics)


def encode_fetch_response(version: int, topics: list[tuple[str, list[PartitionData]]]) -> list[bytes]:
    """The body as a list of buffers: headers interleaved with the stored batch runs."""
    out = [I32.pack(0)]
    if version >= 7:
        out.append(I16.pack(0) + I32.pack(0))
    out.append(I32.pack(len(topics)))
    for name, parts in topics:
        out.append(string(name) + I32.pack(len(parts)))
        for p in parts:
            head = I32.pack(p.partition) + I16.pack(p.error_code) + I64.pack(p.high_watermark)
            head += I64.pack(p.high_watermark if p.last_stable_offset < 0 else p.last_stable_offset)
            if version >= 5:
                head += I64.pack(p.log_start_offset)
            head += _aborted(p.aborted)
            if version >= 11:
                head += I32.pack(-1)
            out.append(head + I32.pack(p.size))
            out.extend(p.records)
    return out


def _aborted(aborted: list[tuple[int, int]] | None) -> bytes:
    if aborted is None:
        return I32.pack(-1)
    return I32.pack(len(aborted)) + b"".join(I64.pack(pid) + I64.pack(first) for pid, first in aborted)
