"""Blind structural mutation of seed inputs, seeded so a run replays: bit flips, truncation, splices,
length-field edits and interesting integers, stacked a few at a time.

Why these operators: the decoders under test are length-prefixed binary formats (and JSON), where
most bugs sit at a length that lies, a cut in the middle of a field or a boundary integer; random
bytes alone rarely get past the first length check.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence

INPUT_MAX_BYTES = 1 << 16  # a mutated input never grows past this: a bound, not a leak
_STACK_MAX = 6
_PACKERS = (struct.Struct(">B"), struct.Struct(">H"), struct.Struct(">I"), struct.Struct(">Q"))
_INTERESTING = (0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
                0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000,
                0xFFFFFFFFFFFFFFFF)


def _flip(rng: random.Random, data: bytearray, _seeds: Sequence[bytes]) -> None:
    if data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)


def _byte(rng: random.Random, data: bytearray, _seeds: Sequence[bytes]) -> None:
    if data:
        data[rng.randrange(len(data))] = rng.choice((0, 1, 0x7F, 0x80, 0xCE, 0xFF, rng.randrange(256)))


def _truncate(rng: random.Random, data: bytearray, _seeds: Sequence[bytes]) -> None:
    del data[rng.randrange(len(data) + 1):]


def _delete(rng: random.Random, data: bytearray, _seeds: Sequence[bytes]) -> None:
    at = rng.randrange(len(data) + 1)
    del data[at:at + rng.randrange(1, 17)]


def _duplicate(rng: random.Random, data: bytearray, _seeds: Sequence[bytes]) -> None:
    at = rng.randrange(len(data) + 1)
    data[at:at] = data[at:at + rng.randrange(1, 65)]


def _insert(rng: random.Random, data: bytearray, _seeds: Sequence[bytes]) -> None:
    at = rng.randrange(len(data) + 1)
    data[at:at] = rng.randbytes(rng.randrange(1, 17))


def _splice(rng: random.Random, data: bytearray, seeds: Sequence[bytes]) -> None:
    """The tail from another seed (or a run of it) after a cut of this one."""
    other = rng.choice(seeds)
    at, start = rng.randrange(len(data) + 1), rng.randrange(len(other) + 1)
    if rng.random() < 0.5:
        data[at:] = other[start:]
    else:
        data[at:at] = other[start:start + rng.randrange(1, 129)]


def _interesting(rng: random.Random, data: bytearray, _seeds: Sequence[bytes]) -> None:
    packer = rng.choice(_PACKERS)
    if len(data) >= packer.size:
        at = rng.randrange(len(data) - packer.size + 1)
        value = rng.choice(_INTERESTING) & ((1 << (8 * packer.size)) - 1)
        packer.pack_into(data, at, value)


def _length(rng: random.Random, data: bytearray, _seeds: Sequence[bytes]) -> None:
    """Read a 1/2/4-byte big-endian field and make it lie: off by a little, the rest, or huge."""
    packer = rng.choice(_PACKERS[:3])
    if len(data) < packer.size:
        return
    at = rng.randrange(len(data) - packer.size + 1)
    (value,) = packer.unpack_from(data, at)
    choice = rng.randrange(3)
    if choice == 0:
        value += rng.randint(-8, 8)
    elif choice == 1:
        value = len(data) - at - packer.size + rng.randint(-2, 2)
    else:
        value = rng.choice(_INTERESTING)
    packer.pack_into(data, at, value & ((1 << (8 * packer.size)) - 1))


OPERATORS: tuple[Callable[[random.Random, bytearray, Sequence[bytes]], None], ...] = (
    _flip, _byte, _truncate, _delete, _duplicate, _insert, _splice, _interesting, _length, _length,
    _interesting, _flip)


def mutate(rng: random.Random, seeds: Sequence[bytes]) -> bytes:
    """One input: a seed with 1 to 6 stacked mutations, bounded at INPUT_MAX_BYTES."""
    data = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, _STACK_MAX)):
        rng.choice(OPERATORS)(rng, data, seeds)
    return bytes(data[:INPUT_MAX_BYTES])
