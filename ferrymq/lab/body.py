"""The lab's message body: a magic, the message's id in its series and its send time (monotonic ns),
then padding to the scenario's size. Every receipt carries what the ledger needs to count it
(loss, duplicate, latency) without any per-message state on the wire beyond these 20 bytes."""

from __future__ import annotations

import struct

MAGIC = b"FLAB"
_HEAD = struct.Struct(">4sQQ")
MIN_SIZE = _HEAD.size


def encode(msg_id: int, sent_ns: int, size: int = MIN_SIZE) -> bytes:
    head = _HEAD.pack(MAGIC, msg_id, sent_ns)
    return head + b"." * max(0, size - len(head))


def decode(body: bytes) -> tuple[int, int] | None:
    """(id, send time) or None for a body that is not the lab's (another client's message)."""
    if len(body) < _HEAD.size:
        return None
    magic, msg_id, sent_ns = _HEAD.unpack_from(body)
    if magic != MAGIC:
        return None
    return msg_id, sent_ns
