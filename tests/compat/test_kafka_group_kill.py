"""A consumer-group member killed with SIGKILL (no LeaveGroup): once its session times out the
coordinator rebalances and the survivor owns every partition and reads what is produced to them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.timeout(60)

MEMBER = textwrap.dedent("""
    import sys
    from confluent_kafka import Consumer
    bootstrap, group, topic = sys.argv[1:4]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": 1500,
                  "heartbeat.interval.ms": 300, "auto.offset.reset": "earliest"})
    c.subscribe([topic], on_assign=lambda _c, parts: print("assigned", len(parts), flush=True))
    while True:
        c.poll(0.1)
""")

CONF = {"session.timeout.ms": 1500, "heartbeat.interval.ms": 300, "auto.offset.reset": "earliest"}


def _poll_until(c: Consumer, done, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        c.poll(0.1)
        if done():
            return True
    return False


def test_killed_member_partitions_go_to_the_survivor(ferry):
    topic, group = f"kill-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = AdminClient({"bootstrap.servers": ferry.kafka_bootstrap})
    for fut in admin.create_topics([NewTopic(topic, 4, 1)]).values():
        fut.result(10)
    child = subprocess.Popen([sys.executable, "-c", MEMBER, ferry.kafka_bootstrap, group, topic],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().startswith("assigned")
        owned: list[int] = []
        c = Consumer({"bootstrap.servers": ferry.kafka_bootstrap, "group.id": group, **CONF})

        def on_assign(_c: Consumer, parts: list) -> None:
            owned[:] = [p.partition for p in parts]

        c.subscribe([topic], on_assign=on_assign)
        assert _poll_until(c, lambda: 0 < len(owned) < 4, 20), f"no split: {owned}"
        os.kill(child.pid, signal.SIGKILL)  # no LeaveGroup: only the session timeout tells
        t0 = time.monotonic()
        assert _poll_until(c, lambda: sorted(owned) == [0, 1, 2, 3], 20), f"no takeover: {owned}"
        took = time.monotonic() - t0
        p = Producer({"bootstrap.servers": ferry.kafka_bootstrap})
        for i in range(4):
            p.produce(topic, value=b"after-%d" % i, partition=i)
        assert p.flush(10) == 0
        got: set[int] = set()
        deadline = time.monotonic() + 15
        while len(got) < 4 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and m.error() is None and m.value().startswith(b"after-"):
                got.add(m.partition())
        c.close()
        assert got == {0, 1, 2, 3}
        assert took < 10, f"takeover took {took:.1f} s for a 1.5 s session timeout"
    finally:
        child.kill()
        child.wait(10)
