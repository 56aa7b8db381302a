"""Produce: the hot path. What happens to the batches (validated by header and CRC, checked against
the partition's idempotent-producer state, numbered in place, appended with one write per partition)
is ``ferrymq.protocols.kafka.partitions.produce``, which the simulator runs too; here the response
is held in the commit pipeline until the fsync that covers the appends.
"""

from __future__ import annotations

from collections.abc import Callable

from ferrymq.core.topics import TopicRegistry
from ferrymq.protocols.kafka import partitions
from ferrymq.protocols.kafka.partitions import TxnGate
from ferrymq.protocols.kafka.produce import decode_produce, encode_produce_response
from ferrymq.server.commit import CommitPipeline
from ferrymq.server.kafka.connection import KafkaConnection, Slot


class ProduceApi:
    """``topics``: where batches go (and who is told of them); ``commit``: when the reply may leave;
    ``txns``: who vouches for transactional batches."""

    def __init__(self, topics: TopicRegistry, commit: CommitPipeline, txns: TxnGate | None = None) -> None:
        self.topics = topics
        self.commit = commit
        self.txns = txns
        # Kafka has no memory alarm; during FerryMQ's resource alarms (set by the shell, ferrymq.server.app)
        # a produce is still stored (its records go to segment files, not memory) but answered with
        # Kafka's quota throttle, so the producer waits before its next request instead of failing.
        self.throttle_ms: Callable[[], int] = lambda: 0

    def produce(self, conn: KafkaConnection, slot: Slot, ctx: tuple[object, object]) -> None:
        req = decode_produce(ctx[1], slot.version)  # type: ignore[arg-type]
        results = partitions.produce(self.topics, req, self.commit, self.txns)
        if req.acks == 0:
            slot.drop()
            return
        version = slot.version

        def send(stored: bool) -> None:
            if not stored:
                partitions.fail_unstored(results)
            slot.reply(encode_produce_response(version, results, self.throttle_ms()))

        self.commit.hold(send)
