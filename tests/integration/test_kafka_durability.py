"""Produce acks and offset commits leave only after the fsync that covers them, under the same rule
as AMQP confirms (one commit pipeline for both), and SASL PLAIN authenticates against the broker's
users."""

from __future__ import annotations

import threading
import time

import pika
import pytest
from kafka import KafkaProducer

from ferrymq.protocols.kafka.records import encode_batch
from ferrymq.testing import EmbeddedBroker
from tests.support.kafka import Raw
from tests.support.kafka import produce as _produce

pytestmark = pytest.mark.timeout(30)


def test_no_produce_ack_before_its_fsync(tmp_path):
    with EmbeddedBroker(data_dir=str(tmp_path), fsync="always") as b:
        group = b.running.commit.group
        gate = threading.Event()
        real_commit = group.commit

        def blocked_commit(now_ms=None):
            gate.wait(10)
            return real_commit(now_ms)

        group.commit = blocked_commit
        raw = Raw(b.kafka_port)
        result: dict = {}

        def produce():
            raw.sock.settimeout(10)
            result["resp"] = _produce(raw, "synced", encode_batch([(None, b"x", [])], 1))

        t = threading.Thread(target=produce)
        t.start()
        t.join(0.7)
        assert "resp" not in result  # appended, but the fsync has not returned: no ack yet
        fsyncs_before = group.fsyncs
        gate.set()
        t.join(10)
        assert result["resp"].responses[0].partition_responses[0].error_code == 0
        assert group.fsyncs > fsyncs_before
        raw.close()


def _record_commits(broker: EmbeddedBroker, gate: threading.Event | None = None) -> list[tuple[float, int]]:
    """Wrap the one group commit: each call waits at ``gate`` (if any), then records (return time,
    logs fsynced)."""
    group = broker.running.commit.group
    real = group.commit
    done: list[tuple[float, int]] = []

    def commit(now_ms=None):
        if gate is not None:
            gate.wait(10)
        n = real(now_ms)
        done.append((time.monotonic(), n))
        return n

    group.commit = commit
    return done


def test_amqp_publishes_and_kafka_produces_in_one_turn_share_one_fsync_and_wait_for_it(tmp_path):
    with EmbeddedBroker(data_dir=str(tmp_path), fsync="always") as b:
        conn = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = conn.channel()
        ch.queue_declare("shared", durable=True, arguments={"x-queue-type": "stream"})
        ch.confirm_delivery()
        ch.basic_publish("", "shared", b"warm-up")
        producer = KafkaProducer(bootstrap_servers=b.kafka_bootstrap, acks=1, linger_ms=0)
        producer.send("shared", b"warm-up", partition=0).get(10)  # connected, metadata known
        gate = threading.Event()
        commits = _record_commits(b, gate)
        acked: dict[str, float] = {}

        def amqp() -> None:
            ch.basic_publish("", "shared", b"from amqp")
            acked["amqp"] = time.monotonic()

        def kafka() -> None:
            producer.send("shared", b"from kafka", partition=0).get(10)
            acked["kafka"] = time.monotonic()

        b._loop.call_soon_threadsafe(time.sleep, 1.0)  # the loop reads nothing: both land in one turn
        time.sleep(0.1)
        threads = [threading.Thread(target=amqp), threading.Thread(target=kafka)]
        for t in threads:
            t.start()
        time.sleep(1.5)  # the loop woke, read both requests, ended the turn; its commit waits at the gate
        assert not acked, "a confirm or produce ack left before the fsync that covers it"
        gate.set()
        for t in threads:
            t.join(10)
        assert set(acked) == {"amqp", "kafka"}
        assert len(commits) == 1 and commits[0][1] == 1  # one commit, one fsync of the one stream log
        assert min(acked.values()) >= commits[0][0]
        assert b.call(lambda: b.running.streams.topics.get("shared").logs[0].next_offset) == 4
        producer.close()
        conn.close()


@pytest.mark.parametrize("acks", [1, "all"])
def test_with_fsync_interval_a_produce_ack_waits_for_the_timed_fsync(tmp_path, acks):
    with EmbeddedBroker(data_dir=str(tmp_path), fsync="interval:1000") as b:
        producer = KafkaProducer(bootstrap_servers=b.kafka_bootstrap, acks=acks, linger_ms=0)
        producer.send("timed", b"first", partition=0).get(10)  # due at once: the interval starts here
        commits = _record_commits(b)
        sent = time.monotonic()
        producer.send("timed", b"second", partition=0).get(10)
        acked = time.monotonic()
        assert commits and sent <= commits[0][0] <= acked, "produce ack sent before the timed fsync"
        assert acked - sent >= 0.3  # the timer's fsync, not one at once
        producer.close()


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


def test_amqp_stream_batches_are_stamped_by_the_injected_clock(tmp_path):
    from ferrymq.clock import ManualClock

    clock = ManualClock(start_ms=1_234_000)
    with EmbeddedBroker(clock=clock, data_dir=str(tmp_path)) as b:
        conn = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = conn.channel()
        ch.queue_declare("stamped", durable=True, arguments={"x-queue-type": "stream"})
        ch.confirm_delivery()
        ch.basic_publish("", "stamped", b"at the manual clock's time")
        found = b.call(lambda: b.running.streams.topics.get("stamped").logs[0].offset_for_time(1_234_000))
        assert found == 0
        later = b.call(lambda: b.running.streams.topics.get("stamped").logs[0].offset_for_time(1_234_001))
        assert later is None  # nothing was stamped with the wall clock's (much later) time
        conn.close()
