"""Event sourcing: account deposits and withdrawals appended to a stream, keyed by account, then the
state rebuilt by replaying the stream — from its first event, and from a timestamp. Log mode: a
Kafka topic (ListOffsets by time for the timestamp); queue mode: an AMQP stream queue
(``x-queue-type: stream``, consumed with ``x-stream-offset`` "first" or a timestamp).

The producer keeps its own balances from what the broker confirmed; the rebuilt balances must equal
them exactly (nothing lost, nothing applied twice). Appends pause across a whole-second boundary,
the timestamp mark, so which events lie after it is known exactly: the replay from the mark must
return those and no others (an AMQP timestamp has whole seconds, hence the boundary)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ferrymq.clock import SystemClock
from ferrymq.lab import amqp, kafka
from ferrymq.lab.context import LabContext
from ferrymq.lab.drivers import common
from ferrymq.lab.drivers.ledger_events import Events, amqp_replay, kafka_replay
from ferrymq.lab.drivers.watch import lag_gauge
from ferrymq.lab.explain import n
from ferrymq.lab.pacing import paced
from ferrymq.lab.recorder import CONFIRMED_BIT, Series

MODES = ("amqp", "kafka")
APPEND_SHARE = 0.4  # of the run, for each of the two append phases (the rest: the replays)
MARK_MARGIN_S = 0.3  # quiet time on each side of the timestamp mark


@dataclass
class Params:
    rate: float = 500.0  # events appended per second
    accounts: int = 100
    size: int = 128
    partitions: int = 4  # log mode

    def check(self) -> None:
        if self.rate <= 0 or not 1 <= self.accounts <= 65535 or self.partitions < 1 or self.size < 26:
            raise ValueError("rate > 0, accounts in 1..65535, partitions >= 1, size >= 26 bytes")


class _AmqpEvents(amqp.Producer):
    events: Events

    def message(self, msg_id: int) -> Any:
        m = super().message(msg_id)
        m.body = self.events.encode(msg_id, self.series.now_ns(), self.size)
        return m


class _KafkaEvents(kafka.Producer):
    events: Events

    def value(self, msg_id: int) -> bytes:
        return self.events.encode(msg_id, self.series.now_ns(), self.size)


class Stream:
    """The stream in the target's model: where events are appended and how it is replayed."""

    def __init__(self, ctx: LabContext, p: Params, series: Series, events: Events) -> None:
        self.ctx, self.p, self.series, self.events = ctx, p, series, events
        self.log = ctx.target.mode == "kafka"
        self.name = ctx.name("accounts")

    async def open(self) -> Any:
        t = self.ctx.target
        if self.log:
            await kafka.create_topic(t.kafka_bootstrap, self.name, self.p.partitions)
            producer: Any = _KafkaEvents(self.series, t.kafka_bootstrap, self.name, size=self.p.size,
                                         key=self.events.key)
        else:
            await common.declare_queue(t.amqp_url, self.name, {"x-queue-type": "stream"})
            producer = _AmqpEvents(self.series, t.amqp_url, self.name, size=self.p.size)
        producer.events = self.events
        return await producer.open()

    async def replay(self, on_event: Any, last_id: int, from_s: int | None = None) -> int:
        t = self.ctx.target
        if self.log:
            return await kafka_replay(t.kafka_bootstrap, self.name, self.p.partitions, on_event,
                                      None if from_s is None else from_s * 1000)
        return await amqp_replay(t.amqp_url, self.name, last_id, on_event, from_s)

    async def close(self) -> None:
        if not self.log:
            await common.delete_queues(self.ctx.target.amqp_url, [self.name])


def balances(series: Series, events: Events) -> Counter[int]:
    """The producer's own state: every event the broker confirmed, applied once."""
    out: Counter[int] = Counter()
    for msg_id, mark in enumerate(memoryview(series.ledger.marks)[: series.ledger.sent]):
        if mark & CONFIRMED_BIT:
            out[events.account[msg_id]] += events.amount[msg_id]
    return out


async def _mark(clock: SystemClock) -> int:
    """Wait past the next whole second (plus a margin) and return it: the timestamp mark."""
    mark = clock.now_ms() // 1000 + 1
    if mark * 1000 - clock.now_ms() < MARK_MARGIN_S * 1000:
        mark += 1
    await asyncio.sleep((mark * 1000 - clock.now_ms()) / 1000.0 + MARK_MARGIN_S)
    return mark


