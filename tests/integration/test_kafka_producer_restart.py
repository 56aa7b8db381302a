"""Idempotent-producer state survives a broker restart: it is rebuilt from the stored batch headers,
so a retry of the last batch after the restart is answered with its original offset, not stored twice,
and a sequence gap is still refused."""

from __future__ import annotations

import pytest

from ferrymq.protocols.kafka.records import decode_batches, encode_batch
from ferrymq.testing import EmbeddedBroker
from tests.support.kafka import Raw
from tests.support.kafka import fetch_values as _fetch_values
from tests.support.kafka import produce as _produce

pytestmark = pytest.mark.timeout(30)


def _batch(value: bytes, seq: int) -> bytes:
    return encode_batch([(None, value, [])], 1_000, producer_id=4242, producer_epoch=0, base_sequence=seq)


def test_a_retry_across_a_restart_is_still_a_duplicate(tmp_path):
    with EmbeddedBroker(data_dir=str(tmp_path), fsync="always") as b:
        raw = Raw(b.kafka_port)
        _produce(raw, "idem-restart", _batch(b"a", 0))
        first = _produce(raw, "idem-restart", _batch(b"b", 1)).responses[0].partition_responses[0]
        raw.close()
    with EmbeddedBroker(data_dir=str(tmp_path), fsync="always") as b:
        raw = Raw(b.kafka_port)
        again = _produce(raw, "idem-restart", _batch(b"b", 1)).responses[0].partition_responses[0]
        assert (again.error_code, again.base_offset) == (0, first.base_offset)
        gap = _produce(raw, "idem-restart", _batch(b"gap", 7)).responses[0].partition_responses[0]
        assert gap.error_code == 45  # OUT_OF_ORDER_SEQUENCE_NUMBER
        nxt = _produce(raw, "idem-restart", _batch(b"c", 2)).responses[0].partition_responses[0]
        assert nxt.error_code == 0 and nxt.base_offset == first.base_offset + 1
        fetched = raw.call(1, 11, _fetch_values(topic="idem-restart"))
        stored = decode_batches(bytes(fetched.responses[0].partitions[0].records))
        assert [v for _, _, _, v, _ in stored] == [b"a", b"b", b"c"]
        raw.close()
