"""The AMQP <-> Kafka record mapping, one place for both directions (AMQP stream queues are Kafka
topics). At protocol level because it speaks both: protocols.amqp and protocols.kafka stay
independent of each other.

- AMQP -> Kafka record: key = routing key (null when empty), value = body; each AMQP property set
  becomes a header ``amqp.<property>`` (text), and each application header a Kafka header of the same
  name (text for strings and numbers, raw for bytes).
- Kafka record -> AMQP message: body = value, routing key = key (or the topic name), the
  ``amqp.*`` headers become properties again, every other header an application header (text when
  it is UTF-8, else bytes); ``x-stream-offset`` (and ``x-stream-timestamp``, ms) are added, as
  RabbitMQ adds the offset to stream deliveries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ferrymq.core.message import Message
from ferrymq.core.properties import Properties
from ferrymq.protocols.kafka.batch import ATTR_TRANSACTIONAL, HEADER_BYTES, LOG_OVERHEAD_BYTES
from ferrymq.protocols.kafka.batch import header as batch_header
from ferrymq.protocols.kafka.records import decode_batches, encode_batch

Record = tuple[bytes | None, bytes, list[tuple[str, bytes | None]]]  # key, value, headers

_TEXT_PROPS = ("content_type", "content_encoding", "correlation_id", "reply_to", "expiration",
               "message_id", "type", "user_id", "app_id", "cluster_id")
_INT_PROPS = ("delivery_mode", "priority", "timestamp")


def to_record(msg: Message) -> Record:
    props = msg.props
    headers: list[tuple[str, bytes | None]] = []
    for name in _TEXT_PROPS + _INT_PROPS:
        value = getattr(props, name)
        if value is not None:
            if isinstance(value, datetime):
                value = int(value.timestamp())
            headers.append((f"amqp.{name}", str(value).encode()))
    for name, value in (props.headers or {}).items():
        if isinstance(value, bytes):
            headers.append((name, value))
        elif value is None:
            headers.append((name, None))
        else:
            headers.append((name, str(value).encode()))
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


def records_from(data: bytes, offset: int, limit: int,
                 aborted: dict[int, list[tuple[int, int]]] | None = None) -> list[Any]:
    """Records at or after ``offset``, at most ``limit``: batches wholly before ``offset`` are
    skipped by their headers, and decoding stops once ``limit`` records are in hand. ``aborted``
    (PartitionTxns.aborted_spans): transactional batches of an aborted transaction are skipped too,
    by their headers (what a read_committed Kafka consumer does with the aborted-transactions list)."""
    out: list[Any] = []
    pos = 0
    while pos + HEADER_BYTES <= len(data) and len(out) < limit:
        base, length, _e, _m, _c, attrs, last_delta, _t, _mt, pid = batch_header(data, pos)[:10]
        end = pos + LOG_OVERHEAD_BYTES + length
        if end > len(data):
            break
        dropped = aborted and attrs & ATTR_TRANSACTIONAL and _in_spans(aborted.get(pid), base)
        if base + last_delta >= offset and not dropped:
            out.extend(r for r in decode_batches(data[pos:end]) if r[0] >= offset)
        pos = end
    return out[:limit]


def _in_spans(spans: list[tuple[int, int]] | None, base: int) -> bool:
    return spans is not None and any(first <= base < marker for first, marker in spans)


def _text_or_bytes(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(raw)


def encode_publishes(records: list[Record], now_ms: int, base_offset: int) -> bytes:
    """A loop turn's AMQP publishes to one stream as one RecordBatch v2 (stamped ``now_ms``)."""
    return encode_batch(records, now_ms, base_offset=base_offset)


def messages_from(topic: str, data: bytes, offset: int, limit: int,
                  aborted: dict[int, list[tuple[int, int]]] | None = None) -> list[tuple[int, Message]]:
    """Up to ``limit`` (offset, message) pairs at or after ``offset`` in stored batches ``data``."""
    return [(off, to_message(topic, off, ts, key, value, headers))
            for off, ts, key, value, headers in records_from(data, offset, limit, aborted)]
