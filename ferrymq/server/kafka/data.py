"""Produce and Fetch: the hot path. Batches are validated by header and CRC, numbered in place and
appended with one write per partition; fetches return whole stored batches as read from the segment
files. No record inside a batch is looked at.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ferrymq import limits
from ferrymq.core import streams
from ferrymq.protocols.kafka import errors, versions
from ferrymq.protocols.kafka.batch import BatchError, BatchInfo, assign_offsets, validate
from ferrymq.protocols.kafka.fetch import FetchRequest, PartitionData, decode_fetch, encode_fetch_response
from ferrymq.protocols.kafka.produce import PartitionResult, decode_produce, encode_produce_response
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.topics import Topic

if TYPE_CHECKING:
    from ferrymq.server.kafka.server import Handler, KafkaServer

KAFKA_STORAGE_ERROR = 56


class FetchWaiter:
    """A fetch parked until ``min_bytes`` are there or ``max_wait_ms`` has passed."""

    __slots__ = ("conn", "done", "keys", "req", "slot", "timer")

    def __init__(self, conn: KafkaConnection, slot: Slot, req: FetchRequest) -> None:
        self.conn, self.slot, self.req = conn, slot, req
        self.keys = [(name, p.partition) for name, parts in req.topics for p in parts]
        self.timer: asyncio.TimerHandle | None = None
        self.done = False


class DataApis:
    def __init__(self, server: KafkaServer) -> None:
        self.server = server
        self.topics = server.topics
        self.waiters: dict[tuple[str, int], set[FetchWaiter]] = {}

    def handlers(self) -> dict[int, Handler]:
        return {versions.PRODUCE: self.produce, versions.FETCH: self.fetch}  # type: ignore[dict-item]

    # --- Produce -------------------------------------------------------------------------------

    def produce(self, conn: KafkaConnection, slot: Slot, ctx: tuple[object, object]) -> None:
        req = decode_produce(ctx[1], slot.version)  # type: ignore[arg-type]
        results: list[tuple[str, list[PartitionResult]]] = []
        bad_acks = req.acks not in (0, 1, -1)
        for name, parts in req.topics:
            topic = self.topics.get(name) or self.topics.auto_create(name)
            out = []
            for index, records in parts:
                res = PartitionResult(index)
                if bad_acks:
                    res.error_code = errors.INVALID_REQUIRED_ACKS
                elif topic is None or not 0 <= index < topic.spec.partitions:
                    res.error_code = errors.UNKNOWN_TOPIC_OR_PARTITION
                elif records is None:
                    res.error_code = errors.CORRUPT_MESSAGE
                else:
                    self._append(topic, index, records, res)
                out.append(res)
            results.append((name, out))
        if req.acks == 0:
            slot.drop()
            return
        version = slot.version

        def send(stored: bool) -> None:
            if not stored:
                for _, parts in results:
                    for r in parts:
                        if r.error_code == errors.NONE:
                            r.error_code, r.base_offset = KAFKA_STORAGE_ERROR, -1
            slot.reply(encode_produce_response(version, results))

        self.server.hold(send)

    def _append(self, topic: Topic, index: int, records: bytearray, res: PartitionResult) -> None:
        lg = topic.logs[index]
        res.log_start_offset = lg.start_offset
        try:
            infos = validate(records, topic.spec.int_config("max.message.bytes"))
        except BatchError as exc:
            res.error_code, res.error_message = exc.code, str(exc)
            return
        producers = topic.producers[index]
        for b in infos:
            verdict, dup_offset = producers.check(b.producer_id, b.producer_epoch, b.base_sequence, b.count)
            if verdict == streams.DUPLICATE_SEQUENCE_NUMBER:
                res.base_offset = dup_offset  # Kafka answers a duplicate with the original offset
                return
            if verdict != streams.ACCEPT:
                res.error_code = verdict
                return
        base = lg.next_offset
        assign_offsets(records, infos, base)
        try:
            lg.append(records, [(b.start, b.count, b.max_timestamp) for b in infos])
        except OSError as exc:
            res.error_code, res.error_message = KAFKA_STORAGE_ERROR, str(exc)
            self.server.commit.note_write_error()
            return
        self._record_producers(producers, infos, base)
        res.base_offset = base
        self.server.note_append(lg)
        self._wake(topic.spec.name, index)

    @staticmethod
    def _record_producers(producers: streams.ProducerState, infos: list[BatchInfo], base: int) -> None:
        for b in infos:
            producers.record(b.producer_id, b.producer_epoch, b.base_sequence, b.count, base)
            base += b.count

    # --- Fetch ---------------------------------------------------------------------------------

    def fetch(self, conn: KafkaConnection, slot: Slot, ctx: tuple[object, object]) -> None:
        req = decode_fetch(ctx[1], slot.version)  # type: ignore[arg-type]
        w = FetchWaiter(conn, slot, req)
        if self.try_complete(w, force=req.max_wait_ms <= 0):
            return
        for key in w.keys:
            self.waiters.setdefault(key, set()).add(w)
        wait_s = min(req.max_wait_ms, limits.KAFKA_FETCH_MAX_WAIT_MS) / 1000
        w.timer = self.server.loop.call_later(wait_s, self._expire, w)

    def _expire(self, w: FetchWaiter) -> None:
        w.timer = None
        self.try_complete(w, force=True)
        self.server.want_flush()

    def try_complete(self, w: FetchWaiter, force: bool = False) -> bool:
        if w.done or w.conn.closed:
            self._unpark(w)
            return True
        topics, size, failed = self._gather(w.req)
        if not (force or failed or size >= max(w.req.min_bytes, 1)):
            return False
        self._unpark(w)
        w.slot.reply(encode_fetch_response(w.slot.version, topics))
        return True

    def _unpark(self, w: FetchWaiter) -> None:
        w.done = True
        if w.timer is not None:
            w.timer.cancel()
            w.timer = None
        for key in w.keys:
            s = self.waiters.get(key)
            if s is not None:
                s.discard(w)
                if not s:
                    del self.waiters[key]

    def _gather(self, req: FetchRequest) -> tuple[list[tuple[str, list[PartitionData]]], int, bool]:
        budget = req.max_bytes if req.max_bytes > 0 else limits.KAFKA_REQUEST_MAX_BYTES
        total, failed = 0, False
        out: list[tuple[str, list[PartitionData]]] = []
        for name, parts in req.topics:
            topic = self.topics.get(name)
            pdata = []
            for p in parts:
                d = PartitionData(p.partition)
                if topic is None or not 0 <= p.partition < topic.spec.partitions:
                    d.error_code, failed = errors.UNKNOWN_TOPIC_OR_PARTITION, True
                    pdata.append(d)
                    continue
                lg = topic.logs[p.partition]
                d.high_watermark, d.log_start_offset = lg.next_offset, lg.start_offset
                if not lg.start_offset <= p.offset <= lg.next_offset:
                    d.error_code, failed = errors.OFFSET_OUT_OF_RANGE, True
                elif p.offset < lg.next_offset and (budget > total or total == 0):
                    limit = min(p.max_bytes, budget - total) if total else p.max_bytes
                    data = lg.read(p.offset, max(limit, 1))
                    if data:
                        d.records.append(data)
                        total += len(data)
                pdata.append(d)
            out.append((name, pdata))
        return out, total, failed

    def _wake(self, name: str, partition: int) -> None:
        waiting = self.waiters.get((name, partition))
        if waiting:
            self.server.woken.update(waiting)
        for listener in self.server.append_listeners:  # AMQP stream queues read the same logs
            listener(name, partition)

    def wake(self, name: str, partition: int) -> None:
        """Records were appended by another front end (AMQP): parked fetches may answer now."""
        self._wake(name, partition)
        self.server.want_flush()

    def forget(self, conn: KafkaConnection) -> None:
        for s in list(self.waiters.values()):
            for w in [w for w in s if w.conn is conn]:
                self._unpark(w)
