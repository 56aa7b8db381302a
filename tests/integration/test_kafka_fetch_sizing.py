"""Fetch sizing and long polling over a real socket: fetch.max.bytes bounds what the broker sends
(whole batches), fetch.min.bytes keeps a fetch parked until enough has been appended, and
max_wait_ms answers with what there is."""

from __future__ import annotations

import pytest
from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader

from ferrymq.protocols.kafka.records import decode_batches, encode_batch
from tests.support.kafka import Raw
from tests.support.kafka import encode_values as _encode
from tests.support.kafka import fetch_values as _fetch_values
from tests.support.kafka import produce as _produce

pytestmark = pytest.mark.timeout(30)


def _batch(tag: int, size: int = 1000) -> bytes:
    return encode_batch([(None, bytes([tag]) * size, [])], 1_000 + tag)


def _fetch(raw: Raw, topic: str, offset: int, *, wait_ms: int = 0, min_bytes: int = 1,
           max_bytes: int = 1 << 20) -> bytes:
    values = _fetch_values(offset=offset, wait_ms=wait_ms, topic=topic)
    values["min_bytes"], values["max_bytes"] = min_bytes, max_bytes
    raw.send(1, 11, _encode(load_request_schema(1, 11), values))
    _, body = raw.recv()
    resp = entity_reader(load_response_schema(1, 11))(body, 0)[0]
    return bytes(resp.responses[0].partitions[0].records or b"")


def _tags(records: bytes) -> list[int]:
    return [v[0] for _, _, _, v, _ in decode_batches(records)]


def test_fetch_max_bytes_bounds_the_answer_to_whole_batches_within_it(ferry):
    raw = Raw(ferry.kafka_port)
    for tag in range(5):
        _produce(raw, "sizing", _batch(tag))
    one = len(_batch(0))
    got = _fetch(raw, "sizing", 0, max_bytes=2 * one + one // 2)
    assert len(got) == 2 * one and _tags(got) == [0, 1]
    assert _tags(_fetch(raw, "sizing", 0, max_bytes=10)) == [0]  # the first batch always: progress
    raw.close()


def test_a_fetch_waits_for_min_bytes_then_carries_everything_appended(ferry):
    raw, other = Raw(ferry.kafka_port), Raw(ferry.kafka_port)
    _produce(other, "minbytes", _batch(0))
    values = _fetch_values(offset=1, wait_ms=20_000, topic="minbytes")
    values["min_bytes"] = len(_batch(1)) + 1  # one more batch is not enough, two are
    raw.send(1, 11, _encode(load_request_schema(1, 11), values))
    _produce(other, "minbytes", _batch(1))
    _produce(other, "minbytes", _batch(2))
    _, body = raw.recv()
    resp = entity_reader(load_response_schema(1, 11))(body, 0)[0]
    assert _tags(bytes(resp.responses[0].partitions[0].records)) == [1, 2]
    raw.close(), other.close()


def test_max_wait_answers_with_what_there_is_below_min_bytes(ferry):
    raw = Raw(ferry.kafka_port)
    _produce(raw, "maxwait", _batch(7))
    assert _tags(_fetch(raw, "maxwait", 0, wait_ms=100, min_bytes=1 << 20)) == [7]
    assert _fetch(raw, "maxwait", 1, wait_ms=100, min_bytes=1 << 20) == b""
    raw.close()