async def _append(ctx: LabContext, p: Params, series: Series, producer: Any) -> tuple[int, int]:
    """Two append phases around the mark; returns (the mark in seconds, the first id after it)."""
    seconds = ctx.duration * APPEND_SHARE
    series.event("phase", "append")
    await paced(p.rate, seconds, producer.send)
    if producer.pending:
        await asyncio.wait(set(producer.pending), timeout=30)
    mark = await _mark(SystemClock())
    first_after = series.ledger.sent
    series.event("phase", f"timestamp mark {time.strftime('%H:%M:%S', time.gmtime(mark))} UTC")
    await paced(p.rate, seconds, producer.send)
    await producer.close()
    return mark, first_after


async def run(ctx: LabContext, p: Params) -> None:
    ctx.check_faults("event-sourcing")
    events = Events(ctx.rng, p.accounts)
    series = ctx.series("events")
    stream = Stream(ctx, p, series, events)
    producer = await stream.open()
    series.begin()
    async with lag_gauge(series):  # here: events appended and not yet replayed by the rebuild
        async with ctx.faults_on(series):
            mark, first_after = await _append(ctx, p, series, producer)
        expected = balances(series, events)
        last_id = max((i for i, m in enumerate(series.ledger.marks[: series.ledger.sent])
                       if m & CONFIRMED_BIT), default=-1)
        await _rebuild_from_start(stream, series, expected, last_id)
        await _rebuild_from_mark(stream, series, mark, first_after, last_id)
    series.end()
    await stream.close()


async def _rebuild_from_start(stream: Stream, series: Series, expected: Counter[int], last_id: int) -> None:
    rebuilt: Counter[int] = Counter()

    def apply(msg_id: int, sent_ns: int, account: int, amount: int) -> None:
        series.received(msg_id, sent_ns)
        rebuilt[account] += amount

    series.event("phase", "rebuild from offset 0")
    t0 = time.monotonic()
    read = await stream.replay(apply, last_id)
    took = time.monotonic() - t0
    differ = [a for a in set(expected) | set(rebuilt) if expected[a] != rebuilt[a]]
    series.figure("rebuild_events", read)
    series.figure("rebuild_s", round(took, 3))
    series.figure("rebuild_per_s", round(read / took, 1) if took else 0.0)
    series.figure("accounts", len(expected))
    series.figure("accounts_differing", len(differ))
    series.figure("state_equal", not differ)


async def _rebuild_from_mark(stream: Stream, series: Series, mark: int, first_after: int,
                             last_id: int) -> None:
    marks = series.ledger.marks
    expected = {i for i in range(first_after, series.ledger.sent) if marks[i] & CONFIRMED_BIT}
    seen: set[int] = set()

    def note(msg_id: int, sent_ns: int, account: int, amount: int) -> None:
        seen.add(msg_id)

    series.event("phase", "rebuild from the timestamp mark")
    t0 = time.monotonic()
    read = await stream.replay(note, last_id, mark)
    series.figure("from_mark_s", round(time.monotonic() - t0, 3))
    series.figure("from_mark_expected", len(expected))
    series.figure("from_mark_replayed", read)
    series.figure("from_mark_missing", len(expected - seen))
    series.figure("from_mark_before_mark", len(seen - expected))


def explain(run: dict[str, Any]) -> list[str]:
    out = []
    for s in run["series"]:
        f = s["figures"]
        out.append(f"{s['name']}: rebuilding {n(f['accounts'])} account balances by replaying "
                   f"{n(f['rebuild_events'])} events from the start took {n(f['rebuild_s'])} s "
                   f"({n(f['rebuild_per_s'])} events/s); the rebuilt state "
                   + ("equals the producer's own balances to the cent." if f["state_equal"] else
                      f"DIFFERS from the producer's own balances on {n(f['accounts_differing'])} accounts."))
        out.append(f"{s['name']}: replaying from the timestamp mark returned {n(f['from_mark_replayed'])} "
                   f"events for {n(f['from_mark_expected'])} appended after it ({n(f['from_mark_missing'])} "
                   f"missing, {n(f['from_mark_before_mark'])} from before the mark) in "
                   f"{n(f['from_mark_s'])} s.")
    return out
