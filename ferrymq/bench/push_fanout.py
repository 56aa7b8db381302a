"""Browser-push fan-out: N WebSocket subscribers on one topic, one publisher at a paced rate.

    python -m ferrymq.bench.push_fanout --clients 1000 --rate 1000 --seconds 20

Starts a private ``ferrymq serve`` (or measures ``--url``), declares a topic exchange, opens the
clients in ``--procs`` processes (``push_client``), then publishes over AMQP at ``--rate``: every
body is the message's *intended* send time (CLOCK_MONOTONIC ns, shared by the processes), so a
stalled publisher shows as latency (no coordinated omission). Delivery latency = arrival at a
client - intended send, over every (message, client) pair sent in the measured window (after
``--warmup``). Reports p50/p90/p99/max, deliveries and skips (``lagged``), the broker's CPU and
RSS, the generator's CPU and the machine's load, as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from ferrymq.bench import histogram
from ferrymq.bench.procstat import machine_busy_seconds, proc_cpu_seconds, rss_kib
from ferrymq.bench.rabbitmq_node import free_port
from ferrymq.client.connection import Client
from ferrymq.protocols.amqp.client import encode_publish

EXCHANGE = "push-fanout"
ROUTING_KEY = "bench.fanout"
START_TIMEOUT_S = 30.0
DRAIN_S = 2.0  # after the last publish: time for the last deliveries to arrive before the tally
INTERVAL_MS = 1000


@contextmanager
def private_broker() -> Iterator[tuple[str, str, int]]:
    """``ferrymq serve`` on free ports and a fresh data directory: (http url, amqp url, pid)."""
    amqp, http = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="ferrymq-push-bench-") as data:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ferrymq.cli", "serve", "--amqp-port", str(amqp), "--kafka-port", "0",
             "--http-port", str(http), "--data-dir", data, "--log-level", "warning"],
            stdout=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{http}"
            wait_http(url, proc)
            yield url, f"amqp://guest:guest@127.0.0.1:{amqp}/%2F", proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:  # still working through a backlog: it owes us nothing
                proc.kill()
                proc.wait(5)


def wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ferrymq serve exited with {proc.returncode}")
        try:
            if requests.get(url + "/api/overview", auth=("guest", "guest"), timeout=1).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"ferrymq serve did not answer on {url}")


def start_clients(args: argparse.Namespace, url: str, work: str) -> list[subprocess.Popen[str]]:
    per, extra = divmod(args.clients, args.procs)
    procs = []
    for i in range(args.procs):
        n = per + (1 if i < extra else 0)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "ferrymq.bench.push_client", "--url", url, "--clients", str(n),
             "--exchange", EXCHANGE, "--key", "bench.%23", "--out", f"{work}/client-{i}.json"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"a client process did not get ready: {line!r}")
    return procs


def tell(procs: list[subprocess.Popen[str]], line: str) -> None:
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()


def publish_paced(amqp_url: str, rate: float, start_ns: int, end_ns: int, size: int) -> int:
    """One message per 1/rate from ``start_ns``, body = its intended send time (padded to ``size``);
    messages fallen due together go out in one write. How many were sent."""
    client = Client(amqp_url).open()
    step_ns, sent = int(1e9 / rate), 0
    try:
        while (due := start_ns + sent * step_ns) < end_ns:
            now = time.monotonic_ns()
            if now < due:
                time.sleep((due - now) / 1e9)
                continue
            batch = []
            while sent * step_ns + start_ns <= now and start_ns + sent * step_ns < end_ns:
                stamp = str(start_ns + sent * step_ns).encode()
                batch.append(encode_publish(1, EXCHANGE, ROUTING_KEY, stamp.ljust(size, b" ")))
                sent += 1
            client.sock.sendall(b"".join(batch))
    finally:
        client.close()
    return sent


def collect(procs: list[subprocess.Popen[str]], work: str) -> list[dict[str, Any]]:
    tell(procs, "stop")
    out = []
    for i, proc in enumerate(procs):
        proc.communicate(timeout=60)
        with open(f"{work}/client-{i}.json") as f:
            out.append(json.load(f))
    return out


def measure(args: argparse.Namespace, url: str, amqp_url: str, broker_pid: int) -> dict[str, Any]:
    r = requests.put(f"{url}/api/exchanges/%2F/{EXCHANGE}", json={"type": "topic"}, auth=("guest", "guest"))
    r.raise_for_status()
    with tempfile.TemporaryDirectory(prefix="ferrymq-push-clients-") as work:
        return _run(args, amqp_url, broker_pid, start_clients(args, url, work), work)


def _run(args: argparse.Namespace, amqp_url: str, broker_pid: int, procs: list[subprocess.Popen[str]],
         work: str) -> dict[str, Any]:
    try:
        origin = time.monotonic_ns() + int(0.5e9) + int(args.warmup * 1e9)
        tell(procs, f"go {origin} {INTERVAL_MS}")
        cpu0, busy0, wall0 = proc_cpu_seconds(broker_pid), machine_busy_seconds(), time.monotonic()
        gen0 = sum(proc_cpu_seconds(p.pid) for p in procs)
        sent = publish_paced(amqp_url, args.rate, origin - int(args.warmup * 1e9),
                             origin + int(args.seconds * 1e9), args.size)
        time.sleep(DRAIN_S)
        wall = time.monotonic() - wall0
        cpu, busy = proc_cpu_seconds(broker_pid) - cpu0, machine_busy_seconds() - busy0
        gen = sum(proc_cpu_seconds(p.pid) for p in procs) - gen0
        rss = rss_kib(broker_pid)
    finally:
        results = collect(procs, work)
    return report(args, results, sent, {"broker_cpu_pct": round(100 * cpu / wall, 1),
                                        "generator_cpu_pct": round(100 * gen / wall, 1),
                                        "machine_busy_pct": round(100 * busy / wall, 1),
                                        "broker_rss_mib": round(rss[0] / 1024, 1),
                                        "broker_rss_peak_mib": round(rss[1] / 1024, 1)})


def report(args: argparse.Namespace, results: list[dict[str, Any]], sent: int,
           cpu: dict[str, Any]) -> dict[str, Any]:
    parts = [histogram.decode({int(k): v.encode() for k, v in r["hist"].items()}) for r in results]
    window = histogram.merge(parts, 0, int(args.seconds * 1000 // INTERVAL_MS))
    measured = int(args.seconds * args.rate)
    return {
        "clients": args.clients, "rate": args.rate, "seconds": args.seconds, "size": args.size,
        "procs": args.procs, "published": sent,
        "expected_deliveries_in_window": measured * args.clients,
        "latency_ms": histogram.summary_ms(window),
        "delivered_total": sum(r["delivered"] for r in results),
        "skipped_total": sum(r["skipped"] for r in results),
        "closed_early": sum(r["closed_early"] for r in results),
        **cpu, "loadavg": os.getloadavg(),
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="browser-push fan-out: p50/p99 delivery latency")
    p.add_argument("--clients", type=int, default=1000)
    p.add_argument("--rate", type=float, default=1000.0, help="messages per second published")
    p.add_argument("--seconds", type=float, default=20.0, help="the measured window")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--size", type=int, default=64, help="body bytes (the stamp, padded)")
    p.add_argument("--procs", type=int, default=2, help="client processes")
    p.add_argument("--url", default="", help="measure a running broker's HTTP listener instead")
    p.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    p.add_argument("--broker-pid", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.url:
        result = measure(args, args.url.rstrip("/"), args.amqp_url, args.broker_pid)
        print(json.dumps(result, indent=2), flush=True)
        return
    with private_broker() as (url, amqp_url, pid):
        result = measure(args, url, amqp_url, pid)
        print(json.dumps(result, indent=2), flush=True)


if __name__ == "__main__":
    main()
