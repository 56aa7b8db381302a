"""Produce and Fetch applied to the core's topics: the part of each request that is neither wire
nor event loop, shared by the server's Kafka front end and the simulator.

Produce, per partition: the topic is looked up (or auto-created), each batch is validated (header,
CRC, size), checked against the partition's idempotent-producer state (and a transactional one
against its producer's open transaction), numbered in place and appended with one write; the commit
pipeline is told (its reply must wait for the fsync) and every reader is told
(``TopicRegistry.appended``). Fetch: whole stored batches from the offset asked, within the
request's byte budget; read_committed stops at the last stable offset and lists the aborted
transactions. No record inside a batch is looked at, on either path, but one: a compacted topic
refuses a record without a key, as Kafka does.
"""

from __future__ import annotations

from typing import Any, Protocol

from ferrymq import limits
from ferrymq.core import streams
from ferrymq.core.streams import ProducerState
from ferrymq.core.topics import Topic, TopicRegistry
from ferrymq.protocols.kafka import errors
from ferrymq.protocols.kafka.batch import (
    ATTR_CONTROL,
    ATTR_TRANSACTIONAL,
    BatchError,
    BatchInfo,
    assign_offsets,
    batches_below,
    producer_run,
    validate,
)
from ferrymq.protocols.kafka.fetch import FetchRequest, PartitionData
from ferrymq.protocols.kafka.produce import PartitionResult, ProduceRequest
from ferrymq.protocols.kafka.records import decode_batches

READ_COMMITTED = 1  # Fetch and ListOffsets isolation_level
PRODUCER_STATE_BATCHES = 10_000  # batch headers read back per partition at start-up (a few ms)
ProduceResults = list[tuple[str, list[PartitionResult]]]
FetchResults = list[tuple[str, list[PartitionData]]]


class TxnGate(Protocol):
    """The transaction coordinator as a produce sees it (core.txns.TxnCoordinator)."""

    def check_produce(self, pid: int, epoch: int, partition: tuple[str, int]) -> int: ...


class AppendSink(Protocol):
    """The commit pipeline as an append sees it (server.commit.CommitPipeline, sim.commit.SimCommit)."""

    def note_append(self, lg: Any) -> None: ...

    def note_write_error(self) -> None: ...


def producers_from(lg: Any) -> ProducerState:
    """Idempotent-producer state rebuilt from the newest batch headers, as Kafka rebuilds it from the
    log: a retry that crosses a broker restart is still recognised as a duplicate."""
    state = ProducerState()
    for head in lg.tail_headers(PRODUCER_STATE_BATCHES):
        state.record(*producer_run(head))
    return state


# --- produce -------------------------------------------------------------------------------------


def produce(topics: TopicRegistry, req: ProduceRequest, sink: AppendSink,
            txns: TxnGate | None = None) -> ProduceResults:
    """Append every partition's batches of a decoded Produce request; one result per partition.
    Transactional batches are checked by ``txns`` (refused when there is none)."""
    results: ProduceResults = []
    bad_acks = req.acks not in (0, 1, -1)
    for name, parts in req.topics:
        topic = topics.get(name) or topics.auto_create(name)
        out = []
        for index, records in parts:
            res = PartitionResult(index)
            if bad_acks:
                res.error_code = errors.INVALID_REQUIRED_ACKS
            elif name in topics.owned:  # Kafka: clients never append to an internal topic
                res.error_code = errors.INVALID_TOPIC_EXCEPTION
                res.error_message = f"Cannot append to internal topic {name}"
            elif topic is None or not 0 <= index < topic.spec.partitions:
                res.error_code = errors.UNKNOWN_TOPIC_OR_PARTITION
            elif records is None:
                res.error_code = errors.CORRUPT_MESSAGE
            else:
                _append(topics, topic, index, records, res, sink, txns)
            out.append(res)
        results.append((name, out))
    return results


def fail_unstored(results: ProduceResults) -> None:
    """The fsync covering these appends failed: no partition may be answered as stored."""
    for _, parts in results:
        for r in parts:
            if r.error_code == errors.NONE:
                r.error_code, r.base_offset = errors.KAFKA_STORAGE_ERROR, -1


