"""A consumer commits what it read in its revoke callback, while the group prepares a rebalance: Kafka
accepts such a commit (the member and generation are current), so the member taking the partition
over starts after it. FerryMQ answered REBALANCE_IN_PROGRESS there, the commit was lost and the
records were read twice (aiokafka's test_rebalance_listener_with_coroutines, test_max_poll_interval_ms).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.timeout(60)


class CommitOnRevoke(ConsumerRebalanceListener):
    """Commits in on_partitions_revoked and keeps what the commit raised (aiokafka would only log it)."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.revoked: list[set[TopicPartition]] = []
        self.faults: list[BaseException] = []

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.revoked.append(set(revoked))
        if revoked:
            try:
                await self.consumer.commit()
            except Exception as exc:  # the test reports it
                self.faults.append(exc)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass


async def _consumer(bootstrap: str, topic: str, group: str) -> tuple[AIOKafkaConsumer, CommitOnRevoke]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    listener = CommitOnRevoke(consumer)
    consumer.subscribe([topic], listener=listener)
    await consumer.start()
    return consumer, listener


def test_a_commit_in_the_revoke_callback_survives_the_rebalance(ferry):
    async def main() -> None:
        bootstrap, topic, group = ferry.kafka_bootstrap, f"rb-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex}"
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        for p in (0, 1):
            for n in range(3):
                await producer.send_and_wait(topic, b"%d-%d" % (p, n), partition=p)
        await producer.stop()
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        first, listener = await _consumer(bootstrap, topic, group)
        second = None
        try:
            assert (await first.getone(tp0)).value == b"0-0"
            assert (await first.getone(tp1)).value == b"1-0"
            second, _ = await _consumer(bootstrap, topic, group)  # the group rebalances: first revokes both
            nexts = {(await asyncio.wait_for(c.getone(), 20)).value for c in (first, second)}
            assert listener.faults == []
            assert listener.revoked[-1] == {tp0, tp1}
            assert nexts == {b"0-1", b"1-1"}  # each partition resumes after the revoke-time commit
        finally:
            await first.stop()
            if second is not None:
                await second.stop()

    asyncio.run(main())
