"""What OffsetDelete and DeleteGroups decide about a classic group, as Kafka's ClassicGroup does:
which topics its members are subscribed to (read from their ConsumerProtocol subscriptions), and
whether its offsets or the group itself may go. Pure: the server applies the verdicts.
"""

from __future__ import annotations

from ferrymq.protocols.kafka import errors
from ferrymq.protocols.kafka.errors import KafkaProtocolError
from ferrymq.protocols.kafka.primitives import Reader

CONSUMER_PROTOCOL = "consumer"


def subscribed_topics(metadata: bytes) -> set[str]:
    """The topics of a ConsumerProtocolSubscription (version i16, then an array of topic names; no
    version of it is flexible). Unreadable metadata subscribes to nothing, as in Kafka."""
    try:
        r = Reader(metadata)
        r.i16()
        return {r.string() for _ in range(r.array_len())}
    except (KafkaProtocolError, ValueError, IndexError):
        return set()


def offset_delete_verdict(state: str, protocol_type: str, has_members: bool) -> int:
    """The top-level error of OffsetDelete for a group that exists: a live group that is not a
    consumer group cannot lose offsets (a consumer group loses those of topics it is not
    subscribed to)."""
    if has_members and protocol_type != CONSUMER_PROTOCOL:
        return errors.NON_EMPTY_GROUP
    return errors.NONE
