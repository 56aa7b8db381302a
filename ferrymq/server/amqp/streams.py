"""AMQP stream queues on the core's topics: one store, two front ends.

A queue declared with ``x-queue-type: stream`` is the topic of the same name (created with one
partition if new; an existing topic is read from partition 0); a partition queue of a super stream
(ferrymq.core.super_stream) is one partition of its super stream's topic. Messages cross over by the
one mapping in ferrymq.protocols.stream_mapping. Publishes of one loop turn become one RecordBatch v2,
written and fsynced by the shared commit pipeline with the turn's Kafka produces (confirms wait for it, under
the pipeline's one rule). Appends from either side are announced through the topic registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ferrymq.core.clock import Clock
from ferrymq.core.message import Message
from ferrymq.core.stream_queue import retention_configs
from ferrymq.core.streams import topic_name_error
from ferrymq.core.super_stream import MAX_PARTITIONS, split_partition
from ferrymq.core.topics import Topic, TopicRegistry
from ferrymq.errors import PreconditionFailed
from ferrymq.protocols.kafka.batch import batches_below, end_offset
from ferrymq.protocols.stream_mapping import Record, encode_publishes, messages_from, to_record
from ferrymq.server.commit import CommitPipeline

READ_BYTES = 1 << 20


class TopicStream:
    """The StreamHandle (ferrymq.core.store) of one stream queue: partition 0 of its topic, or for a
    super stream's partition queue (``partitioned``) its own partition."""

    def __init__(self, streams: AmqpStreams, topic: Topic, queue: str, partition: int = 0,
                 partitioned: bool = False) -> None:
        self.streams = streams
        self.topic = topic
        self.name = topic.spec.name
        self.queue = queue
        self.partition = partition
        self.partitioned = partitioned
        self.log = topic.logs[partition]  # what group commit fsyncs (a Syncable)
        self.pending: list[Record] = []
        self.watchers: list[Callable[[], None]] = []
        self.dirty = False
        self.dropped = False

    @property
    def first_offset(self) -> int:
        return self.log.start_offset

    @property
    def next_offset(self) -> int:
        return self.log.next_offset

    def append(self, msg: Message) -> None:
        self.pending.append(to_record(msg))
        commit = self.streams.commit
        commit.note_stream_publish()
        if not self.dirty:
            self.dirty = True
            commit.note_dirty(self)

    def write(self) -> bool:
        """One batch for the turn's publishes; True: a commit must cover it before confirms (as it
        covers Kafka produces: the pipeline's one rule for streams)."""
        self.dirty = False
        if not self.pending or self.dropped:
            self.pending.clear()
            return False
        now = self.streams.clock.now_ms()
        data = encode_publishes(self.pending, now, self.log.next_offset)
        self.log.append(data, [(0, len(self.pending), now)])
        self.pending.clear()
        self.streams.topics.appended(self.name, self.partition)
        return self.streams.commit.sync_streams

    def read(self, offset: int, max_count: int) -> list[tuple[int, Message]]:
        """As a read_committed Kafka consumer reads: up to the last stable offset (nothing past an
        open transaction's first record), aborted transactions' records skipped, markers stepped over."""
        txns = self.topic.producers[self.partition].txns
        upto = txns.stable_offset(self.log.next_offset)
        aborted = txns.aborted_spans(offset, upto) if txns.aborted else None
        out: list[tuple[int, Message]] = []
        while len(out) < max_count and offset < upto:
            data = batches_below(self.log.read(offset, READ_BYTES), upto)
            if not data:
                break
            got = messages_from(self.name, data, offset, max_count - len(out), aborted)
            if not got:  # only transaction markers here: step past them
                if end_offset(data) <= offset:
                    break
                offset = end_offset(data)
                continue
            out.extend(got)
            offset = out[-1][0] + 1
        return out

    def offset_for_time(self, timestamp_ms: int) -> int:
        found = self.log.offset_for_time(timestamp_ms)
        return self.log.next_offset if found is None else found

    def watch(self, on_written: Callable[[], None]) -> None:
        self.watchers.append(on_written)

    def delete(self) -> None:
        """A stream queue's topic goes with it, as RabbitMQ deletes a stream's data. Kafka cannot
        delete one partition: a super stream's topic goes with the last of its AMQP face."""
        self.dropped = True
        self.streams.forget(self.queue)
        if not self.partitioned or not self.streams.face_remains(self.name):
            self.streams.topics.delete(self.name)


