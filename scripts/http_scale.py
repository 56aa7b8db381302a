"""The HTTP plane at scale, beside RabbitMQ: 10,000 queues listed and scraped.

    python scripts/http_scale.py [--queues 10000] [--rounds 5] [--no-rabbitmq]

Declares N queues (one message each) over AMQP on an EmbeddedBroker and on a private RabbitMQ 3.10 with
rabbitmq_management and rabbitmq_prometheus, then times, per target and round: GET /api/queues (the whole
list), GET /api/queues?page=1&page_size=100, and the Prometheus scrape (FerryMQ /metrics; RabbitMQ's
/metrics/per-object, the endpoint with per-queue series). For FerryMQ it also reports the longest
event-loop stall seen during the requests (a 1 ms probe timer on the broker's loop).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import pika
import requests

from ferrymq import EmbeddedBroker

AUTH = ("guest", "guest")


def declare(url: str, count: int) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    for i in range(count):
        ch.queue_declare(f"scale-{i:05d}")
        ch.basic_publish("", f"scale-{i:05d}", b"x")
    conn.close()


def timed(url: str, auth: tuple[str, str] | None = AUTH) -> tuple[float, int]:
    t0 = time.perf_counter()
    r = requests.get(url, auth=auth, timeout=120)
    r.raise_for_status()
    return (time.perf_counter() - t0) * 1000, len(r.content)


class StallProbe:
    """A 1 ms timer on the broker's loop recording its worst lateness (the loop's longest stall)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop, self.worst_ms, self.last = loop, 0.0, 0.0
        self.running = True
        loop.call_soon_threadsafe(self._arm)

    def _arm(self) -> None:
        self.last = time.perf_counter()
        self.loop.call_later(0.001, self._tick)

    def _tick(self) -> None:
        late = (time.perf_counter() - self.last) * 1000 - 1
        self.worst_ms = max(self.worst_ms, late)
        if self.running:
            self._arm()

    def take(self) -> float:
        worst, self.worst_ms = self.worst_ms, 0.0
        return worst


def rounds(name: str, urls: dict[str, str], count: int, probe: StallProbe | None) -> None:
    for what, url in urls.items():
        times, stalls, size = [], [], 0
        for _ in range(count):
            if probe:
                probe.take()
            ms, size = timed(url, None if what == "scrape" else AUTH)
            times.append(ms)
            if probe:
                stalls.append(probe.take())
        stall = f", worst loop stall {max(stalls):.1f} ms" if stalls else ""
        print(f"{name:9s} {what:14s} median {statistics.median(times):7.1f} ms  "
              f"min {min(times):7.1f}  max {max(times):7.1f}  ({size:,} bytes){stall}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queues", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-rabbitmq", action="store_true")
    args = ap.parse_args()
    with EmbeddedBroker(data_dir="") as broker:
        declare(broker.amqp_url, args.queues)
        assert broker._loop is not None
        probe = StallProbe(broker._loop)
        base = broker.http_url
        urls = {"list": f"{base}/api/queues", "page 100": f"{base}/api/queues?page=1&page_size=100",
                "scrape": f"{base}/metrics"}
        rounds("ferrymq", urls, args.rounds, probe)
        probe.running = False
    if args.no_rabbitmq:
        return
    from ferrymq.bench.rabbitmq_node import start_rabbitmq

    node = start_rabbitmq(management=True)
    try:
        declare(node.amqp_url, args.queues)
        time.sleep(10)  # the management database collects stats every 5 s
        m = node.management_url
        rounds("rabbitmq", {"list": f"{m}/api/queues", "page 100": f"{m}/api/queues?page=1&page_size=100",
                            "scrape": f"{node.prometheus_url}/metrics/per-object"}, args.rounds, None)
    finally:
        node.stop()


if __name__ == "__main__":
    main()
