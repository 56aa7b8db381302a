"""Streams side by side on one node: FerryMQ (Kafka protocol, confluent-kafka), Redis Streams, NATS
JetStream and RabbitMQ streams (AMQP 0-9-1), each started privately on free ports here.

    python scripts/kafka_bench_compare.py --records 500000 --sizes 100 1024 \
        [--systems ferrymq redis nats rabbitmq]

Each run produces N records of the given size as fast as the client allows with batching and broker
acknowledgements (Kafka acks=1 linger 5 ms; Redis pipelines of 1000 XADD; NATS 1000 JetStream
publishes in flight; RabbitMQ publisher confirms, 1000 in flight), then reads all N from the start
(Kafka fetch; XREAD COUNT 10000; a JetStream pull consumer fetching 1000; basic.consume with
x-stream-offset first, prefetch 2000, multiple acks). "never"/"always" is the broker's fsync policy:
FerryMQ --fsync; Redis appendfsync no/always; NATS 2.9 has no per-write fsync (2 min interval: only
"never" is run); RabbitMQ streams write without fsync (osiris): only "never" is run.
Needs redis-py and nats-py next to the project's packages (a throw-away venv, see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable

from ferrymq.bench import kafka_load
from ferrymq.bench.rabbitmq_node import free_port
from ferrymq.bench.targets import open_target

Result = tuple[float, float]  # produce rec/s, consume rec/s


def _wait_port(port: int, timeout_s: float = 20) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on {port}")


def run_ferrymq(d: str, n: int, size: int, fsync: str) -> Result:
    with open_target("ferrymq-kafka", fsync=fsync) as target:
        bootstrap = target.url.removeprefix("kafka://")
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        kafka_load.create_topic(bootstrap, topic)
        p = kafka_load.produce_count(bootstrap, topic, n, size)
        c = kafka_load.consume_count(bootstrap, topic, n, tuned=True)
        return n / p, n / c


def run_redis(d: str, n: int, size: int, fsync: str) -> Result:
    import redis

    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                             "--save", "", "--appendonly", "yes", "--appendfsync",
                             "always" if fsync == "always" else "no"], stdout=subprocess.DEVNULL)
    try:
        _wait_port(port)
        r = redis.Redis(port=port)
        value = os.urandom(size)
        t0 = time.perf_counter()
        for i in range(0, n, 1000):
            pipe = r.pipeline(transaction=False)
            for _ in range(min(1000, n - i)):
                pipe.xadd("s", {"v": value})
            pipe.execute()
        p = time.perf_counter() - t0
        t0, got, last = time.perf_counter(), 0, "0-0"
        while got < n:
            [(_, entries)] = r.xread({"s": last}, count=10_000)
            got += len(entries)
            last = entries[-1][0]
        return n / p, n / (time.perf_counter() - t0)
    finally:
        proc.terminate()
        proc.wait(20)


def run_nats(d: str, n: int, size: int, fsync: str) -> Result:
    port = free_port()
    proc = subprocess.Popen(["nats-server", "-js", "-sd", d, "-a", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)
        time.sleep(1)  # JetStream comes up after the client port; an early add_stream never answers
        return asyncio.run(asyncio.wait_for(_nats(port, n, size), 900))
    finally:
        proc.terminate()
        proc.wait(20)


async def _nats(port: int, n: int, size: int) -> Result:
    import nats

    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    await js.add_stream(name="bench", subjects=["bench"])
    value = os.urandom(size)
    t0 = time.perf_counter()
    for i in range(0, n, 1000):
        await asyncio.gather(*(js.publish("bench", value) for _ in range(min(1000, n - i))))
    p = time.perf_counter() - t0
    from nats.js.api import AckPolicy, ConsumerConfig

    sub = await js.pull_subscribe("bench", "reader", config=ConsumerConfig(ack_policy=AckPolicy.ALL))
    t0, got = time.perf_counter(), 0
    while got < n:
        msgs = await sub.fetch(1000, timeout=5)
        got += len(msgs)
        await msgs[-1].ack()  # AckAll: the last acknowledges the batch
    c = time.perf_counter() - t0
    await nc.close()
    return n / p, n / c


def run_rabbitmq(d: str, n: int, size: int, fsync: str) -> Result:
    from ferrymq.bench.rabbitmq_node import start_rabbitmq

    node = start_rabbitmq(d)
    try:
        return asyncio.run(_rabbit(node.amqp_url, n, size))
    finally:
        node.stop()


async def _rabbit(url: str, n: int, size: int) -> Result:
    import aiormq

    conn = await aiormq.connect(url)
    ch = await conn.channel()  # publisher confirms on
    await ch.queue_declare("bench", durable=True, arguments={"x-queue-type": "stream"})
    value = os.urandom(size)
    t0 = time.perf_counter()
    for i in range(0, n, 1000):
        await asyncio.gather(*(ch.basic_publish(value, routing_key="bench") for _ in range(min(1000, n - i))))
    p = time.perf_counter() - t0
    got, done = 0, asyncio.get_running_loop().create_future()
    cch = await conn.channel()
    await cch.basic_qos(prefetch_count=2000)

    async def on_message(m: aiormq.abc.DeliveredMessage) -> None:
        nonlocal got
        got += 1
        if got % 1000 == 0 or got == n:
            await cch.basic_ack(m.delivery_tag, multiple=True)
        if got == n and not done.done():
            done.set_result(None)

    t0 = time.perf_counter()
    await cch.basic_consume("bench", on_message, arguments={"x-stream-offset": "first"})
    await asyncio.wait_for(done, 600)
    c = time.perf_counter() - t0
    await conn.close()
    return n / p, n / c


SYSTEMS: dict[str, tuple[Callable[[str, int, int, str], Result], tuple[str, ...]]] = {
    "ferrymq": (run_ferrymq, ("never", "always")),
    "redis": (run_redis, ("never", "always")),
    "nats": (run_nats, ("never",)),
    "rabbitmq": (run_rabbitmq, ("never",)),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=500_000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1024])
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    a = ap.parse_args()
    print("| system | size | fsync | produce rec/s | consume rec/s | produce MB/s | load before |")
    print("|---|---|---|---|---|---|---|")
    for size in a.sizes:
        for name in a.systems:
            fn, policies = SYSTEMS[name]
            for fsync in policies:
                d = tempfile.mkdtemp(prefix=f"bench-{name}-")
                load = os.getloadavg()[0]
                try:
                    prod, cons = fn(d, a.records, size, fsync)
                    mb_s = prod * size / 1e6
                    print(f"| {name} | {size} B | {fsync} | {prod:,.0f} | {cons:,.0f} | {mb_s:.1f} "
                          f"| {load:.2f} |", flush=True)
                except Exception as exc:  # one system failing must not lose the others' rows
                    print(f"| {name} | {size} B | {fsync} | failed: {exc!r} | | | {load:.2f} |", flush=True)
                finally:
                    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
