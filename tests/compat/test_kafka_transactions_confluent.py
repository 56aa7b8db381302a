"""confluent-kafka (librdkafka) transactions against FerryMQ over real sockets: init_transactions,
commit and abort seen through read_committed, offsets sent to the transaction, and
consume-transform-produce with exactly-once output under a producer killed with SIGKILL in the
middle of a transaction (the restarted producer, same transactional.id, fences it and its open
transaction is aborted)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.timeout(120)

# One consume-transform-produce worker: reads the input from the group's committed offset, and per
# transaction of BATCH records produces their transforms and sends the offsets with them. With
# stop_after >= 0 it commits that many transactions, then opens one more, produces into it, says
# "mid" and waits to be killed.
WORKER = textwrap.dedent("""
    import sys, time
    from confluent_kafka import Consumer, Producer, TopicPartition
    bootstrap, txn_id, group, src, dst, total, stop_after = sys.argv[1:8]
    total, stop_after, BATCH = int(total), int(stop_after), 5
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    [start] = c.committed([TopicPartition(src, 0)], timeout=10)
    c.assign([TopicPartition(src, 0, start.offset if start.offset >= 0 else 0)])
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id,
                  "transaction.timeout.ms": 30000})
    p.init_transactions(10)
    done, txns = max(start.offset, 0), 0
    while done < total:
        msgs = []
        while len(msgs) < min(BATCH, total - done):
            msgs += [m for m in c.consume(BATCH - len(msgs), timeout=0.2) if m.error() is None]
        p.begin_transaction()
        for m in msgs:
            p.produce(dst, value=m.value().upper(), partition=0)
        if txns == stop_after:
            p.flush(10)
            print("mid", flush=True)
            time.sleep(600)
        p.send_offsets_to_transaction([TopicPartition(src, 0, msgs[-1].offset() + 1)],
                                      c.consumer_group_metadata(), 10)
        p.commit_transaction(10)
        done, txns = msgs[-1].offset() + 1, txns + 1
    print("done", flush=True)
""")


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _read(bootstrap: str, topic: str, isolation: str, want: int, timeout_s: float = 8) -> list[bytes]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": _name("reader"), "isolation.level": isolation,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < want and time.monotonic() < deadline:
            got += [m.value() for m in c.consume(100, timeout=0.2) if m.error() is None]
    finally:
        c.close()
    return got


def _topics(bootstrap: str, *names: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        fut.result(10)


def test_confluent_commit_and_abort_through_read_committed_and_read_uncommitted(ferry):
    bootstrap, topic = ferry.kafka_bootstrap, _name("ctx")
    _topics(bootstrap, topic)
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": _name("txid")})
    p.init_transactions(10)
    p.begin_transaction()
    p.produce(topic, b"kept-1", partition=0)
    p.produce(topic, b"kept-2", partition=0)
    p.commit_transaction(10)
    p.begin_transaction()
    p.produce(topic, b"dropped", partition=0)
    p.flush(10)
    p.abort_transaction(10)
    p.begin_transaction()
    p.produce(topic, b"kept-3", partition=0)
    p.commit_transaction(10)
    assert _read(bootstrap, topic, "read_committed", 3) == [b"kept-1", b"kept-2", b"kept-3"]
    assert _read(bootstrap, topic, "read_uncommitted", 4) == [b"kept-1", b"kept-2", b"dropped", b"kept-3"]


def test_confluent_offsets_sent_to_a_transaction_commit_with_it(ferry):
    bootstrap, src, group = ferry.kafka_bootstrap, _name("csrc"), _name("g")
    _topics(bootstrap, src)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": _name("txid")})
    p.init_transactions(10)
    try:
        p.begin_transaction()
        p.send_offsets_to_transaction([TopicPartition(src, 0, 4)], c.consumer_group_metadata(), 10)
        p.abort_transaction(10)
        assert c.committed([TopicPartition(src, 0)], timeout=10)[0].offset < 0
        p.begin_transaction()
        p.send_offsets_to_transaction([TopicPartition(src, 0, 6)], c.consumer_group_metadata(), 10)
        p.commit_transaction(10)
        assert c.committed([TopicPartition(src, 0)], timeout=10)[0].offset == 6
    finally:
        c.close()


def test_consume_transform_produce_is_exactly_once_under_a_producer_killed_mid_transaction(ferry):
    bootstrap, src, dst = ferry.kafka_bootstrap, _name("src"), _name("dst")
    txn_id, group, total = _name("etl"), _name("etl-g"), 20
    _topics(bootstrap, src, dst)
    p = Producer({"bootstrap.servers": bootstrap})
    for n in range(total):
        p.produce(src, b"rec-%02d" % n, partition=0)
    p.flush(10)
    args = [sys.executable, "-c", WORKER, bootstrap, txn_id, group, src, dst, str(total)]
    zombie = subprocess.Popen([*args, "2"], stdout=subprocess.PIPE, text=True)
    try:
        assert zombie.stdout is not None and zombie.stdout.readline().strip() == "mid"
    finally:
        os.kill(zombie.pid, signal.SIGKILL)
        zombie.wait(10)
    # the zombie's open transaction wrote records 10..14 that must never count
    assert len(_read(bootstrap, dst, "read_uncommitted", 15)) == 15
    assert len(_read(bootstrap, dst, "read_committed", 15, timeout_s=2)) == 10
    restarted = subprocess.run([*args, "-1"], capture_output=True, text=True, timeout=60)
    assert restarted.stdout.strip() == "done", restarted.stderr
    out = _read(bootstrap, dst, "read_committed", total)
    assert out == [b"REC-%02d" % n for n in range(total)]
    assert len(_read(bootstrap, dst, "read_uncommitted", total + 5)) == total + 5
