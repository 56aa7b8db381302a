"""/metrics at scale: N queues scraped from another process, the broker loop's worst stall measured.

    python scripts/metrics_scale.py [--queues 10000] [--rounds 5] [--histograms]

The broker (an EmbeddedBroker with a 1 ms probe timer on its loop) runs in a child process, so the
scraping client's CPU and GIL are not the broker's. The probe reports the worst gap between its
ticks in wall time and, separately, the loop thread's own CPU time in a gap: on a shared machine a
wall gap can be the OS running someone else; CPU time in a gap is the loop being busy itself.
``--histograms`` gets one message from every queue first, so each has a time-in-queue histogram.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time
from typing import Any

import requests

from ferrymq import EmbeddedBroker


class Probe:
    def __init__(self, loop: Any) -> None:
        self.loop, self.running = loop, True
        self.worst_wall = self.worst_cpu = 0.0
        loop.call_soon_threadsafe(self._arm)

    def _arm(self) -> None:
        self.last, self.last_cpu = time.perf_counter(), time.thread_time()
        self.loop.call_later(0.001, self._tick)

    def _tick(self) -> None:
        self.worst_wall = max(self.worst_wall, (time.perf_counter() - self.last) * 1000 - 1)
        self.worst_cpu = max(self.worst_cpu, (time.thread_time() - self.last_cpu) * 1000)
        if self.running:
            self._arm()


def serve(queues: int, histograms: bool, conn: Any) -> None:
    import pika

    with EmbeddedBroker(data_dir="") as broker:
        c = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        ch = c.channel()
        for i in range(queues):
            ch.queue_declare(f"scale-{i:05d}")
            ch.basic_publish("", f"scale-{i:05d}", b"x")
        c.close()
        if histograms:
            assert broker.running is not None
            core = broker.running.broker
            broker.call(lambda: [q.get() for q in list(core.vhosts["/"].queues.values())])
        probe = Probe(broker._loop)
        time.sleep(0.3)
        probe.worst_wall = probe.worst_cpu = 0.0
        cpu0 = time.process_time()
        conn.send(broker.http_url)
        conn.recv()
        probe.running = False
        conn.send((probe.worst_wall, probe.worst_cpu, time.process_time() - cpu0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queues", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--histograms", action="store_true")
    args = ap.parse_args()
    parent, child = mp.Pipe()
    proc = mp.Process(target=serve, args=(args.queues, args.histograms, child))
    proc.start()
    url = parent.recv()
    times, size = [], 0
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        resp = requests.get(url + "/metrics", timeout=120)
        resp.raise_for_status()
        times.append((time.perf_counter() - t0) * 1000)
        size = len(resp.content)
    parent.send("done")
    wall, cpu, broker_cpu = parent.recv()
    proc.join()
    print(f"{args.queues} queues: scrape median {statistics.median(times):.0f} ms (min {min(times):.0f}, "
          f"max {max(times):.0f}), {size:,} bytes; broker CPU {broker_cpu / args.rounds * 1000:.0f} ms "
          f"a scrape; worst loop gap {wall:.1f} ms wall, worst loop-busy gap {cpu:.1f} ms CPU")


if __name__ == "__main__":
    main()
