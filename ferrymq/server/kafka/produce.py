"""Produce: the hot path. Batches are validated by header and CRC, checked against the partition's
idempotent-producer state, numbered in place and appended with one write per partition; the response
is held in the commit pipeline until the fsync that covers the append. No record inside a batch is
looked at.
"""

from __future__ import annotations

from ferrymq.core import streams
from ferrymq.core.topics import Topic, TopicRegistry
from ferrymq.protocols.kafka import errors
from ferrymq.protocols.kafka.batch import BatchError, BatchInfo, assign_offsets, validate
from ferrymq.protocols.kafka.produce import PartitionResult, decode_produce, encode_produce_response
from ferrymq.server.commit import CommitPipeline
from ferrymq.server.kafka.connection import KafkaConnection, Slot


class ProduceApi:
    """``topics``: where batches go (and who is told of them); ``commit``: when the reply may leave."""

    def __init__(self, topics: TopicRegistry, commit: CommitPipeline) -> None:
        self.topics = topics
        self.commit = commit

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
                            r.error_code, r.base_offset = errors.KAFKA_STORAGE_ERROR, -1
            slot.reply(encode_produce_response(version, results))

        self.commit.hold(send)

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
            res.error_code, res.error_message = errors.KAFKA_STORAGE_ERROR, str(exc)
            self.commit.note_write_error()
            return
        self._record_producers(producers, infos, base)
        res.base_offset = base
        self.commit.note_append(lg)
        self.topics.appended(topic.spec.name, index)

    @staticmethod
    def _record_producers(producers: streams.ProducerState, infos: list[BatchInfo], base: int) -> None:
        for b in infos:
            producers.record(b.producer_id, b.producer_epoch, b.base_sequence, b.count, base)
            base += b.count
