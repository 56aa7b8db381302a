"""Receipt handles: which delivery of which queue a ReceiveMessage handed out.

A handle names the broker's run (``boot``), the delivery tag on the vhost's SQS channel and the
queue. A handle from an earlier run, or of a delivery that has since been settled or taken back,
is still well formed: deleting with it succeeds and does nothing, as AWS answers a stale handle.
"""

from __future__ import annotations

from dataclasses import dataclass

from ferrymq.protocols.aws.errors import AwsError

_VERSION = "1"


@dataclass(frozen=True, slots=True)
class Receipt:
    boot: str
    tag: int
    queue: str


def encode(receipt: Receipt) -> str:
    """Plain text (``1:<boot>:<tag>:<queue>``): opaque to clients, and a base64 round per message
    bought nothing (the boot token is URL-safe base64, a queue name has no ':')."""
    return f"{_VERSION}:{receipt.boot}:{receipt.tag}:{receipt.queue}"


def decode(handle: object) -> Receipt:
    bad = AwsError("ReceiptHandleIsInvalid", f"The input receipt handle \"{handle}\" is not a valid "
                                             "receipt handle.")
    if not isinstance(handle, str) or not handle or len(handle) > 1024:
        raise bad
    parts = handle.split(":", 3)
    if len(parts) != 4 or parts[0] != _VERSION or not parts[2].isdigit():
        raise bad
    return Receipt(parts[1], int(parts[2]), parts[3])
