"""AMQP stream queues on Kafka topics: one store, two front ends.

A queue declared with ``x-queue-type: stream`` is the Kafka topic of the same name (created with one
partition if new; an existing topic is read from partition 0). How a message crosses over:

- AMQP -> Kafka record: key = routing key (null when empty), value = body; each AMQP property set
  becomes a header ``amqp.<property>`` (text), and each application header a Kafka header of the same
  name (text for strings and numbers, raw for bytes). Publishes of one loop turn become one
  RecordBatch v2, written and fsynced with the turn's group commit (confirms wait for it).
- Kafka record -> AMQP message: body = value, routing key = key (or the topic name), the
  ``amqp.*`` headers become properties again, every other header an application header (text when
  it is UTF-8, else bytes); ``x-stream-offset`` (and ``x-stream-timestamp``, ms) are added, as
  RabbitMQ adds the offset to stream deliveries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ferrymq.core.message import Message
from ferrymq.core.properties import Properties
from ferrymq.core.stream_queue import interval_ms
from ferrymq.core.streams import topic_name_error
from ferrymq.errors import PreconditionFailed
from ferrymq.protocols.kafka.batch import HEADER_BYTES, LOG_OVERHEAD_BYTES
from ferrymq.protocols.kafka.batch import header as batch_header
from ferrymq.protocols.kafka.records import decode_batches, encode_batch

if TYPE_CHECKING:
    from ferrymq.server.commit import CommitPipeline
    from ferrymq.server.kafka.server import KafkaServer
    from ferrymq.server.kafka.topics import Topic

READ_BYTES = 1 << 20
_TEXT_PROPS = ("content_type", "content_encoding", "correlation_id", "reply_to", "expiration",
               "message_id", "type", "user_id", "app_id", "cluster_id")
_INT_PROPS = ("delivery_mode", "priority", "timestamp")


def to_record(msg: Message) -> tuple[bytes | None, bytes, list[tuple[str, bytes | None]]]:
    props = msg.props
    headers: list[tuple[str, bytes | None]] = []
    for name in _TEXT_PROPS + _INT_PROPS:
        value = getattr(props, name)
        if value is not None:
            if isinstance(value, datetime):
                value = int(value.timestamp())
            headers.append((f"amqp.{name}", str(value).encode()))
    for key, value in (props.headers or {}).items():
        if isinstance(value, bytes):
            headers.append((key, value))
        elif value is None:
            headers.append((key, None))
        else:
            headers.append((key, str(value).encode()))
    key = msg.routing_key.encode() if msg.routing_key else None
    return key, msg.body, headers


def to_message(topic: str, offset: int, timestamp: int, key: bytes | None, value: bytes | None,
               headers: list[tuple[str, bytes | None]]) -> Message:
    fields: dict[str, Any] = {}
    app: dict[str, Any] = {}
    for name, raw in headers:
        prop = name[5:] if name.startswith("amqp.") else None
        if prop in _TEXT_PROPS and raw is not None:
            fields[prop] = raw.decode("utf-8", "replace")
        elif prop in _INT_PROPS and raw is not None and raw.isdigit():
            n = int(raw)
            fields[prop] = datetime.fromtimestamp(n, UTC) if prop == "timestamp" else n
        else:
            app[name] = _text_or_bytes(raw)
    app["x-stream-offset"] = offset
    app["x-stream-timestamp"] = timestamp
    routing_key = key.decode("utf-8", "replace") if key else topic
    return Message("", routing_key, bytes(value or b""), Properties(headers=app, **fields), None)


def _records_from(data: bytes, offset: int, limit: int) -> list[Any]:
    """Records at or after ``offset``, at most ``limit``: batches wholly before ``offset`` are
    skipped by their headers, and decoding stops once ``limit`` records are in hand."""
    out: list[Any] = []
    pos = 0
    while pos + HEADER_BYTES <= len(data) and len(out) < limit:
        base, length, _e, _m, _c, _a, last_delta = batch_header(data, pos)[:7]
        end = pos + LOG_OVERHEAD_BYTES + length
        if end > len(data):
            break
        if base + last_delta >= offset:
            out.extend(r for r in decode_batches(data[pos:end]) if r[0] >= offset)
        pos = end
    return out[:limit]


def _text_or_bytes(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(raw)


def retention_configs(arguments: dict[str, Any], name: str, vhost: str) -> dict[str, str]:
    """RabbitMQ's stream retention arguments as the topic's Kafka configs."""
    configs: dict[str, str] = {}
    for arg, config in (("x-max-length-bytes", "retention.bytes"),
                        ("x-stream-max-segment-size-bytes", "segment.bytes")):
        value = arguments.get(arg)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise PreconditionFailed(f"invalid arg '{arg}' for queue '{name}' in vhost '{vhost}'")
            configs[config] = str(value)
    age = arguments.get("x-max-age")
    if age is not None:
        ms = interval_ms(age)
        if ms is None:
            raise PreconditionFailed(f"invalid arg 'x-max-age' for queue '{name}' in vhost '{vhost}'")
        configs["retention.ms"] = str(ms)
    return configs


class KafkaStream:
    """The StreamHandle (ferrymq.core.store) of one stream queue: partition 0 of its topic."""

    def __init__(self, streams: AmqpStreams, topic: Topic) -> None:
        self.streams = streams
        self.topic = topic
        self.name = topic.spec.name
        self.log = topic.logs[0]  # what group commit fsyncs (a Syncable)
        self.pending: list[tuple[bytes | None, bytes, list[tuple[str, bytes | None]]]] = []
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
        if commit.sync_streams:
            commit.publish_pending = True
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
        now = int(time.time() * 1000)
        data = encode_batch(self.pending, now, base_offset=self.log.next_offset)
        self.log.append(data, [(0, len(self.pending), now)])
        self.pending.clear()
        self.streams.written(self.name)
        return self.streams.commit.sync_streams

    def read(self, offset: int, max_count: int) -> list[tuple[int, Message]]:
        out: list[tuple[int, Message]] = []
        while len(out) < max_count and offset < self.log.next_offset:
            data = self.log.read(offset, READ_BYTES)
            if not data:
                break
            records = _records_from(data, offset, max_count - len(out))
            if not records:
                break
            for off, ts, key, value, headers in records[: max_count - len(out)]:
                out.append((off, to_message(self.name, off, ts, key, value, headers)))
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
        self.streams.kafka.topics.delete(self.name)


class AmqpStreams:
    """The StreamBackend (ferrymq.core.store): stream queues as Kafka topics."""

    def __init__(self, kafka: KafkaServer, commit: CommitPipeline) -> None:
        self.kafka = kafka
        self.commit = commit
        self.handles: dict[str, KafkaStream] = {}
        kafka.append_listeners.append(self._kafka_appended)

    def open(self, vhost: str, name: str, arguments: dict[str, Any] | None = None) -> KafkaStream:
        handle = self.handles.get(name)
        if handle is not None:
            return handle
        why = topic_name_error(name)
        if why:
            raise PreconditionFailed(f"queue '{name}' in vhost '{vhost}' cannot be a stream: {why}")
        topics = self.kafka.topics
        topic = topics.get(name)
        if topic is None:
            code, message = topics.create(name, 1, retention_configs(arguments or {}, name, vhost))
            topic = topics.get(name)
            if topic is None:
                raise PreconditionFailed(f"cannot create stream '{name}': {message} (Kafka error {code})")
        handle = self.handles[name] = KafkaStream(self, topic)
        return handle

    def forget(self, name: str) -> None:
        self.handles.pop(name, None)

    def written(self, name: str) -> None:
        """AMQP publishes reached the log: wake stream consumers and parked Kafka fetches."""
        self.kafka.data.wake(name, 0)

    def _kafka_appended(self, name: str, partition: int) -> None:
        handle = self.handles.get(name)
        if handle is not None and partition == 0:
            for watcher in handle.watchers:
                watcher()
            self.commit.request_turn_end()
