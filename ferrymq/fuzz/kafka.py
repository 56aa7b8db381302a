"""Kafka targets: request framing and headers, Produce (with the record batches it carries), Fetch,
the records inside a batch, and every other request body (decoded by kio).

The protocol's own errors: KafkaProtocolError (the request cannot be trusted: its connection
closes, including UnsupportedVersion) and, for a produced record set, BatchError (the partition
answers CORRUPT_MESSAGE, MESSAGE_TOO_LARGE or UNSUPPORTED_FOR_MESSAGE_FORMAT). The records target
fixes each batch's CRC first, as a client that means harm would: the broker then stores the batch,
and its records are read again when an AMQP consumer or a ListOffsets by time reads the stream.
"""

from __future__ import annotations

import io
import struct
from functools import cache
from typing import Any

import crc32c
from kio.index import load_request_schema
from kio.serial import entity_writer

from ferrymq import limits
from ferrymq.fuzz.target import Target
from ferrymq.protocols.kafka import batch, versions
from ferrymq.protocols.kafka.batch import BatchError
from ferrymq.protocols.kafka.entities import build, decode_request
from ferrymq.protocols.kafka.errors import KafkaProtocolError
from ferrymq.protocols.kafka.fetch import decode_fetch
from ferrymq.protocols.kafka.framing import FrameBuffer
from ferrymq.protocols.kafka.header import RequestHeader, parse_header
from ferrymq.protocols.kafka.primitives import I16, I32, Reader, nullable_string
from ferrymq.protocols.kafka.produce import decode_produce
from ferrymq.protocols.kafka.records import decode_batches, encode_batch
from ferrymq.sim.kafka_wire import fetch_request, produce_request

_FRAME_MAX_BYTES = 1 << 20  # the fuzzer's inputs are far smaller; the server's bound is 100 MiB
_CRC = struct.Struct(">I")


def _frame(api_key: int, version: int, body: bytes, corr: int = 7) -> bytes:
    head = I16.pack(api_key) + I16.pack(version) + I32.pack(corr) + nullable_string("fuzz")
    if versions.flexible(api_key, version):
        head += b"\x00"  # no tagged fields
    return I32.pack(len(head) + len(body)) + head + body


def _header(data: bytes) -> tuple[RequestHeader, Reader] | None:
    try:
        return parse_header(data, versions.flexible)
    except KafkaProtocolError:
        return None


def header_one_input(data: bytes) -> None:
    """A byte stream of size-prefixed requests: framing, then each request header."""
    frames = FrameBuffer(_FRAME_MAX_BYTES)
    try:
        frames.receive_data(data)
        for frame in frames.frames():
            parse_header(frame, versions.flexible)
    except KafkaProtocolError:
        return


def _batches() -> list[bytes]:
    return [encode_batch([(b"k", b"v" * 20, [("h", b"1")]), (None, b"second", [])], 1_700_000_000_000),
            encode_batch([(None, None, [])], 1, producer_id=5, producer_epoch=0, base_sequence=0),
            encode_batch([(b"x", b"y", [("a", None), ("b", b"")])] * 3, 2)]


def header_seeds() -> list[bytes]:
    return [b"".join(_frame(key, v, body) for key, v, body in _kio_seeds()[i:i + 3])
            for i in range(0, len(_kio_seeds()), 3)] + [produce_request(1, "t", 0, _batches()[0])
                                         + fetch_request(2, "t", 0, 0)]


def produce_one_input(data: bytes) -> None:
    """A Produce request (header, body); every record set it carries is validated as the broker does."""
    parsed = _header(data)
    if parsed is None:
        return
    head, r = parsed
    try:
        request = decode_produce(r, min(max(head.api_version, 3), 8))
    except KafkaProtocolError:
        return
    for _topic, parts in request.topics:
        for _index, records in parts:
            if records is not None:
                _validate(records)


def _validate(records: bytearray) -> list[batch.BatchInfo]:
    try:
        found = batch.validate(records, limits.KAFKA_MESSAGE_MAX_BYTES)
    except BatchError:
        return []
    batch.assign_offsets(records, found, 100)
    return found


