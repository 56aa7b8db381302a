"""Size-prefixed request frames out of a byte stream, sans-IO: ``receive_data`` then ``frames``.

A frame larger than the bound is a protocol error (the connection closes); incomplete input is kept
until the rest arrives, so the buffer never holds more than one bound plus one read.
"""

from __future__ import annotations

from ferrymq.protocols.kafka.errors import KafkaProtocolError
from ferrymq.protocols.kafka.primitives import I32


class FrameBuffer:
    __slots__ = ("_buf", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int) -> None:
        self._buf = bytearray()
        self.max_frame_bytes = max_frame_bytes

    def receive_data(self, data: bytes) -> None:
        self._buf += data

    def frames(self) -> list[memoryview]:
        """Every complete frame in the buffer (views into one bytes copy); keeps the partial tail."""
        buf = self._buf
        pos, end = 0, len(buf)
        spans: list[tuple[int, int]] = []
        while end - pos >= 4:
            (size,) = I32.unpack_from(buf, pos)
            if size < 8 or size > self.max_frame_bytes:
                raise KafkaProtocolError(f"request size {size} outside 8..{self.max_frame_bytes}")
            if end - pos - 4 < size:
                break
            spans.append((pos + 4, pos + 4 + size))
            pos += 4 + size
        if not spans:
            return []
        with memoryview(buf) as whole:
            data = memoryview(whole[:pos].tobytes())  # the one copy out of the receive buffer
        del buf[:pos]
        return [data[a:b] for a, b in spans]
