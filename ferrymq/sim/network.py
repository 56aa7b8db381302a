"""A seeded in-memory byte stream: what a TCP connection does to bytes, minus the loss.

Why chunks at random boundaries: the codecs must parse any split of the stream (a frame head cut in
two, a body in three pieces), and a real socket hands them exactly such splits. Delivery is pulled
by the simulator's scheduler, so a pipe can also sit on its bytes for many steps (a delay).
"""

from __future__ import annotations

import random


class Pipe:
    """One direction of one connection: ``write`` appends, ``take`` hands out a prefix."""

    __slots__ = ("_buf", "closed", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._buf = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        if not self.closed:
            self._buf += data

    def writelines(self, parts: list[bytes]) -> None:
        for part in parts:
            self.write(bytes(part))

    @property
    def pending(self) -> int:
        return len(self._buf)

    def take(self, rng: random.Random, whole: bool = False) -> bytes:
        """A prefix of what is buffered: mostly small cuts, sometimes everything (a partial write
        followed by the rest, as the kernel would)."""
        n = len(self._buf)
        if not n:
            return b""
        size = n if whole or rng.random() < 0.3 else rng.randint(1, min(n, rng.choice((7, 64, 1024, 8192))))
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def close(self) -> None:
        """The connection died: bytes in flight are gone."""
        self.closed = True
        self._buf.clear()
