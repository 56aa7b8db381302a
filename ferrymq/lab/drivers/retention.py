"""Retention and compaction, seen by a real client (aiokafka): a compacted topic (keys updated many
times, some deleted with tombstones) and topics with a time or a size limit whose segments roll
every few hundred milliseconds. A reader at the tail sees every record as written; a late reader
after the run sees what the broker kept. What it shows: retention moves the log's start offset
(whole segments go, oldest first; what is left has no gaps), compaction keeps the latest record
per key at the offset it was written at (the offsets in between are simply gone) and the active
segment is never cleaned; the log start offset, the records kept and the bytes on disk over time.

FerryMQ's retention check and log cleaner run every second in a lab-started broker
(``ferrymq.lab.targets.UPKEEP``); another broker keeps its own intervals (Kafka's defaults are 5 min
and 15 s), and a short run may then show nothing removed."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferrymq.lab import body, kafka
from ferrymq.lab.context import LabContext
from ferrymq.lab.explain import n
from ferrymq.lab.pacing import paced
from ferrymq.lab.recorder import Series

MODES = ("kafka",)
VARIANTS = ("compact", "retention.ms", "retention.bytes")
SAMPLE_S = 0.5
CLEANER_WAIT_S = 2.0  # after the load: a few of the lab broker's 1 s upkeep passes


@dataclass
class Params:
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    rate: float = 300.0  # records per second
    keys: int = 50  # compacted topic: distinct keys
    tombstone_pct: float = 5.0  # compacted topic: share of records that delete their key
    segment_bytes: int = 16_384
    segment_ms: int = 500
    retention_ms: int = 3000
    retention_bytes: int = 65_536
    delete_retention_ms: int = 86_400_000  # tombstones kept (Kafka's default, a day)
    size: int = 128

    def check(self) -> None:
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad or not self.variants:
            raise ValueError(f"variants: some of {', '.join(VARIANTS)} (not {', '.join(bad)})")
        if self.rate <= 0 or self.keys < 1 or not 0 <= self.tombstone_pct < 100:
            raise ValueError("rate > 0, keys >= 1 and tombstone_pct in [0, 100)")


def configs(variant: str, p: Params) -> dict[str, str]:
    roll = {"segment.bytes": str(p.segment_bytes), "segment.ms": str(p.segment_ms)}
    if variant == "compact":
        return {**roll, "cleanup.policy": "compact", "delete.retention.ms": str(p.delete_retention_ms)}
    if variant == "retention.ms":
        return {**roll, "cleanup.policy": "delete", "retention.ms": str(p.retention_ms)}
    return {**roll, "cleanup.policy": "delete", "retention.bytes": str(p.retention_bytes)}


@dataclass
class Record:
    offset: int
    key: bytes | None
    tombstone: bool
    value: bytes | None = None


class Writer:
    """Keyed records with acks=all, the value records in the ledger; tombstones (value None) carry
    no id. ``written`` is the log as the broker acknowledged it: offset, key, tombstone."""

    def __init__(self, series: Series, bootstrap: str, topic: str, p: Params, ctx: LabContext,
                 keyed: bool) -> None:
        self.series, self.bootstrap, self.topic = series, bootstrap, topic
        self.p, self.ctx, self.keyed = p, ctx, keyed
        self.window = asyncio.Semaphore(200)
        self.pending: set[asyncio.Future[Any]] = set()
        self.written: list[Record] = []
        self.client: Any = None

    async def open(self) -> Writer:
        from aiokafka import AIOKafkaProducer

        self.client = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        await self.client.start()
        return self

    async def send(self) -> bool:
        if self.window.locked():
            return False
        await self.window.acquire()
        rng = self.ctx.rng
        key = f"key-{rng.randrange(self.p.keys)}".encode() if self.keyed else None
        tomb = self.keyed and rng.random() * 100 < self.p.tombstone_pct
        msg_id = -1 if tomb else self.series.next_id()
        value = None if tomb else body.encode(msg_id, self.series.now_ns(), self.p.size)
        if not tomb:
            self.series.sent()
        fut = await self.client.send(self.topic, value, key=key, partition=0)
        self.pending.add(fut)
        fut.add_done_callback(lambda f: self._done(f, msg_id, key))
        return True

    def _done(self, fut: asyncio.Future[Any], msg_id: int, key: bytes | None) -> None:
        self.pending.discard(fut)
        self.window.release()
        if fut.cancelled() or fut.exception() is not None:
            self.series.count("publish_failed")
            return
        self.written.append(Record(fut.result().offset, key, msg_id < 0))
        if msg_id >= 0:
            self.series.confirmed(msg_id)

    async def close(self) -> None:
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=30)
        await self.client.stop()


async def read_log(bootstrap: str, topic: str) -> tuple[int, int, list[Record]]:
    """(log start offset, end offset, every record kept): a late reader from the beginning."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tp = TopicPartition(topic, 0)
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await c.start()
    try:
        c.assign([tp])
        start, end = (await c.beginning_offsets([tp]))[tp], (await c.end_offsets([tp]))[tp]
        await c.seek_to_beginning(tp)
        out: list[Record] = []
        while await c.position(tp) < end:
            batch = await c.getmany(tp, timeout_ms=500)
            out += [Record(r.offset, r.key, r.value is None, r.value) for r in batch.get(tp, [])]
        return start, end, out
    finally:
        await c.stop()


