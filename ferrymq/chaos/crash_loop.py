"""The kill -9 loop: a real broker process, a confirming producer and an acking consumer, killed at
random moments and restarted on the same data directory; then the books are checked.

What "nothing confirmed is lost" means here, precisely:
- every message the broker confirmed is, by the end, delivered and acked (the final drain runs on a
  broker that is stopped cleanly). An ack written to the socket just before a kill may or may not
  have been processed; either way the message counts as consumed (if it was not processed, the
  broker must deliver it again, and the drain acks it);
- a message whose ack the broker is known to have processed is never delivered again. An ack is known
  processed once a later request on the same channel got its reply (the broker writes its logs before
  it answers), so duplicates are allowed only for deliveries whose ack was still in flight at the kill.

Clients are pika's BlockingConnection (a real third-party client) in two threads.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pika
import pika.exceptions

from ferrymq.chaos.broker import BrokerProcess, free_port

QUEUE = "crash-loop"
ACK_CHECK_EVERY = 25


@dataclass
class Books:
    """What the clients saw, across every cycle."""

    confirmed: set[int] = field(default_factory=set)
    ack_sent: set[int] = field(default_factory=set)  # acks written to the socket
    acked: set[int] = field(default_factory=set)  # acks the broker is known to have processed
    deliveries: Counter[int] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    next_id: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self, msg_id: int) -> None:
        with self.lock:
            if msg_id in self.acked:
                self.violations.append(f"message {msg_id} delivered again after its ack was processed")
            self.deliveries[msg_id] += 1

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.deliveries.values() if n > 1)

    def lost(self) -> set[int]:
        """Confirmed, yet no delivery of it was ever acked: the broker dropped it."""
        return self.confirmed - self.ack_sent


def _params(port: int) -> pika.ConnectionParameters:
    return pika.ConnectionParameters("127.0.0.1", port, connection_attempts=1, socket_timeout=5,
                                     blocked_connection_timeout=30, heartbeat=0)


def produce(port: int, books: Books, stop: threading.Event, size: int = 100) -> None:
    try:
        conn = pika.BlockingConnection(_params(port))
        ch = conn.channel()
        ch.queue_declare(QUEUE, durable=True)
        ch.confirm_delivery()
        props = pika.BasicProperties(delivery_mode=2)
        pad = b"x" * size
        while not stop.is_set():
            with books.lock:
                msg_id = books.next_id
                books.next_id += 1
            ch.basic_publish("", QUEUE, str(msg_id).encode() + b" " + pad, props, mandatory=True)
            with books.lock:
                books.confirmed.add(msg_id)
        conn.close()
    except (pika.exceptions.AMQPError, OSError):
        pass  # the broker was killed under us: whatever was not confirmed may or may not be there


def consume(port: int, books: Books, stop: threading.Event, idle_stop_s: float | None = None) -> None:
    """Ack every delivery; every few acks, a round trip proves the broker processed them."""
    try:
        conn = pika.BlockingConnection(_params(port))
        ch = conn.channel()
        ch.queue_declare(QUEUE, durable=True)
        ch.basic_qos(prefetch_count=50)
        unproven: list[int] = []
        idle_since = time.monotonic()
        for method, _props, body in ch.consume(QUEUE, inactivity_timeout=0.05):
            if method is not None:
                msg_id = int(body.split(b" ", 1)[0])
                books.delivered(msg_id)
                ch.basic_ack(method.delivery_tag)  # pika writes it to the socket before returning
                with books.lock:
                    books.ack_sent.add(msg_id)
                unproven.append(msg_id)
                idle_since = time.monotonic()
            if unproven and (method is None or len(unproven) >= ACK_CHECK_EVERY):
                ch.queue_declare(QUEUE, durable=True, passive=True)  # its reply proves the acks
                with books.lock:
                    books.acked.update(unproven)
                unproven.clear()
            if stop.is_set() or (idle_stop_s is not None and time.monotonic() - idle_since > idle_stop_s):
                break
        ch.cancel()
        conn.close()
    except (pika.exceptions.AMQPError, OSError):
        pass


@dataclass
class LoopReport:
    cycles: int
    seed: int
    confirmed: int
    acked: int
    duplicates: int
    lost: list[int]
    violations: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.lost and not self.violations


def run(workdir: Path, cycles: int, seed: int | None = None, run_s: tuple[float, float] = (0.3, 1.2),
        fsync: str = "always") -> LoopReport:
    """``cycles`` kill -9 cycles, then a clean restart that drains the queue; returns the books."""
    seed = seed if seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    started = time.monotonic()
    data = workdir / "data"
    broker = BrokerProcess(data, free_port(), fsync)
    books = Books()
    for _ in range(cycles):
        broker.start()
        stop = threading.Event()
        threads = [threading.Thread(target=produce, args=(broker.port, books, stop), daemon=True),
                   threading.Thread(target=consume, args=(broker.port, books, stop), daemon=True)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(*run_s))
        broker.kill9()
        stop.set()
        for t in threads:
            t.join(15)
    broker.start()
    drain_stop = threading.Event()
    consume(broker.port, books, drain_stop, idle_stop_s=1.0)
    broker.stop()
    return LoopReport(cycles, seed, len(books.confirmed), len(books.acked), books.duplicates,
                      sorted(books.lost())[:20], books.violations[:20], time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile

    p = argparse.ArgumentParser(description="kill -9 loop against a real ferrymq serve")
    p.add_argument("--cycles", type=int, default=20)
    p.add_argument("--seed", type=int)
    p.add_argument("--fsync", default="always")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ferrymq-crash-") as tmp:
        report = run(Path(tmp), args.cycles, args.seed, fsync=args.fsync)
    print(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
