"""A Kafka consumer-group member in a process of its own (aiokafka), so a fault can kill -9 it: a
member that vanishes without LeaveGroup, which the coordinator only notices when its session times
out. SIGTERM is the clean leave: the consumer stops and sends LeaveGroup.

It speaks the AMQP worker's protocol (``ferrymq.lab.worker``: 17-byte records on stdout; the lab's
``Worker`` handle starts it with ``module="ferrymq.lab.kafka_worker"``) plus one record kind,
ASSIGNED: the partitions the member holds after a rebalance, as a bit mask, and the count of
assignments it has seen; and BATCH, per partition of each poll: the partition and how many of its
records came (what a partition's pause during a rebalance is measured from). ``--commit`` says when
offsets are committed: ``after`` processing a batch (at-least-once: a crash re-reads the batch) or
``before`` it (at-most-once: a crash skips what was left of it)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any

from ferrymq.lab import body
from ferrymq.lab.effects import EffectStore
from ferrymq.lab.worker import DEDUPED, PROCESSED, _Out

ASSIGNED, BATCH = 8, 9  # beyond the AMQP worker's kinds
POLL_MS = 100


def _args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m ferrymq.lab.kafka_worker")
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--commit", choices=("after", "before"), default="after")
    ap.add_argument("--work-ms", type=float, default=0.0)
    ap.add_argument("--max-records", type=int, default=50, help="records per poll (a batch)")
    ap.add_argument("--session-ms", type=int, default=6000)
    ap.add_argument("--effect-at", choices=("end", "mid"), default="end")
    ap.add_argument("--dedupe", default="", help="an idempotent consumer: processed ids in this SQLite file")
    return ap.parse_args(argv)


def _listener(out: _Out) -> Any:
    from aiokafka import ConsumerRebalanceListener

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        assignments = 0

        async def on_partitions_revoked(self, revoked: set[Any]) -> None:
            return None

        async def on_partitions_assigned(self, assigned: set[Any]) -> None:
            Listener.assignments += 1
            out.put(ASSIGNED, sum(1 << tp.partition for tp in assigned), Listener.assignments)
            out.flush()

    return Listener()


async def _handle(r: Any, args: argparse.Namespace, out: _Out, store: EffectStore | None) -> None:
    ids = body.decode(r.value)
    work = args.work_ms / 1000.0
    after = work / 2.0 if args.effect_at == "mid" else 0.0
    if work - after:
        await asyncio.sleep(work - after)
    if ids is not None:
        kind = DEDUPED if store is not None and not store.apply(ids[0]) else PROCESSED
        out.put(kind, ids[0], ids[1])
        out.flush()
    if after:
        await asyncio.sleep(after)


async def _consume(consumer: Any, args: argparse.Namespace, out: _Out, stop: asyncio.Event) -> None:
    from aiokafka.errors import KafkaError

    store = EffectStore(args.dedupe) if args.dedupe else None
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=args.max_records)
        records = [r for recs in batches.values() for r in recs]
        if not records:
            continue
        if args.commit == "before":
            with contextlib.suppress(KafkaError):
                await consumer.commit()
        for tp, recs in batches.items():
            out.put(BATCH, tp.partition, len(recs))
        for r in records:
            await _handle(r, args, out, store)
        if args.commit == "after":
            with contextlib.suppress(KafkaError):  # a rebalance in between: the batch is read again
                await consumer.commit()


async def _main(args: argparse.Namespace) -> None:
    from aiokafka import AIOKafkaConsumer

    out, stop = _Out(), asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    consumer = AIOKafkaConsumer(bootstrap_servers=args.bootstrap, group_id=args.group,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                session_timeout_ms=args.session_ms, heartbeat_interval_ms=300,
                                max_poll_interval_ms=30_000)
    consumer.subscribe([args.topic], listener=_listener(out))
    await consumer.start()
    task = asyncio.create_task(_consume(consumer, args, out, stop))
    await stop.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await consumer.stop()  # LeaveGroup: the others rebalance at once, no session timeout


def main(argv: list[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(_args(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    main()
