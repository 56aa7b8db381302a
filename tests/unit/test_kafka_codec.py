"""Kafka codec: header framing golden bytes, hand-written Produce/Fetch checked against kio as the
oracle, the ApiVersions table and its v0 fallback, framing limits."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer

from ferrymq.protocols.kafka import versions
from ferrymq.protocols.kafka.entities import decode_request, encode_response
from ferrymq.protocols.kafka.errors import KafkaProtocolError
from ferrymq.protocols.kafka.fetch import PartitionData, decode_fetch, encode_fetch_response
from ferrymq.protocols.kafka.framing import FrameBuffer
from ferrymq.protocols.kafka.header import frame_response, parse_header
from ferrymq.protocols.kafka.primitives import Reader
from ferrymq.protocols.kafka.produce import PartitionResult, decode_produce, encode_produce_response
from ferrymq.protocols.kafka.records import encode_batch


def _kio_bytes(cls, values) -> bytes:
    from ferrymq.protocols.kafka.entities import build
    buf = io.BytesIO()
    entity_writer(cls)(buf, build(cls, values))
    return buf.getvalue()


def test_request_header_v1_golden():
    frame = bytes.fromhex("0003" "0007" "0000002a" "0003") + b"cli" + b"BODY"
    header, r = parse_header(frame, versions.flexible)
    assert (header.api_key, header.api_version, header.correlation_id, header.client_id) == (3, 7, 42, "cli")
    assert bytes(r.buf[r.pos:]) == b"BODY"


def test_request_header_v2_skips_unknown_tagged_fields():
    # ApiVersions v3 is flexible: client_id stays a classic string, then tagged fields (one unknown tag).
    tags = bytes.fromhex("01" "05" "02" "abcd")
    frame = bytes.fromhex("0012" "0003" "00000001" "0001") + b"x" + tags + b"B"
    header, r = parse_header(frame, versions.flexible)
    assert header.client_id == "x"
    assert bytes(r.buf[r.pos:]) == b"B"


def test_response_framing_golden():
    assert frame_response(7, b"\x01", flexible=False, api_key=3) == bytes.fromhex("00000005" "00000007" "01")
    # flexible responses carry an empty tagged-field section; ApiVersions never does
    assert frame_response(7, b"", flexible=True, api_key=3) == bytes.fromhex("00000005" "00000007" "00")
    assert frame_response(7, b"", flexible=True, api_key=18) == bytes.fromhex("00000004" "00000007")


def test_api_versions_ranges_are_decodable_by_kio():
    for key, (lo, hi) in versions.SUPPORTED.items():
        assert lo <= hi
        if key in versions.HAND_WRITTEN:
            assert not versions.flexible(key, hi)
            continue
        for v in range(lo, hi + 1):
            assert load_request_schema(key, v) and load_response_schema(key, v)


def test_api_versions_v0_fallback_lists_our_keys():
    body = encode_response(18, 0, {"error_code": 35, "api_keys": [
        {"api_key": 0, "min_version": 3, "max_version": 8}]})
    assert body == bytes.fromhex("0023" "00000001" "0000" "0003" "0008")


@pytest.mark.parametrize("version", range(3, 9))
def test_produce_request_decodes_what_kio_encodes(version):
    batch = encode_batch([(b"k", b"v", [])], 1000)
    cls = load_request_schema(0, version)
    raw = _kio_bytes(cls, {"transactional_id": None, "acks": -1, "timeout": 1500, "topic_data": [
        {"name": "t", "partition_data": [{"index": 2, "records": batch}]}]})
    req = decode_produce(Reader(raw), version)
    assert (req.acks, req.timeout_ms, req.transactional_id) == (-1, 1500, None)
    assert req.topics == [("t", [(2, bytearray(batch))])]


@pytest.mark.parametrize("version", range(3, 9))
def test_produce_response_is_what_kio_decodes(version):
    body = encode_produce_response(version, [("t", [PartitionResult(1, 0, 41, 0)])])
    resp, size = entity_reader(load_response_schema(0, version))(body, 0)
    assert size == len(body)
    part = resp.responses[0].partition_responses[0]
    assert (resp.responses[0].name, part.index, part.error_code, part.base_offset) == ("t", 1, 0, 41)


@pytest.mark.parametrize("version", range(4, 12))
def test_fetch_request_decodes_what_kio_encodes(version):
    cls = load_request_schema(1, version)
    raw = _kio_bytes(cls, {"replica_id": -1, "max_wait": 500, "min_bytes": 1, "max_bytes": 1 << 20,
                           "isolation_level": 0, "session_id": 0, "session_epoch": -1, "topics": [
                               {"topic": "t", "partitions": [{"partition": 0, "fetch_offset": 5,
                                                              "partition_max_bytes": 4096}]}],
                           "forgotten_topics_data": [], "rack_id": ""})
    req = decode_fetch(Reader(raw), version)
    assert (req.max_wait_ms, req.min_bytes, req.max_bytes) == (500, 1, 1 << 20)
    assert [(n, [(p.partition, p.offset, p.max_bytes) for p in ps]) for n, ps in req.topics] == \
        [("t", [(0, 5, 4096)])]


@pytest.mark.parametrize("version", range(4, 12))
def test_fetch_response_is_what_kio_decodes(version):
    batch = encode_batch([(None, b"hello", [])], 1000, base_offset=3)
    body = b"".join(encode_fetch_response(version, [("t", [PartitionData(0, 0, 9, 0, [batch])])]))
    resp, size = entity_reader(load_response_schema(1, version))(body, 0)
    assert size == len(body)
    part = resp.responses[0].partitions[0]
    assert (part.partition_index, part.high_watermark, bytes(part.records)) == (0, 9, batch)


def test_kio_entities_round_trip_a_join_group():
    cls = load_request_schema(11, 5)
    raw = _kio_bytes(cls, {"group_id": "g", "session_timeout": 10000, "rebalance_timeout": 30000,
                           "member_id": "", "group_instance_id": None, "protocol_type": "consumer",
                           "protocols": [{"name": "range", "metadata": b"\x00\x01"}]})
    req = decode_request(11, 5, raw)
    assert req.group_id == "g" and req.protocols[0].metadata == b"\x00\x01"
    with pytest.raises(KafkaProtocolError):
        decode_request(11, 5, raw[:5])


def test_frame_buffer_splits_and_bounds():
    fb = FrameBuffer(max_frame_bytes=64)
    data = b"".join(len(p).to_bytes(4, "big") + p for p in (b"a" * 8, b"b" * 10))
    for i in range(len(data)):  # byte at a time
        fb.receive_data(data[i : i + 1])
        frames = fb.frames()
        if i == 11:
            assert [bytes(f) for f in frames] == [b"a" * 8]
    fb.receive_data((1000).to_bytes(4, "big"))
    with pytest.raises(KafkaProtocolError):
        fb.frames()


@given(st.binary(max_size=200))
def test_produce_decoder_raises_only_protocol_errors(data):
    try:
        decode_produce(Reader(data), 8)
    except KafkaProtocolError:
        pass


@given(st.binary(max_size=200))
def test_fetch_decoder_raises_only_protocol_errors(data):
    try:
        decode_fetch(Reader(data), 11)
    except KafkaProtocolError:
        pass
