"""A queue declared with ``x-queue-type: stream``: an append-only log read by offset, as RabbitMQ's
stream queues are over AMQP 0-9-1, stored as a Kafka topic (partition 0) so both protocols see it; a
super stream's partition queue is one partition of its topic (ferrymq.core.super_stream).

Reading does not remove: each consumer has its own cursor, starting where its ``x-stream-offset``
argument says (first, last, next, an offset, a timestamp, or an interval such as "1h" back from now).
Acks only give credit back; nacks and rejects do nothing else (a log is not requeued). As RabbitMQ
requires, consumers must ack manually and set a prefetch, and basic.get is refused.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ferrymq.core.consumer import Consumer
from ferrymq.core.message import Message
from ferrymq.core.queue import Entry, Queue
from ferrymq.errors import NotImplemented_, PreconditionFailed

if TYPE_CHECKING:
    from ferrymq.core.store import StreamHandle

READ_BATCH = 256  # messages read per cursor step
_INTERVAL = re.compile(r"^(\d+)([YMDhms])$")
_UNIT_MS = {"Y": 365 * 86_400_000, "M": 30 * 86_400_000, "D": 86_400_000, "h": 3_600_000, "m": 60_000,
            "s": 1000}


def interval_ms(spec: object) -> int | None:
    """RabbitMQ's stream intervals ("7D", "1h", "30s"; Y, M, D, h, m, s) in ms, or None."""
    if isinstance(spec, bytes):
        spec = spec.decode("utf-8", "replace")
    m = _INTERVAL.match(spec) if isinstance(spec, str) else None
    return int(m.group(1)) * _UNIT_MS[m.group(2)] if m else None


class StreamQueue(Queue):
    __slots__ = ("cursors", "stream")

    def __init__(self, *args: Any, stream: StreamHandle, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plain = False
        self.lease_ms = 0  # a log is never requeued: x-delivery-lease does not apply
        self.stream = stream
        self.cursors: dict[Consumer, int] = {}
        stream.watch(self.dispatch)

    # --- publish ---------------------------------------------------------------------------------

    def publish(self, msg: Message) -> bool:
        self.counters["published"] += 1
        self.stream.append(msg)
        return True

    # --- consumers -------------------------------------------------------------------------------

    def add_consumer(self, consumer: Consumer) -> None:
        where = f"queue '{self.name}' in vhost '{self.vhost.name}'"
        if consumer.no_ack:  # RabbitMQ closes the connection (540) for this one
            raise NotImplemented_(f"automatic acknowledgement not supported by stream queues {where}")
        if not consumer.prefetch and not consumer.channel.prefetch_global:
            raise PreconditionFailed(f"consumer prefetch count is not set for '{where}'")  # sic
        self.cursors[consumer] = self.start_offset(consumer.args.get("x-stream-offset", "next"))
        super().add_consumer(consumer)

    def remove_consumer(self, consumer: Consumer) -> None:
        self.cursors.pop(consumer, None)
        super().remove_consumer(consumer)

    def start_offset(self, spec: Any) -> int:
        """Where a consumer's cursor starts, read as RabbitMQ reads x-stream-offset."""
        s = self.stream
        first, nxt = s.first_offset, s.next_offset
        if isinstance(spec, bytes):
            spec = spec.decode()
        if spec == "first":
            return first
        if spec == "last":
            return max(first, nxt - 1)
        if spec == "next":
            return nxt
        if isinstance(spec, bool):
            raise PreconditionFailed(f"invalid x-stream-offset {spec!r}")
        if isinstance(spec, int):
            return min(max(spec, first), nxt)
        if isinstance(spec, datetime):
            return s.offset_for_time(int(spec.timestamp() * 1000))
        back = interval_ms(spec)
        if back is not None:
            return s.offset_for_time(self.clock.now_ms() - back)
        raise PreconditionFailed(f"invalid x-stream-offset {spec!r}")

    def dispatch(self) -> None:
        """Each consumer reads on from its own cursor while it has credit."""
        for consumer in list(self.consumers):
            cursor = self.cursors.get(consumer)
            while cursor is not None and cursor < self.stream.next_offset and consumer.has_credit():
                room = consumer.prefetch - consumer.unacked if consumer.prefetch else READ_BATCH
                batch = self.stream.read(cursor, max(1, min(room, READ_BATCH)))
                if not batch:
                    break
                for offset, msg in batch:
                    entry = Entry(offset, msg, 0, 0)
                    entry.deliveries = 1
                    self.counters["delivered"] += 1
                    self.unacked_count += 1
                    consumer.unacked += 1
                    consumer.channel.deliver(consumer, self, entry)
                    cursor = offset + 1
                self.cursors[consumer] = cursor

    # --- what a log does not do ----------------------------------------------------------------------

    def get(self) -> Entry | None:
        raise NotImplemented_(  # RabbitMQ closes the connection with 540 here
            f"basic.get not supported by stream queues queue '{self.name}' in vhost '{self.vhost.name}'")

    def settle(self, entry: Entry, consumer: Consumer | None) -> None:
        self.counters["acked"] += 1
        self.unacked_count -= 1
        if consumer is not None:
            consumer.unacked -= 1

    requeue = settle  # a log keeps every message: returning one changes nothing but credit
    discard = settle

    def purge(self) -> int:
        return 0  # retention, not purge, removes what a stream holds

    def next_deadline_ms(self) -> int | None:
        return None

    def tick(self, now_ms: int) -> bool:
        return False

    @property
    def message_count(self) -> int:
        return max(0, self.stream.next_offset - self.stream.first_offset)


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
