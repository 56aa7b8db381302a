"""Kafka produce/consume throughput against a real `ferrymq serve` process, with confluent-kafka.

    .venv/bin/python scripts/kafka_perf.py --records 2000000 --size 100 --fsync never [--profile out.svg]

Starts a broker on free ports in a temporary data directory (or uses --bootstrap), produces N records
of --size bytes (acks=1, linger 5 ms, batch 1 MB) to a 1-partition topic, then consumes them from the
beginning with one consumer, and prints records/s and MB/s of each phase. --profile runs py-spy on
the broker during the consume phase (or the produce phase with --profile-phase produce).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

_PROJECT_VENV = Path(__file__).resolve().parents[1] / ".venv" / "bin"
VENV_BIN = _PROJECT_VENV if (_PROJECT_VENV / "ferrymq").exists() else Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(data_dir: str, fsync: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [str(VENV_BIN / "ferrymq"), "serve", "--data-dir", data_dir, "--amqp-port", "0", "--http-port", "0",
           "--kafka-port", str(port), "--fsync", fsync, "--log-level", "warning"]
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("broker did not start")


def produce(bootstrap: str, topic: str, n: int, size: int) -> float:
    p = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 5, "batch.size": 1_000_000,
                  "queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 1_048_576,
                  "enable.idempotence": False})
    value = os.urandom(size)
    t0 = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                p.produce(topic, value, partition=0)
                break
            except BufferError:
                p.poll(0.001)
    assert p.flush(120) == 0
    return time.perf_counter() - t0


def consume(bootstrap: str, topic: str, n: int, tuned: bool) -> float:
    conf = {"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "enable.auto.commit": False}
    if tuned:
        # librdkafka stops fetching when 100k records are queued locally and waits
        # fetch.queue.backoff.ms (1 s by default) before the next fetch: the client, not the broker, caps it
        conf.update({"fetch.queue.backoff.ms": 0, "queued.min.messages": 1_000_000})
    c = Consumer(conf)
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got, t0 = 0, None
    while got < n:
        msgs = c.consume(num_messages=10_000, timeout=1)
        if t0 is None and msgs:
            t0 = time.perf_counter()
        got += len(msgs)
    elapsed = time.perf_counter() - (t0 or time.perf_counter())
    c.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--fsync", default="never")
    ap.add_argument("--bootstrap")
    ap.add_argument("--profile")
    ap.add_argument("--tuned", action="store_true",
                    help="no fetch queue backoff, 1M queued records (else librdkafka defaults)")
    ap.add_argument("--profile-phase", default="consume", choices=["produce", "consume"])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferrymq-perf-") as d:
        proc, bootstrap = (None, a.bootstrap) if a.bootstrap else start_broker(d, a.fsync)
        try:
            topic = f"perf-{uuid.uuid4().hex[:6]}"
            admin = AdminClient({"bootstrap.servers": bootstrap})
            for f in admin.create_topics([NewTopic(topic, 1, 1)]).values():
                f.result(10)
            spy = _spy(a, proc, "produce")
            dt = produce(bootstrap, topic, a.records, a.size)
            _stop(spy)
            _report("produce", a.records, a.size, dt)
            spy = _spy(a, proc, "consume")
            dt = consume(bootstrap, topic, a.records, a.tuned)
            _stop(spy)
            _report("consume", a.records, a.size, dt)
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)


Proc = subprocess.Popen[bytes]


def _spy(a: argparse.Namespace, proc: Proc | None, phase: str) -> Proc | None:
    if not a.profile or proc is None or a.profile_phase != phase:
        return None
    fmt = "speedscope" if a.profile.endswith(".json") else "flamegraph"
    return subprocess.Popen([str(VENV_BIN / "py-spy"), "record", "-o", a.profile, "-p", str(proc.pid),
                             "-r", "200", "-f", fmt])


def _stop(spy: Proc | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)


def _report(phase: str, n: int, size: int, dt: float) -> None:
    mb_s = n * size / dt / 1e6
    print(f"{phase}: {n} x {size} B in {dt:.2f} s = {n / dt:,.0f} rec/s, {mb_s:.1f} MB/s", flush=True)


if __name__ == "__main__":
    main()