async def tail(series: Series, bootstrap: str, topic: str, stop: asyncio.Event) -> None:
    """A reader keeping up with the writer: it sees every record before the cleaner does."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tp = TopicPartition(topic, 0)
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await c.start()
    try:
        c.assign([tp])
        while not stop.is_set():
            for r in (await c.getmany(tp, timeout_ms=200)).get(tp, []):
                ids = body.decode(r.value) if r.value is not None else None
                if ids is not None:
                    series.received(*ids)
    finally:
        await c.stop()


def disk_bytes(ctx: LabContext, topic: str) -> int | None:
    """Bytes of the topic's files, for a broker the lab started (its data directory is known)."""
    if ctx.target.data_dir is None:
        return None
    root = Path(ctx.target.data_dir) / "streams" / topic
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) if root.exists() else 0


async def sample(series: Series, ctx: LabContext, topic: str, variant: str, stop: asyncio.Event) -> None:
    """Gauges over time: the log start offset, the records kept (a full read for the compacted
    topic, whose offsets have gaps) and the bytes on disk."""
    bootstrap = ctx.target.kafka_bootstrap
    while not stop.is_set():
        with contextlib.suppress(Exception):
            start, end, kept = await read_log(bootstrap, topic)
            series.gauge("log_start_offset", start)
            series.gauge("records_in_log", len(kept) if variant == "compact" else end - start)
            size = disk_bytes(ctx, topic)
            if size is not None:
                series.gauge("bytes_on_disk", size)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_S)


def describe(records: list[Record]) -> dict[str, Any]:
    offsets = [r.offset for r in records]
    span = (max(offsets) - min(offsets) + 1) if offsets else 0
    return {"records": len(records), "tombstones": sum(r.tombstone for r in records),
            "distinct keys": len({r.key for r in records if r.key is not None}),
            "first offset": min(offsets, default=None), "last offset": max(offsets, default=None),
            "offsets missing in between": span - len(records)}


def latest_kept(written: list[Record], kept: list[Record]) -> tuple[int, int]:
    """(keys whose last written record is still in the log at its offset, older records kept)."""
    last: dict[bytes | None, int] = {}
    for r in sorted(written, key=lambda r: r.offset):
        last[r.key] = r.offset
    offsets = {r.offset for r in kept}
    keys = sum(1 for k, o in last.items() if k is not None and o in offsets)
    return keys, sum(1 for r in kept if last.get(r.key) != r.offset)