def _append(topics: TopicRegistry, topic: Topic, index: int, records: bytearray, res: PartitionResult,
            sink: AppendSink, txns: TxnGate | None) -> None:
    lg = topic.logs[index]
    res.log_start_offset = lg.start_offset
    segment_bytes = topic.spec.int_config("segment.bytes")
    if len(records) > segment_bytes:  # Kafka's RecordBatchTooLargeException
        res.error_code = errors.RECORD_LIST_TOO_LARGE
        res.error_message = (f"Message batch size is {len(records)} bytes in append to partition "
                             f"{topic.spec.name}-{index}, which exceeds the maximum configured segment "
                             f"size of {segment_bytes}.")
        return
    try:
        infos = validate(records, topic.spec.int_config("max.message.bytes"))
    except BatchError as exc:
        res.error_code, res.error_message = exc.code, str(exc)
        return
    if "compact" in topic.spec.config("cleanup.policy"):
        keyless = _keyless(records)
        if keyless:
            _refuse_records(res, keyless, "Compacted topic cannot accept message without key in topic "
                            f"partition {topic.spec.name}-{index}")
            return
    producers = topic.producers[index]
    for b in infos:
        if b.attributes & (ATTR_TRANSACTIONAL | ATTR_CONTROL):
            res.error_code = _txn_verdict(txns, b, (topic.spec.name, index))
            if res.error_code:
                return
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
        res.error_code, res.error_message = errors.KAFKA_STORAGE_ERROR, str(exc)
        sink.note_write_error()
        return
    _record_producers(producers, infos, base)
    res.base_offset = base
    sink.note_append(lg)
    topics.appended(topic.spec.name, index)


def _keyless(records: bytearray) -> list[int]:
    """The index in its batch of every record without a key: the one per-record look a produce
    takes, and only into a compacted topic (Kafka's LogValidator reads every record's key there too).
    A client's batch carries base offset 0, so a record's offset here is its index."""
    return [offset for offset, _, key, _, _ in decode_batches(bytes(records)) if key is None]


def _refuse_records(res: PartitionResult, indexes: list[int], why: str) -> None:
    """Kafka 2.4+'s answer (KIP-467): INVALID_RECORD, each guilty record named, so a client fails
    those with the error and the rest of the batch as refused for another record's sake."""
    res.error_code = errors.INVALID_RECORD  # CORRUPT_MESSAGE before Kafka 2.4
    res.record_errors = [(i, why) for i in indexes]
    shown = ", ".join(f"RecordError(batchIndex={i}, message='{why}')" for i in indexes[:3])
    res.error_message = (f"One or more records have been rejected due to {len(indexes)} record errors in "
                         f"total, and only showing the first three errors at most: [{shown}]")


def _txn_verdict(txns: TxnGate | None, b: BatchInfo, partition: tuple[str, int]) -> int:
    """Control batches are the broker's own; a transactional one needs its producer's open
    transaction, at the current epoch."""
    if b.attributes & ATTR_CONTROL:
        return errors.INVALID_RECORD
    if txns is None:
        return errors.INVALID_TXN_STATE
    return txns.check_produce(b.producer_id, b.producer_epoch, partition)


def _record_producers(producers: ProducerState, infos: list[BatchInfo], base: int) -> None:
    for b in infos:
        producers.record(b.producer_id, b.producer_epoch, b.base_sequence, b.count, base)
        if b.attributes & ATTR_TRANSACTIONAL:
            producers.txns.note_batch(b.producer_id, base)
        base += b.count


# --- fetch ---------------------------------------------------------------------------------------


def gather(topics: TopicRegistry, req: FetchRequest) -> tuple[FetchResults, int, bool]:
    """(per-partition data, bytes gathered, whether a partition failed): what a Fetch would answer
    now; the caller decides whether that is enough or the fetch waits (long polling)."""
    budget = req.max_bytes if req.max_bytes > 0 else limits.KAFKA_REQUEST_MAX_BYTES
    total, failed = 0, False
    out: FetchResults = []
    for name, parts in req.topics:
        topic = topics.get(name)
        pdata = []
        for p in parts:
            d = PartitionData(p.partition)
            if topic is None or not 0 <= p.partition < topic.spec.partitions:
                d.error_code, failed = errors.UNKNOWN_TOPIC_OR_PARTITION, True
                pdata.append(d)
                continue
            lg = topic.logs[p.partition]
            d.high_watermark, d.log_start_offset = lg.next_offset, lg.start_offset
            txns = topic.producers[p.partition].txns
            d.last_stable_offset = stable = txns.stable_offset(lg.next_offset)
            upto = stable if req.isolation_level == READ_COMMITTED else lg.next_offset
            if not lg.start_offset <= p.offset <= lg.next_offset:
                d.error_code, failed = errors.OFFSET_OUT_OF_RANGE, True
            elif p.offset < upto and budget > total:
                data = _read_within(lg, p.offset, min(p.max_bytes, budget - total), first=total == 0)
                if upto < lg.next_offset:
                    data = batches_below(data, upto)
                if data:
                    d.records.append(data)
                    total += len(data)
            if req.isolation_level == READ_COMMITTED:
                d.aborted = txns.aborted_between(p.offset, upto) if txns.aborted else []
            pdata.append(d)
        out.append((name, pdata))
    return out, total, failed


def _read_within(lg: Any, offset: int, limit: int, first: bool) -> bytes:
    """Whole batches within ``limit`` (the partition's max bytes and what is left of the request's).
    Kafka's one exception (KIP-74): the first batch of the first non-empty partition is returned
    even when larger, so a consumer always progresses; any other partition whose next batch does not
    fit is answered empty this time (it leads a later fetch)."""
    data = lg.read(offset, max(limit, 1))
    return data if first or len(data) <= limit else b""
