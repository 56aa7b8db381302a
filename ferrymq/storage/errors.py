"""Storage errors, under FerryMQ's one hierarchy.

Kept apart from ferrymq/errors.py because they carry no wire reply code: the server maps them
(usually to INTERNAL_ERROR, or to closing the queue) where it knows the context.
"""

from __future__ import annotations

from ferrymq.errors import FerryMQError


class StorageError(FerryMQError):
    """Base of every storage failure."""


class OffsetOutOfRange(StorageError, LookupError):
    """The offset was never written, or its segment has been deleted."""


class CorruptRecord(StorageError):
    """A stored record failed its CRC or bounds check on read: never returned as data."""


class CorruptSegment(StorageError):
    """A segment cannot be trusted as a whole (bad header, wrong base, gap between segments).

    Raised instead of guessing, because silently dropping a segment could drop confirmed messages.
    """
