"""Produce acks and offset commits leave only after the fsync that covers them (fsync always), and
SASL PLAIN authenticates against the broker's users."""

from __future__ import annotations

import threading

import pytest

from ferrymq.protocols.kafka.records import encode_batch
from ferrymq.testing import EmbeddedBroker
from tests.support.kafka import Raw
from tests.support.kafka import produce as _produce

pytestmark = pytest.mark.timeout(30)


def test_no_produce_ack_before_its_fsync(tmp_path):
    with EmbeddedBroker(data_dir=str(tmp_path), fsync="always") as b:
        kafka = b.running.kafka
        gate = threading.Event()
        real_commit = kafka.group_commit.commit

        def blocked_commit(now_ms=None):
            gate.wait(10)
            return real_commit(now_ms)

        kafka.group_commit.commit = blocked_commit
        raw = Raw(b.kafka_port)
        result: dict = {}

        def produce():
            raw.sock.settimeout(10)
            result["resp"] = _produce(raw, "synced", encode_batch([(None, b"x", [])], 1))

        t = threading.Thread(target=produce)
        t.start()
        t.join(0.7)
        assert "resp" not in result  # appended, but the fsync has not returned: no ack yet
        fsyncs_before = kafka.group_commit.fsyncs
        gate.set()
        t.join(10)
        assert result["resp"].responses[0].partition_responses[0].error_code == 0
        assert kafka.group_commit.fsyncs > fsyncs_before
        raw.close()


def test_sasl_plain_with_kafka_python(ferry):
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    ok = KafkaProducer(bootstrap_servers=ferry.kafka_bootstrap, security_protocol="SASL_PLAINTEXT",
                       sasl_mechanism="PLAIN", sasl_plain_username="guest", sasl_plain_password="guest")
    ok.send("sasl", b"hi").get(10)
    ok.close()
    with pytest.raises(KafkaError):
        bad = KafkaProducer(bootstrap_servers=ferry.kafka_bootstrap, security_protocol="SASL_PLAINTEXT",
                            sasl_mechanism="PLAIN", sasl_plain_username="guest", sasl_plain_password="nope",
                            max_block_ms=3000, bootstrap_timeout_ms=2000)
        bad.send("sasl", b"no").get(5)