async def run(ctx: LabContext, p: Params) -> None:
    seconds = ctx.duration / len(p.variants)
    ctx.check_faults("retention")
    for variant in p.variants:
        series = ctx.series(variant)
        topic = ctx.name(f"log-{variant.replace('.', '-')}")
        await kafka.create_topic(ctx.target.kafka_bootstrap, topic, 1, configs(variant, p))
        writer = await Writer(series, ctx.target.kafka_bootstrap, topic, p, ctx, variant == "compact").open()
        stop = asyncio.Event()
        series.begin()
        tasks = [asyncio.create_task(tail(series, ctx.target.kafka_bootstrap, topic, stop)),
                 asyncio.create_task(sample(series, ctx, topic, variant, stop))]
        async with ctx.faults_on(series, seconds):
            await paced(p.rate, seconds, writer.send)
            await writer.close()
            await asyncio.sleep(CLEANER_WAIT_S)  # the cleaner's passes; the tail reader catches up
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        start, end, kept = await read_log(ctx.target.kafka_bootstrap, topic)
        _report(series, ctx, topic, variant, p, writer.written, (start, end, kept))
        series.end()


def _report(series: Series, ctx: LabContext, topic: str, variant: str, p: Params, written: list[Record],
            log: tuple[int, int, list[Record]]) -> None:
    start, end, kept = log
    before, after = describe(written), describe(kept)
    size = disk_bytes(ctx, topic)
    peak = max((b.gauges.get("bytes_on_disk", 0) for b in series.buckets.values()), default=0)
    series.table("the log as written and as kept", [
        {"log": "as written (acknowledged)", **before, "log start offset": 0, "bytes on disk": peak},
        {"log": "kept (a late reader, after the run)", **after, "log start offset": start,
         "bytes on disk": size}])
    keys, older = latest_kept(written, kept)
    series.figure("config", configs(variant, p))
    for name, v in (("written", before), ("kept", after)):
        for k in ("records", "tombstones", "distinct keys", "offsets missing in between", "first offset",
                  "last offset"):
            series.figure(f"{k.replace(' ', '_')}_{name}", v[k])
    series.figure("log_start_offset", start)
    series.figure("end_offset", end)
    series.figure("latest_per_key_kept", keys)
    series.figure("older_records_kept", older)
    series.figure("bytes_on_disk_peak", peak)
    series.figure("bytes_on_disk_after", size)


def _compact_sentence(s: dict[str, Any]) -> str:
    f = s["figures"]
    return (f"{s['name']}: {n(f['records_written'])} records written for {n(f['distinct_keys_written'])} "
            f"keys ({n(f['tombstones_written'])} tombstones); after the cleaner the log holds "
            f"{n(f['records_kept'])} of them, offsets {n(f['first_offset_kept'])} to "
            f"{n(f['last_offset_kept'])} "
            f"with {n(f['offsets_missing_in_between_kept'])} missing in between: the latest record of "
            f"{n(f['latest_per_key_kept'])} of {n(f['distinct_keys_written'])} keys at the offset it was "
            f"written at, {n(f['tombstones_kept'])} of them tombstones (kept for delete.retention.ms), and "
            f"{n(f['older_records_kept'])} older records still in segments not yet cleaned (the active "
            "segment never is).")


def _retention_sentence(s: dict[str, Any]) -> str:
    f = s["figures"]
    limit = ", ".join(f"{k}={v}" for k, v in f["config"].items() if k.startswith("retention"))
    return (f"{s['name']} ({limit}): {n(f['records_written'])} records written at offsets 0 to "
            f"{n(f['end_offset'] - 1)}; the log start offset moved to {n(f['log_start_offset'])}: the "
            f"oldest records went in whole segments and {n(f['records_kept'])} are kept, "
            f"{n(f['offsets_missing_in_between_kept'])} offsets missing in between; bytes on disk "
            f"peaked at {n(f['bytes_on_disk_peak'])} and end at {n(f['bytes_on_disk_after'])}.")


def explain(run: dict[str, Any]) -> list[str]:
    return [_compact_sentence(s) if s["variant"] == "compact" else _retention_sentence(s)
            for s in run["series"]]
