"""Produce v3-8, hand-written: the record payload of each partition is copied out of the receive
buffer once (as a bytearray, so base offsets can be written in place) and never parsed further here.

Request: transactional_id nullable string | acks i16 | timeout_ms i32 | [topic string |
[partition i32 | records nullable bytes]]. Response: [topic | [partition i32 | error_code i16 |
base_offset i64 | log_append_time_ms i64 | log_start_offset i64 (v5+) | record_errors (v8+) |
error_message nullable string (v8+)]] | throttle_time_ms i32.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ferrymq.protocols.kafka.errors import KafkaProtocolError
from ferrymq.protocols.kafka.primitives import I16, I32, I64, Reader, nullable_string, string


@dataclass(slots=True)
class ProduceRequest:
    transactional_id: str | None
    acks: int
    timeout_ms: int
    topics: list[tuple[str, list[tuple[int, bytearray | None]]]]


@dataclass(slots=True)
class PartitionResult:
    partition: int
    error_code: int = 0
    base_offset: int = -1
    log_start_offset: int = -1
    error_message: str | None = None
    # KIP-467 (v8+): (index of the record in its batch, why) for each record that sank the batch
    record_errors: list[tuple[int, str | None]] = field(default_factory=list)


def decode_produce(r: Reader, version: int) -> ProduceRequest:
    txn = r.nullable_string()
    acks, timeout_ms = r.i16(), r.i32()
    topics: list[tuple[str, list[tuple[int, bytearray | None]]]] = []
    for _ in range(r.array_len()):
        name = r.string()
        parts: list[tuple[int, bytearray | None]] = []
        for _ in range(r.array_len()):
            index = r.i32()
            n = r.i32()
            if n < 0:
                parts.append((index, None))
                continue
            if n > r.end - r.pos:
                raise KafkaProtocolError(f"records of {n} bytes overrun the request")
            parts.append((index, bytearray(r.buf[r.pos : r.pos + n])))
            r.pos += n
        topics.append((name, parts))
    return ProduceRequest(txn, acks, timeout_ms, topics)


def encode_produce_response(version: int, topics: list[tuple[str, list[PartitionResult]]],
                            throttle_ms: int = 0) -> bytes:
    out = [I32.pack(len(topics))]
    for name, parts in topics:
        out.append(string(name))
        out.append(I32.pack(len(parts)))
        for p in parts:
            out.append(I32.pack(p.partition) + I16.pack(p.error_code) + I64.pack(p.base_offset))
            out.append(I64.pack(-1))  # log_append_time: CreateTime topics answer -1
            if version >= 5:
                out.append(I64.pack(p.log_start_offset))
            if version >= 8:
                out.append(I32.pack(len(p.record_errors)))
                out += [I32.pack(i) + nullable_string(why) for i, why in p.record_errors]
                out.append(nullable_string(p.error_message))
    out.append(I32.pack(throttle_ms))
    return b"".join(out)
