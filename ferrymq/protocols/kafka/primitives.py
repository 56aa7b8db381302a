"""Kafka's classic (non-flexible) wire primitives for the hand-written codecs, plus the varints that
flexible headers need. Big-endian throughout; a read past the end raises KafkaProtocolError."""

from __future__ import annotations

import struct

from ferrymq.protocols.kafka.errors import KafkaProtocolError

I8 = struct.Struct(">b")
I16 = struct.Struct(">h")
I32 = struct.Struct(">i")
I64 = struct.Struct(">q")
U32 = struct.Struct(">I")


class Reader:
    """A cursor over one request body. Bounds are checked by struct and by the explicit length checks."""

    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes | bytearray | memoryview, pos: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def _take(self, st: struct.Struct) -> int:
        pos = self.pos
        if pos + st.size > self.end:
            raise KafkaProtocolError(f"request truncated at byte {pos}")
        self.pos = pos + st.size
        return st.unpack_from(self.buf, pos)[0]  # type: ignore[no-any-return]

    def i8(self) -> int:
        return self._take(I8)

    def i16(self) -> int:
        return self._take(I16)

    def i32(self) -> int:
        return self._take(I32)

    def i64(self) -> int:
        return self._take(I64)

    def raw(self, n: int) -> bytes:
        pos = self.pos
        if n < 0 or pos + n > self.end:
            raise KafkaProtocolError(f"field of {n} bytes overruns the request at byte {pos}")
        self.pos = pos + n
        return bytes(self.buf[pos : pos + n])

    def string(self) -> str:
        n = self.i16()
        if n < 0:
            raise KafkaProtocolError("null where a string is required")
        return self.raw(n).decode("utf-8", "replace")

    def nullable_string(self) -> str | None:
        n = self.i16()
        return None if n < 0 else self.raw(n).decode("utf-8", "replace")

    def nullable_bytes(self) -> bytes | None:
        n = self.i32()
        return None if n < 0 else self.raw(n)

    def array_len(self) -> int:
        n = self.i32()
        if n > self.end - self.pos:  # every element takes at least one byte
            raise KafkaProtocolError(f"array length {n} exceeds the request")
        return max(n, 0)

    def uvarint(self) -> int:
        value = shift = 0
        while True:
            if self.pos >= self.end or shift > 28:
                raise KafkaProtocolError("bad unsigned varint")
            b = self.buf[self.pos]
            self.pos += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value
            shift += 7

    def skip_tagged_fields(self) -> None:
        """Flexible structs end in tagged fields; unknown tags must be skipped, never rejected."""
        for _ in range(self.uvarint()):
            self.uvarint()
            self.raw(self.uvarint())


def string(s: str) -> bytes:
    b = s.encode()
    return I16.pack(len(b)) + b


def nullable_string(s: str | None) -> bytes:
    return b"\xff\xff" if s is None else string(s)


def uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
