"""Account events for the event-sourcing scenario: deposits and withdrawals keyed by account, carried
in the lab's body after its head (id, send time), and the readers that replay a stream from its
start or from a timestamp — a Kafka topic (aiokafka, partitions assigned by hand, read up to the end
offsets taken when the replay starts) and an AMQP stream queue (aio-pika, ``x-stream-offset``)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import struct
import time
from array import array
from collections.abc import Callable
from typing import Any

from ferrymq.clock import Rng
from ferrymq.lab import body

EVENT = struct.Struct(">Hi")  # account, amount in cents (a withdrawal is negative)
IDLE_S = 3.0  # an AMQP stream never ends: a replay stops at the last event, or after this long idle
REPLAY_TIMEOUT_S = 60.0

OnEvent = Callable[[int, int, int, int], None]  # (message id, send time ns, account, amount)


class Events:
    """The account and amount of each event id, drawn in id order from the run's seeded randomness."""

    def __init__(self, rng: Rng, accounts: int) -> None:
        self.rng, self.accounts = rng, accounts
        self.account, self.amount = array("H"), array("i")

    def _draw(self, msg_id: int) -> None:
        while len(self.account) <= msg_id:
            self.account.append(self.rng.randrange(self.accounts))
            cents = self.rng.randrange(1, 10_000)
            self.amount.append(cents if self.rng.random() < 0.6 else -cents)

    def encode(self, msg_id: int, sent_ns: int, size: int) -> bytes:
        self._draw(msg_id)
        head = body.encode(msg_id, sent_ns) + EVENT.pack(self.account[msg_id], self.amount[msg_id])
        return head + b"." * max(0, size - len(head))

    def key(self, msg_id: int) -> bytes:
        self._draw(msg_id)
        return b"acct-%d" % self.account[msg_id]


def decode(value: bytes) -> tuple[int, int, int, int] | None:
    ids = body.decode(value)
    if ids is None or len(value) < body.MIN_SIZE + EVENT.size:
        return None
    account, amount = EVENT.unpack_from(value, body.MIN_SIZE)
    return ids[0], ids[1], account, amount


# -- Kafka ------------------------------------------------------------------------------------------

async def kafka_replay(boot: str, topic: str, partitions: int, on_event: OnEvent,
                       from_ms: int | None = None) -> int:
    """Read the topic from offset 0 (or from the first offset at or after ``from_ms``, by
    ListOffsets with a timestamp: ``offsets_for_times``) up to its end; returns the records read."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=boot, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, i) for i in range(partitions)]
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        await _kafka_seek(consumer, tps, end, from_ms)
        return await _kafka_read(consumer, end, on_event)
    finally:
        await consumer.stop()


async def _kafka_seek(consumer: Any, tps: list[Any], end: dict[Any, int], from_ms: int | None) -> None:
    if from_ms is None:
        await consumer.seek_to_beginning(*tps)
        return
    found = await consumer.offsets_for_times(dict.fromkeys(tps, from_ms))
    for tp in tps:
        hit = found.get(tp)
        consumer.seek(tp, hit.offset if hit is not None else end[tp])


async def _kafka_read(consumer: Any, end: dict[Any, int], on_event: OnEvent) -> int:
    read, deadline = 0, time.monotonic() + REPLAY_TIMEOUT_S
    while time.monotonic() < deadline:
        positions = [await consumer.position(tp) for tp in end]
        if all(pos >= end[tp] for pos, tp in zip(positions, end, strict=True)):
            break
        batches = await consumer.getmany(timeout_ms=200)
        for tp, records in batches.items():
            for r in records:
                if r.offset < end[tp] and (ev := decode(r.value)) is not None:
                    on_event(*ev)
                    read += 1
    return read


# -- AMQP stream queue ------------------------------------------------------------------------------

def stream_offset(from_s: int | None) -> Any:
    """The ``x-stream-offset`` consume argument: "first", or an AMQP timestamp (whole seconds)."""
    if from_s is None:
        return "first"
    return datetime.datetime.fromtimestamp(from_s, tz=datetime.UTC)


async def amqp_replay(url: str, queue: str, last_id: int, on_event: OnEvent, from_s: int | None = None,
                      prefetch: int = 500) -> int:
    """Consume the stream queue from its start (or a timestamp) until event ``last_id`` arrives (the
    last one appended) or nothing comes for ``IDLE_S``; returns the events read."""
    import aio_pika

    conn = await aio_pika.connect(url)
    state = {"read": 0, "at": time.monotonic()}
    done = asyncio.Event()

    async def on_message(msg: Any) -> None:
        ev = decode(msg.body)
        if ev is not None:
            on_event(*ev)
            state["read"] += 1
            if ev[0] >= last_id:
                done.set()
        state["at"] = time.monotonic()
        await msg.ack()

    try:
        channel = await conn.channel()
        await channel.set_qos(prefetch_count=prefetch)  # a stream queue requires a prefetch
        q = await channel.get_queue(queue, ensure=False)
        await q.consume(on_message, arguments={"x-stream-offset": stream_offset(from_s)})
        await _until_done_or_idle(done, state)
    finally:
        with contextlib.suppress(Exception):
            await conn.close()
    return int(state["read"])


async def _until_done_or_idle(done: asyncio.Event, state: dict[str, float]) -> None:
    deadline = time.monotonic() + REPLAY_TIMEOUT_S
    while not done.is_set() and time.monotonic() < deadline and time.monotonic() - state["at"] < IDLE_S:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.1)
