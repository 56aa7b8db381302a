"""kcat (the Debian package; librdkafka's command-line client) against FerryMQ: metadata listing,
keyed produce across partitions, and consume back with per-key order."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import pytest

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("kcat") is None,
                       reason="kcat not installed (Debian package `kcat`, .ci/run installs it): skipped"),
]


def _kcat(ferry, *args: str, stdin: str | None = None) -> str:
    cmd = ["kcat", "-b", ferry.kafka_bootstrap, "-X", "topic.metadata.refresh.interval.ms=500", *args]
    done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _create(ferry, topic: str, partitions: int) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": ferry.kafka_bootstrap})
    for fut in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        fut.result(10)


def test_kcat_metadata_lists_topics_partitions_and_the_bound_port(ferry):
    topic = f"kcat-{uuid.uuid4().hex[:8]}"
    _create(ferry, topic, 3)
    meta = json.loads(_kcat(ferry, "-L", "-J"))
    assert [b["name"] for b in meta["brokers"]] == [ferry.kafka_bootstrap]
    [t] = [t for t in meta["topics"] if t["topic"] == topic]
    assert sorted(p["partition"] for p in t["partitions"]) == [0, 1, 2]
    assert all(p["leader"] == meta["brokers"][0]["id"] for p in t["partitions"])


def test_kcat_keyed_produce_and_consume_keep_per_key_order(ferry):
    topic = f"kcat-{uuid.uuid4().hex[:8]}"
    _create(ferry, topic, 4)
    lines = [f"k{n % 7}:v{n}" for n in range(200)]
    _kcat(ferry, "-P", "-t", topic, "-K", ":", "-z", "lz4", stdin="\n".join(lines) + "\n")
    out = _kcat(ferry, "-C", "-t", topic, "-o", "beginning", "-e", "-J")
    got = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(got) == 200
    by_key: dict[str, list[int]] = {}
    partition_of: dict[str, set[int]] = {}
    for m in got:
        by_key.setdefault(m["key"], []).append(int(m["payload"][1:]))
        partition_of.setdefault(m["key"], set()).add(m["partition"])
    assert all(len(ps) == 1 for ps in partition_of.values())  # a key stays on its partition
    assert len({p for ps in partition_of.values() for p in ps}) > 1  # keys spread over partitions
    for key, values in by_key.items():
        sent = [ln for ln in lines if ln.startswith(key + ":")]
        assert values == sorted(values) and len(values) == len(sent)
