"""AMQP stream queues on the core's topics: one store, two front ends.

A queue declared with ``x-queue-type: stream`` is the topic of the same name (created with one
partition if new; an existing topic is read from partition 0). Messages cross over by the one mapping
in ferrymq.protocols.stream_mapping. Publishes of one loop turn become one RecordBatch v2, written and
fsynced by the shared commit pipeline with the turn's Kafka produces (confirms wait for it, under
the pipeline's one rule). Appends from either side are announced through the topic registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ferrymq.core.clock import Clock
from ferrymq.core.message import Message
from ferrymq.core.stream_queue import retention_configs
from ferrymq.core.streams import topic_name_error
from ferrymq.core.topics import Topic, TopicRegistry
from ferrymq.errors import PreconditionFailed
from ferrymq.protocols.kafka.batch import batches_below, end_offset
from ferrymq.protocols.stream_mapping import Record, encode_publishes, messages_from, to_record
from ferrymq.server.commit import CommitPipeline

READ_BYTES = 1 << 20


class TopicStream:
    """The StreamHandle (ferrymq.core.store) of one stream queue: partition 0 of its topic."""

    def __init__(self, streams: AmqpStreams, topic: Topic) -> None:
        self.streams = streams
        self.topic = topic
        self.name = topic.spec.name
        self.log = topic.logs[0]  # what group commit fsyncs (a Syncable)
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
        self.streams.topics.appended(self.name, 0)
        return self.streams.commit.sync_streams

    def read(self, offset: int, max_count: int) -> list[tuple[int, Message]]:
        """As a read_committed Kafka consumer reads: up to the last stable offset (nothing past an
        open transaction's first record), aborted transactions' records skipped, markers stepped over."""
        txns = self.topic.producers[0].txns
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
        self.dropped = True
        self.streams.forget(self.name)
        self.streams.topics.delete(self.name)


class AmqpStreams:
    """The StreamBackend (ferrymq.core.store): stream queues as topics of the core's registry.
    Collaborators: the registry, the commit pipeline, the clock that stamps batches."""

    def __init__(self, topics: TopicRegistry, commit: CommitPipeline, clock: Clock) -> None:
        self.topics = topics
        self.commit = commit
        self.clock = clock
        self.handles: dict[str, TopicStream] = {}
        topics.listeners.append(self._appended)

    def open(self, vhost: str, name: str, arguments: dict[str, Any] | None = None) -> TopicStream:
        handle = self.handles.get(name)
        if handle is not None:
            return handle
        internal = "it is the broker's internal topic" if name in self.topics.owned else None
        why = topic_name_error(name) or internal
        if why:
            raise PreconditionFailed(f"queue '{name}' in vhost '{vhost}' cannot be a stream: {why}")
        topic = self.topics.get(name)
        if topic is None:
            code, message = self.topics.create(name, 1, retention_configs(arguments or {}, name, vhost))
            topic = self.topics.get(name)
            if topic is None:
                raise PreconditionFailed(f"cannot create stream '{name}': {message} (Kafka error {code})")
        handle = self.handles[name] = TopicStream(self, topic)
        return handle

    def forget(self, name: str) -> None:
        self.handles.pop(name, None)

    def _appended(self, name: str, partition: int) -> None:
        """Records reached the log (from Kafka or AMQP): wake this stream's consumers."""
        handle = self.handles.get(name)
        if handle is not None and partition == 0 and handle.watchers:
            for watcher in handle.watchers:
                watcher()
            self.commit.request_turn_end()
