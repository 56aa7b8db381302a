"""The array-length check that runs before kio reads a request (found by the kafka-requests fuzz
target: a 47-byte DescribeGroups asked kio for 36 GB and the allocator aborted the broker)."""

from __future__ import annotations

import struct

import pytest
from kio.index import load_request_schema

from ferrymq.fuzz.kafka import _KIO_VALUES, _kio_body
from ferrymq.protocols.kafka import array_bounds, versions
from ferrymq.protocols.kafka.entities import decode_request
from ferrymq.protocols.kafka.errors import KafkaProtocolError

KIO_APIS = [(key, v) for key, (low, high) in versions.SUPPORTED.items()
            if key not in versions.HAND_WRITTEN for v in range(low, high + 1)]


@pytest.mark.parametrize(("key", "version"), KIO_APIS)
def test_the_walk_reads_exactly_what_kio_wrote(key: int, version: int) -> None:
    """The check follows kio's schema byte for byte, so it never refuses a request kio accepts."""
    cls = load_request_schema(key, version)
    body = _kio_body(key, version, _KIO_VALUES.get(key, {}))
    assert array_bounds._entity(cls, body, 0, len(body), bool(cls.__flexible__)) == len(body)
    decode_request(key, version, body)


@pytest.mark.parametrize(("key", "version", "body"), [
    (versions.METADATA, 0, struct.pack(">i", 2**31 - 1)),  # classic array: i32 length
    (versions.DESCRIBE_GROUPS, 5, b"\x89\xf8\x8a\xe8\x10"),  # compact array: 4.5e9 elements
    (versions.CREATE_TOPICS, 5, b"\xff\xff\xff\xff\x0f"),  # compact array of structs
    (versions.OFFSET_COMMIT, 2, struct.pack(">h", 1) + b"g" + struct.pack(">ihq", 0, 0, 0)
     + struct.pack(">i", 2**30)),  # an array behind other fields
])
def test_an_array_longer_than_the_request_is_a_protocol_error(key: int, version: int, body: bytes) -> None:
    with pytest.raises(KafkaProtocolError, match="array length"):
        decode_request(key, version, body)


def test_a_truncated_request_is_left_to_kio_to_refuse() -> None:
    with pytest.raises(KafkaProtocolError, match="undecodable"):
        decode_request(versions.METADATA, 0, struct.pack(">ih", 1, 5) + b"ab")  # a topic name cut short
