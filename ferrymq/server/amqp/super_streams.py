"""The AMQP face of multi-partition Kafka topics: each one is a RabbitMQ super stream in vhost ``/``.

When a topic gets a second partition — created with N > 1 (CreateTopics, auto-create) or grown
(CreatePartitions) — the exchange ``S`` (direct, durable, ``x-super-stream: true``), the partition
queues ``S-0`` .. ``S-(N-1)`` and their bindings (key "i", ``x-stream-partition-order: i``) are
declared through the vhost as any client's declarations are, so they are stored and recovered like
them. A deleted topic takes its super stream with it, as ``rabbitmq-streams delete_super_stream``
does. Declarations the vhost refuses (a name already taken by something else) are logged and skipped:
a Kafka request never fails because of its AMQP face.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ferrymq.core.stream_queue import StreamQueue
from ferrymq.core.super_stream import SUPER_STREAM_ARG, is_super_stream, partition_binding, partition_queue
from ferrymq.errors import ProtocolError

if TYPE_CHECKING:
    from ferrymq.core.broker import Broker
    from ferrymq.core.topics import TopicRegistry
    from ferrymq.core.vhost import VHost
    from ferrymq.server.amqp.streams import AmqpStreams

log = logging.getLogger("ferrymq.streams")

KAFKA_VHOST = "/"  # where Kafka's topics live (ferrymq.server.kafka.authz)
STREAM = {"x-queue-type": "stream"}


class SuperStreams:
    """Keeps each multi-partition topic's super stream in step with the topic.
    Collaborators: the broker (vhost ``/``), the topic registry, the AMQP stream backend."""

    def __init__(self, broker: Broker, topics: TopicRegistry, streams: AmqpStreams) -> None:
        self.broker = broker
        self.topics = topics
        self.streams = streams
        streams.super_exchange = self.exchange_stands
        topics.resized.append(self.resized)

    def exchange_stands(self, topic: str) -> bool:
        return any(is_super_stream(vh.exchanges.get(topic)) for vh in self.broker.vhosts.values())

    def resized(self, topic: str, partitions: int) -> None:
        if self.streams.resizing:  # a partition queue grew it: the super stream is being declared
            return
        known = self.topics.get(topic)
        if topic in self.topics.owned or (known is not None and known.internal):
            return
        if partitions == 0:  # a super stream declared over AMQP may live in any vhost
            for each in list(self.broker.vhosts.values()):
                self.remove(each, topic)
            return
        vhost = self.broker.vhosts.get(KAFKA_VHOST)
        if vhost is not None and partitions > 1:
            self.declare(vhost, topic, partitions)

    def declare(self, vhost: VHost, topic: str, partitions: int) -> None:
        """The exchange, then each partition queue and its binding (the order RabbitMQ declares them)."""
        try:
            vhost.declare_exchange(topic, "direct", durable=True, arguments={SUPER_STREAM_ARG: True})
        except ProtocolError as exc:
            log.warning("topic %s has %d partitions but no super stream: %s", topic, partitions, exc)
            return
        for partition in range(partitions):
            self._declare_partition(vhost, topic, partition)

    def _declare_partition(self, vhost: VHost, topic: str, partition: int) -> None:
        name = partition_queue(topic, partition)
        key, arguments = partition_binding(partition)
        try:
            queue = vhost.declare_queue(name, connection=None, durable=True, arguments=dict(STREAM))
            if not self._reads(queue, topic, partition):
                log.warning("queue %s is not partition %d of topic %s: not bound", name, partition, topic)
                return
            bound = any(b.destination == name and b.routing_key == key and not b.destination_is_exchange
                        for b in vhost.exchanges[topic].bindings())
            if not bound:
                vhost.bind(name, topic, key, arguments, to_exchange=False, connection=None)
        except ProtocolError as exc:
            log.warning("super stream %s: partition queue %s not declared: %s", topic, name, exc)

    @staticmethod
    def _reads(queue: object, topic: str, partition: int) -> bool:
        stream = getattr(queue, "stream", None) if isinstance(queue, StreamQueue) else None
        return stream is not None and (stream.name, stream.partition) == (topic, partition)

    def remove(self, vhost: VHost, topic: str) -> None:
        """The topic is gone: its partition queues (consumers cancelled) and its exchange go."""
        for queue in list(vhost.queues.values()):
            stream = queue.stream if isinstance(queue, StreamQueue) else None
            if getattr(stream, "partitioned", False) and getattr(stream, "name", None) == topic:
                vhost.drop_queue(queue)
        if is_super_stream(vhost.exchanges.get(topic)):
            vhost.delete_exchange(topic)
