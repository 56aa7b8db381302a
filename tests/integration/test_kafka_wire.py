"""The Kafka listener over raw sockets: version negotiation, bad input, error codes, acks=0,
long-polling fetch, and data plus committed offsets surviving a broker restart."""

from __future__ import annotations

import struct
import time

import pytest
from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader

from ferrymq.protocols.kafka.records import decode_batches, encode_batch
from ferrymq.testing import EmbeddedBroker
from tests.support.kafka import Raw
from tests.support.kafka import encode_values as _encode
from tests.support.kafka import fetch_values as _fetch_values
from tests.support.kafka import produce as _produce

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def raw(ferry):
    r = Raw(ferry.kafka_port)
    yield r
    r.close()


def test_api_versions_current_and_v0_fallback(raw):
    resp = raw.call(18, 3, {"client_software_name": "raw", "client_software_version": "1"})
    keys = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}
    assert resp.error_code == 0 and keys[0] == (3, 8) and keys[1] == (4, 11) and keys[18] == (0, 3)
    # a version from the future: UNSUPPORTED_VERSION, answered in v0 with our list
    raw.send(18, 9, b"\x00", flexible=True)
    _, body = raw.recv()
    old = entity_reader(load_response_schema(18, 0))(body, 0)[0]
    assert old.error_code == 35 and {k.api_key for k in old.api_keys} == set(keys)


def test_metadata_advertises_the_bound_port_and_auto_creates(ferry, raw):
    resp = raw.call(3, 8, {"topics": [{"name": "auto-created"}], "allow_auto_topic_creation": True,
                           "include_cluster_authorized_operations": False,
                           "include_topic_authorized_operations": False})
    assert [(b.host, b.port) for b in resp.brokers] == [("127.0.0.1", ferry.kafka_port)]
    assert resp.topics[0].error_code == 0 and len(resp.topics[0].partitions) == 1
    resp = raw.call(3, 8, {"topics": [{"name": "not-created"}], "allow_auto_topic_creation": False,
                           "include_cluster_authorized_operations": False,
                           "include_topic_authorized_operations": False})
    assert resp.topics[0].error_code == 3


def test_malformed_requests_close_only_their_connection(ferry, raw):
    bad = Raw(ferry.kafka_port)
    bad.send(3, 99, b"")  # unsupported version of a known API
    assert bad.closed_by_peer()
    bad = Raw(ferry.kafka_port)
    bad.send(3, 8, b"\x00\x00\x00\x05")  # array of five topics, then nothing
    assert bad.closed_by_peer()
    bad = Raw(ferry.kafka_port)
    bad.sock.sendall(struct.pack(">i", 3) + b"abc")  # shorter than any header
    assert bad.closed_by_peer()
    assert raw.call(18, 2, {}).error_code == 0  # everyone else carries on


def test_produce_error_codes(raw):
    good = encode_batch([(b"k", b"v", [])], 1_000)
    assert _produce(raw, "errs", good).responses[0].partition_responses[0].error_code == 0
    corrupt = bytearray(good)
    corrupt[-1] ^= 0xFF
    assert _produce(raw, "errs", bytes(corrupt)).responses[0].partition_responses[0].error_code == 2
    big = encode_batch([(None, b"x" * 1_100_000, [])], 1_000)
    assert _produce(raw, "errs", big).responses[0].partition_responses[0].error_code == 10
    part = _produce(raw, "errs", good, partition=7).responses[0].partition_responses[0]
    assert part.error_code == 3
    ok = _produce(raw, "errs", good).responses[0].partition_responses[0]
    assert (ok.error_code, ok.base_offset) == (0, 1)


def test_idempotent_duplicates_are_answered_with_the_original_offset(raw):
    batch = encode_batch([(None, b"once", [])], 1_000, producer_id=77, producer_epoch=0, base_sequence=0)
    first = _produce(raw, "idem", batch).responses[0].partition_responses[0]
    again = _produce(raw, "idem", batch).responses[0].partition_responses[0]
    assert (first.error_code, again.error_code, again.base_offset) == (0, 0, first.base_offset)
    gap = encode_batch([(None, b"gap", [])], 1_000, producer_id=77, producer_epoch=0, base_sequence=5)
    assert _produce(raw, "idem", gap).responses[0].partition_responses[0].error_code == 45
    fetched = raw.call(1, 11, _fetch_values(topic="idem"))
    stored = decode_batches(bytes(fetched.responses[0].partitions[0].records))
    assert [v for _, _, _, v, _ in stored] == [b"once"]


def test_acks_zero_gets_no_response(raw):
    raw.send(0, 8, _encode(load_request_schema(0, 8), {
        "transactional_id": None, "acks": 0, "timeout": 5000, "topic_data": [
            {"name": "fire", "partition_data": [
                {"index": 0, "records": encode_batch([(None, b"x", [])], 1)}]}]}))
    corr = raw.send(18, 2, _encode(load_request_schema(18, 2), {}))
    assert raw.recv()[0] == corr  # the next response on the wire answers the next request


def test_fetch_long_poll_wakes_on_produce(ferry, raw):
    _produce(raw, "poll", encode_batch([(None, b"first", [])], 1))
    started = time.monotonic()
    raw.send(1, 11, _encode(load_request_schema(1, 11), _fetch_values(offset=1, wait_ms=5_000, topic="poll")))
    other = Raw(ferry.kafka_port)
    time.sleep(0.2)
    _produce(other, "poll", encode_batch([(None, b"second", [])], 2))
    _, body = raw.recv()
    resp = entity_reader(load_response_schema(1, 11))(body, 0)[0]
    assert time.monotonic() - started < 3
    values = [v for _, _, _, v, _ in decode_batches(bytes(resp.responses[0].partitions[0].records))]
    assert values == [b"second"]
    other.close()


def test_streams_and_committed_offsets_survive_a_restart(tmp_path):
    from kafka import KafkaConsumer, KafkaProducer

    def consume(bootstrap: str, want: int) -> list[bytes]:
        c = KafkaConsumer("durable", bootstrap_servers=bootstrap, group_id="g", auto_offset_reset="earliest",
                          enable_auto_commit=False)
        got: list[bytes] = []
        deadline = time.monotonic() + 10
        while len(got) < want and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=200).values():
                got += [r.value for r in recs]
        c.commit()
        c.close()
        return got

    def produce(bootstrap: str, values: range) -> None:
        p = KafkaProducer(bootstrap_servers=bootstrap)
        for i in values:
            p.send("durable", value=b"%d" % i)
        p.flush()
        p.close()

    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        produce(b.kafka_bootstrap, range(3))
        assert consume(b.kafka_bootstrap, 3) == [b"0", b"1", b"2"]
        produce(b.kafka_bootstrap, range(3, 6))
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        assert consume(b.kafka_bootstrap, 3) == [b"3", b"4", b"5"]
