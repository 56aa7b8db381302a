"""Record-batch compression (attributes bits 0-2): the broker decompresses only where it must read
records itself (AMQP delivery of Kafka-produced records, compaction). cramjam covers all four codecs
in one well-kept package; batches are never recompressed on the Produce/Fetch path."""

from __future__ import annotations

import struct

import cramjam

from ferrymq.protocols.kafka.errors import KafkaProtocolError

NONE, GZIP, SNAPPY, LZ4, ZSTD = range(5)
_XERIAL = b"\x82SNAPPY\x00"  # the framing Java clients (and librdkafka for them) put around snappy


def decompress(codec: int, data: bytes | memoryview) -> bytes:
    """The records section of a batch, uncompressed."""
    try:
        if codec == NONE:
            return bytes(data)
        if codec == GZIP:
            return bytes(cramjam.gzip.decompress(bytes(data)))
        if codec == SNAPPY:
            return _snappy(bytes(data))
        if codec == LZ4:
            return bytes(cramjam.lz4.decompress(bytes(data)))
        if codec == ZSTD:
            return bytes(cramjam.zstd.decompress(bytes(data)))
    except cramjam.DecompressionError as exc:
        raise KafkaProtocolError(f"cannot decompress a codec {codec} batch: {exc}") from None
    raise KafkaProtocolError(f"unknown compression codec {codec}")


def _snappy(data: bytes) -> bytes:
    if not data.startswith(_XERIAL):
        return bytes(cramjam.snappy.decompress_raw(data))
    out, pos = [], 16  # magic (8), version (4), compatible version (4)
    while pos + 4 <= len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        out.append(bytes(cramjam.snappy.decompress_raw(data[pos + 4 : pos + 4 + n])))
        pos += 4 + n
    return b"".join(out)
