"""Build RecordBatch v2 (uncompressed) and read it (any codec) — for the broker's own internal
streams (committed offsets), tests, and AMQP publishes into and deliveries from streams. Never used
on the Produce/Fetch path."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import crc32c

from ferrymq.protocols.kafka.batch import _HEAD, ATTR_CONTROL, HEADER_BYTES, LOG_OVERHEAD_BYTES
from ferrymq.protocols.kafka.compression import decompress
from ferrymq.protocols.kafka.errors import KafkaProtocolError
from ferrymq.protocols.kafka.primitives import uvarint

Header = tuple[str, bytes | None]
Record = tuple[bytes | None, bytes | None, Sequence[Header]]  # key, value, headers


def zigzag(n: int) -> bytes:
    return uvarint((n << 1) ^ (n >> 63))


def _blob(b: bytes | None) -> bytes:
    return zigzag(-1) if b is None else zigzag(len(b)) + b


def encode_record(delta: int, key: bytes | None, value: bytes | None, headers: Sequence[Header] = (),
                  ts_delta: int = 0) -> bytes:
    body = b"".join((b"\x00", zigzag(ts_delta), zigzag(delta), _blob(key), _blob(value),
                     zigzag(len(headers)), *(_blob(k.encode()) + _blob(v) for k, v in headers)))
    return zigzag(len(body)) + body


def encode_batch(records: Iterable[Record], timestamp_ms: int, base_offset: int = 0,
                 producer_id: int = -1, producer_epoch: int = -1, base_sequence: int = -1,
                 attributes: int = 0) -> bytes:
    recs = [encode_record(i, k, v, h) for i, (k, v, h) in enumerate(records)]
    if not recs:
        raise ValueError("a record batch needs at least one record")
    body = b"".join(recs)
    length = HEADER_BYTES - LOG_OVERHEAD_BYTES + len(body)
    head = bytearray(_HEAD.pack(base_offset, length, 0, 2, 0, attributes, len(recs) - 1, timestamp_ms,
                                timestamp_ms, producer_id, producer_epoch, base_sequence, len(recs)))
    crc = crc32c.crc32c(body, crc32c.crc32c(memoryview(head)[21:]))
    struct.pack_into(">I", head, 17, crc)
    return bytes(head) + body


class _Cursor:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos

    def varint(self) -> int:
        v = shift = 0
        while True:
            if self.pos >= len(self.buf) or shift > 63:
                raise KafkaProtocolError("bad varint in record")
            b = self.buf[self.pos]
            self.pos += 1
            v |= (b & 0x7F) << shift
            if b < 0x80:
                return (v >> 1) ^ -(v & 1)
            shift += 7

    def blob(self) -> bytes | None:
        n = self.varint()
        if n < 0:
            return None
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out


def decode_batches(buf: bytes, control: bool = False) -> list[tuple[int, int, bytes | None, bytes | None,
                                                                  list[Header]]]:
    """(offset, timestamp, key, value, headers) for every record of the whole batches in ``buf``;
    control batches (transaction markers, never user data) only when ``control`` is asked for."""
    out: list[tuple[int, int, bytes | None, bytes | None, list[Header]]] = []
    pos = 0
    while pos + HEADER_BYTES <= len(buf):
        base, length, _e, _m, _c, attrs, _ld, base_ts, _mt, _p, _pe, _s, count = _HEAD.unpack_from(buf, pos)
        end = pos + LOG_OVERHEAD_BYTES + length
        if attrs & ATTR_CONTROL and not control:
            pos = end
            continue
        if attrs & 0x07:  # compressed: the records section alone, decompressed
            c = _Cursor(decompress(attrs & 0x07, buf[pos + HEADER_BYTES : end]), 0)
        else:
            c = _Cursor(buf[:end], pos + HEADER_BYTES)
        for _ in range(count):
            c.varint()  # record length
            c.pos += 1  # attributes
            ts, delta = c.varint(), c.varint()
            key, value = c.blob(), c.blob()
            headers = []
            for _ in range(c.varint()):
                hk = c.blob() or b""
                headers.append((hk.decode("utf-8", "replace"), c.blob()))  # a stored batch must stay readable
            out.append((base + delta, base_ts + ts, key, value, headers))
        pos = end
    return out