def produce_seeds() -> list[bytes]:
    return [produce_request(3, "topic", p, b)[4:] for p, b in enumerate(_batches())] + [
        produce_request(4, "t", 0, b"".join(_batches()))[4:]]


def fetch_one_input(data: bytes) -> None:
    parsed = _header(data)
    if parsed is None:
        return
    head, r = parsed
    try:
        decode_fetch(r, min(max(head.api_version, 4), 11))
    except KafkaProtocolError:
        return


def fetch_seeds() -> list[bytes]:
    seeds = [fetch_request(9, "topic", 0, 0)[4:], fetch_request(9, "t", 3, 2**40)[4:]]
    for version in (4, 5, 7, 9):  # the same request read as older versions: shorter partitions
        seeds.append(seeds[0][:2] + I16.pack(version) + seeds[0][4:])
    return seeds


def records_one_input(data: bytes) -> None:
    """A record set with every batch's CRC made right: what passes validation is read record by
    record, as stream consumers read stored batches."""
    records = bytearray(data)
    _fix_crcs(records)
    if _validate(records):
        try:
            decode_batches(bytes(records), control=True)
        except KafkaProtocolError:
            return


def _fix_crcs(buf: bytearray) -> None:
    pos = 0
    while pos + batch.HEADER_BYTES <= len(buf):
        length = I32.unpack_from(buf, pos + 8)[0]
        end = pos + batch.LOG_OVERHEAD_BYTES + length
        if length < 0 or end > len(buf) or end <= pos + 21:
            return
        _CRC.pack_into(buf, pos + 17, crc32c.crc32c(memoryview(buf)[pos + 21:end]))
        pos = end


def records_seeds() -> list[bytes]:
    return [*_batches(), b"".join(_batches())]


def requests_one_input(data: bytes) -> None:
    """Any other request (header, body), decoded by kio as the server's handlers receive it."""
    parsed = _header(data)
    if parsed is None:
        return
    head, r = parsed
    if head.api_key in versions.HAND_WRITTEN or not versions.supported(head.api_key, head.api_version):
        return
    try:
        decode_request(head.api_key, head.api_version, memoryview(r.buf)[r.pos:])
    except KafkaProtocolError:
        return


@cache
def _kio_seeds() -> list[tuple[int, int, bytes]]:
    """(api key, version, body) for the lowest and highest version of every kio-decoded API."""
    out = []
    for key, (low, high) in versions.SUPPORTED.items():
        if key not in versions.HAND_WRITTEN:
            out += [(key, v, _kio_body(key, v, _KIO_VALUES.get(key, {}))) for v in (low, high)]
    return out


_KIO_VALUES: dict[int, dict[str, Any]] = {
    versions.METADATA: {"topics": [{"name": "t"}]},
    versions.CREATE_TOPICS: {"topics": [{"name": "t", "num_partitions": 3, "replication_factor": 1,
                                         "configs": [{"name": "cleanup.policy", "value": "compact"}]}]},
    versions.OFFSET_COMMIT: {"group_id": "g", "topics": [{"name": "t", "partitions": [
        {"partition_index": 0, "committed_offset": 5, "committed_metadata": "m"}]}]},
    versions.JOIN_GROUP: {"group_id": "g", "protocol_type": "consumer", "protocols": [
        {"name": "range", "metadata": b"\x00\x01"}]},
}


def _kio_body(key: int, version: int, values: dict[str, Any]) -> bytes:
    cls = load_request_schema(key, version)
    buf = io.BytesIO()
    entity_writer(cls)(buf, build(cls, values))
    return buf.getvalue()


def requests_seeds() -> list[bytes]:
    return [_frame(key, v, body)[4:] for key, v, body in _kio_seeds()]


TARGETS = [
    Target("kafka-header", header_one_input, header_seeds, "KafkaProtocolError (the connection closes)"),
    Target("kafka-produce", produce_one_input, produce_seeds, "KafkaProtocolError; BatchError per partition"),
    Target("kafka-fetch", fetch_one_input, fetch_seeds, "KafkaProtocolError"),
    Target("kafka-records", records_one_input, records_seeds, "BatchError; KafkaProtocolError on read"),
    Target("kafka-requests", requests_one_input, requests_seeds,
           "KafkaProtocolError (kio's errors translated)"),
]