class AmqpStreams:
    """The StreamBackend (ferrymq.core.store): stream queues as topics of the core's registry.
    Collaborators: the registry, the commit pipeline, the clock that stamps batches."""

    def __init__(self, topics: TopicRegistry, commit: CommitPipeline, clock: Clock) -> None:
        self.topics = topics
        self.commit = commit
        self.clock = clock
        self.handles: dict[str, TopicStream] = {}  # by queue name
        self.readers: dict[tuple[str, int], list[TopicStream]] = {}  # by (topic, partition)
        self.resizing = False  # a partition queue is growing its topic: the super stream is being declared
        self.super_exchange = lambda topic: False  # set by SuperStreams: does the exchange still stand?
        topics.listeners.append(self._appended)

    def open(self, vhost: str, name: str, arguments: dict[str, Any] | None = None,
             partition: tuple[str, int] | None = None) -> TopicStream:
        """``partition``: (topic, number) when the queue is a super stream's partition queue."""
        handle = self.handles.get(name)
        if handle is not None:
            return handle
        partition = self._partition(name, partition)
        topic_name, number = partition or (name, 0)
        internal = "it is the broker's internal topic" if topic_name in self.topics.owned else None
        why = topic_name_error(topic_name) or internal
        if why:
            raise PreconditionFailed(f"queue '{name}' in vhost '{vhost}' cannot be a stream: {why}")
        topic = self._topic(vhost, name, topic_name, number + 1, arguments or {})
        handle = self.handles[name] = TopicStream(self, topic, name, number, partition is not None)
        self.readers.setdefault((topic_name, number), []).append(handle)
        return handle

    def _partition(self, name: str, declared: tuple[str, int] | None) -> tuple[str, int] | None:
        """Which partition a stream queue reads, decided by what outlives a restart: a topic of the
        queue's own name is its own stream (as before super streams); else the super stream's word;
        else "T-i" is partition i of a multi-partition topic T that has it (its exchange may be gone)."""
        if self.topics.get(name) is not None:
            return None
        if declared is not None:
            return declared
        split = split_partition(name)
        topic = self.topics.get(split[0]) if split is not None else None
        partitions = topic.spec.partitions if split is not None and topic is not None else 0
        return split if split is not None and partitions > 1 and split[1] < partitions else None

    def _topic(self, vhost: str, queue: str, name: str, partitions: int, arguments: dict[str, Any]) -> Topic:
        """The topic, created (or grown to ``partitions``) if it is short of them."""
        if partitions > MAX_PARTITIONS:
            raise PreconditionFailed(f"queue '{queue}' in vhost '{vhost}': partition {partitions - 1} of "
                                     f"super stream '{name}' is past the limit of {MAX_PARTITIONS}")
        topic = self.topics.get(name)
        code, message = 0, None
        self.resizing = True
        try:
            if topic is None:
                configs = retention_configs(arguments, queue, vhost)
                code, message = self.topics.create(name, partitions, configs)
            elif topic.spec.partitions < partitions:
                code, message = self.topics.add_partitions(name, partitions, False)
        finally:
            self.resizing = False
        topic = self.topics.get(name)
        if topic is None or topic.spec.partitions < partitions:
            raise PreconditionFailed(f"cannot create stream '{queue}': {message} (Kafka error {code})")
        return topic

    def forget(self, name: str) -> None:
        handle = self.handles.pop(name, None)
        if handle is not None:
            key = (handle.name, handle.partition)
            left = [h for h in self.readers.get(key, ()) if h is not handle]
            if left:
                self.readers[key] = left
            else:
                self.readers.pop(key, None)

    def exchange_gone(self, topic: str) -> None:
        """A super stream's exchange was deleted: with no stream queue left on it, its topic goes too."""
        if not any(h.name == topic for h in self.handles.values()):
            self.topics.delete(topic)

    def face_remains(self, topic: str) -> bool:
        """Does any partition queue of ``topic`` or its super stream exchange still stand?"""
        return self.super_exchange(topic) or any(h.name == topic for h in self.handles.values())

    def _appended(self, name: str, partition: int) -> None:
        """Records reached the log (from Kafka or AMQP): wake this stream's consumers."""
        woken = False
        for handle in self.readers.get((name, partition), ()):
            for watcher in handle.watchers:
                watcher()
                woken = True
        if woken:
            self.commit.request_turn_end()
