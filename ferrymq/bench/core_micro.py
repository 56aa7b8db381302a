"""Core micro-benchmark: publish -> deliver -> ack through the pure core, no sockets.

    python -m ferrymq.bench.core_micro --messages 1000000

Shows that the core is never what limits the server (goal: >= 300k msg/s on one core) and
measures the memory a queued message costs beyond its body (goal: <= 250 bytes).
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import tracemalloc

from ferrymq.clock import Rng, SystemClock
from ferrymq.core.broker import Broker
from ferrymq.core.message import Message

BATCH = 500  # matches a prefetch / confirm window of 500


def throughput(messages: int, body_size: int = 100, enforce: bool = False) -> dict[str, float]:
    """``enforce``: the channels check the user's permissions, as every AMQP client channel does."""
    broker = Broker(SystemClock(), Rng(1))
    vhost = broker.vhosts["/"]
    vhost.declare_queue("bench", connection=None)
    pub = broker.open_channel(vhost, 1, object(), "guest", enforce=enforce)
    sub = broker.open_channel(vhost, 2, object(), "guest", enforce=enforce)
    pub.confirm_select()
    sub.qos(BATCH, False)
    sub.consume("bench", "c")
    body = b"x" * body_size
    done = 0
    start = time.perf_counter()
    while done < messages:
        for _ in range(BATCH):
            pub.publish("", "bench", False, Message("", "bench", body))
        pub.outbox.clear()
        last_tag = sub.outbox[-1][2]
        sub.outbox.clear()
        sub.ack(last_tag, True)
        done += BATCH
        broker.dirty.clear()
        pub.dirty = sub.dirty = False
    elapsed = time.perf_counter() - start
    return {"messages": done, "seconds": elapsed, "msgs_per_s": done / elapsed}


def memory_per_message(messages: int = 200_000) -> dict[str, float]:
    """Bytes retained per queued message beyond its body (bodies are shared, so they cost 0)."""
    broker = Broker(SystemClock(), Rng(1))
    vhost = broker.vhosts["/"]
    vhost.declare_queue("mem", connection=None)
    pub = broker.open_channel(vhost, 1, object(), "guest")
    body = b"x" * 100
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(messages):
        pub.publish("", "mem", False, Message("", "mem", body))
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert vhost.queues["mem"].ready_count == messages
    return {"messages": messages, "bytes_per_message": (after - before) / messages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--body-size", type=int, default=100)
    args = parser.parse_args()
    gc.freeze()
    report = {"throughput": throughput(args.messages, args.body_size),
              "memory": memory_per_message()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
