"""The consuming side of the load generator: one process, one connection, manual acks.

Reads are blocking (one syscall each, with a kernel receive timeout to notice idleness). Each
read (up to 256 KiB) is scanned once with struct for basic.deliver tags and the send time
at the start of each body; the acks for everything in that read go out in one write: one
``basic.ack`` per delivery, or with ``multi_ack = N`` one ``multiple=True`` ack once N deliveries
are unacked (and whenever the socket goes idle, so a small prefetch cannot stall).

Task mode (``fail_rate > 0``): each delivery is a job that fails with that probability; a failed
job is republished with its attempt count raised (and its original send time kept) and the
delivery acked, until ``max_retries``; then it is rejected without requeue, and the broker
dead-letters it. ``work_us`` simulates processing time per delivery (a slow consumer).

Latency is (time the read returned) - (send time in the body), both ``time.monotonic_ns()``,
which is one system-wide clock for every process on the machine.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ferrymq.bench.histogram import IntervalHistograms
from ferrymq.bench.producer import Schedule, cpu_report, cpu_times
from ferrymq.bench.traffic import DeliveryScanner, PublishTemplate
from ferrymq.client.connection import CHANNEL, RECV_BYTES, Client, set_recv_timeout
from ferrymq.protocols.amqp import client as codec

IDLE_S = 0.005  # a read that waits this long counts as idle (flushes a partial multi-ack)


@dataclass(frozen=True)
class ConsumerConfig:
    url: str
    queue: str
    prefetch: int = 500
    multi_ack: int = 0  # 0: ack every delivery; N: one multiple ack per N deliveries
    drain_seconds: float = 10.0  # after the run, keep consuming this long at most
    nodelay: bool = True  # TCP_NODELAY
    consume_args: dict[str, Any] = field(default_factory=dict)
    fail_rate: float = 0.0
    max_retries: int = 3
    size: int = 100  # body size of republished (retried) jobs
    persistent: bool = False
    work_us: float = 0.0
    seed: int = 1


def connect(cfg: ConsumerConfig) -> Client:
    client = Client(cfg.url, nodelay=cfg.nodelay).open()
    client.consume(cfg.queue, cfg.prefetch, arguments=cfg.consume_args or None)
    return client


class _Consumer:
    """One consumer run's state: ``consume`` calls ``on_read`` per read and ``on_idle`` per
    read timeout."""

    def __init__(self, cfg: ConsumerConfig, client: Client, sched: Schedule) -> None:
        self.cfg, self.sched, self.sock = cfg, sched, client.sock
        self.scanner = DeliveryScanner()
        self.task = cfg.fail_rate > 0
        # A multiple ack waits for N deliveries: N above the prefetch would wait for the idle flush.
        self.multi = 0 if self.task else max(0, min(cfg.multi_ack, cfg.prefetch or cfg.multi_ack))
        self.latency = IntervalHistograms(sched.w0, sched.interval)
        self.timeline: dict[int, int] = {}  # interval (receive time) -> deliveries
        self.tags: list[int] = []
        self.stamps: list[int] = []
        self.attempts: list[int] | None = [] if self.task else None
        self.retry = (PublishTemplate(cfg.queue, cfg.size, persistent=cfg.persistent,
                                      frame_max=client.frame_max) if self.task else None)
        self.rnd = random.Random(cfg.seed).random
        self.received = self.in_window = self.completed = self.retried = self.dead = 0
        self.unacked_tag = self.unacked = 0
        self.reads = self.writes = self.last_tag = self.waits = 0

    def flush_multi_ack(self) -> None:
        if self.unacked:
            self.sock.sendall(codec.encode_ack(CHANNEL, self.unacked_tag, True))
            self.unacked = 0

    def count(self, now: int, n: int, completed: int, last_tag: int) -> None:
        self.received += n
        self.completed += completed
        self.last_tag = last_tag
        if self.sched.w0 <= now < self.sched.w1:
            self.in_window += n
        k = (now - self.sched.w0) // self.sched.interval
        self.timeline[k] = self.timeline.get(k, 0) + n

    def on_read(self, buf: bytearray, now: int) -> None:
        self.reads += 1
        consumed = self.scanner.feed(buf, self.tags, self.stamps, self.attempts)
        if consumed:
            del buf[:consumed]
        if self.task:
            self.jobs(now)
        elif self.tags:
            self.deliveries(now)

    def deliveries(self, now: int) -> None:
        """Plain consumer: ack everything in this read (or count it toward a multiple ack)."""
        tags, n = self.tags, len(self.tags)
        if self.cfg.work_us:
            time.sleep(self.cfg.work_us / 1e6 * n)
        self.count(now, n, n, tags[-1])
        if self.multi:
            self.unacked += n
            self.unacked_tag = tags[-1]
            if self.unacked >= self.multi:
                self.flush_multi_ack()
                self.writes += 1
        else:
            self.sock.sendall(codec.encode_acks(CHANNEL, tags))
            self.writes += 1
        tags.clear()
        if self.stamps:
            self.latency.record(now, self.stamps)
            self.stamps.clear()

    def jobs(self, now: int) -> None:
        """Task mode: each delivery succeeds, is retried (republished, attempt + 1) or, past
        ``max_retries``, rejected into the dead-letter queue; all answered in one write."""
        tags, stamps, attempts = self.tags, self.stamps, self.attempts
        assert attempts is not None and self.retry is not None
        n = min(len(tags), len(stamps))  # a deliver whose body is in the next read waits
        if not n:
            return
        out: list[bytes] = []
        ok: list[int] = []
        retried_before = self.retried
        for tag, ts, att in zip(tags[:n], stamps[:n], attempts[:n]):
            out.append(self.job(tag, ts, att, ok))
        if self.cfg.work_us:
            time.sleep(self.cfg.work_us / 1e6 * n)
        self.sock.sendall(b"".join(out))
        self.writes += 1
        # a job is complete when it succeeds or is dead-lettered; a retry is not
        self.count(now, n, n - (self.retried - retried_before), tags[n - 1])
        del tags[:n], stamps[:n], attempts[:n]
        self.latency.record(now, ok)

    def job(self, tag: int, ts: int, attempt: int, ok: list[int]) -> bytes:
        assert self.retry is not None
        if self.rnd() >= self.cfg.fail_rate:
            ok.append(ts)
            return codec.encode_ack(CHANNEL, tag)
        if attempt < self.cfg.max_retries:
            self.retried += 1
            return self.retry.retry(ts, attempt + 1) + codec.encode_ack(CHANNEL, tag)
        self.dead += 1
        return codec.encode_reject(CHANNEL, tag, False)

    def report(self, end: int, at_w0: tuple[int, tuple[float, float]] | None,
               at_w1: tuple[int, tuple[float, float]] | None) -> dict[str, Any]:
        w0 = at_w0 or (end, cpu_times())
        w1 = at_w1 or (end, cpu_times())
        wall = max(1e-9, (w1[0] - w0[0]) / 1e9)
        return {
            "consumed": self.received, "completed": self.completed, "retried": self.retried,
            "dead_lettered": self.dead, "window_seconds": wall, "window_consumed": self.in_window,
            **cpu_report(w0[1], w1[1], wall), "reads": self.reads, "writes": self.writes,
            "waits": self.waits,
            # the broker numbers deliveries 1, 2, ... per channel: an independent count
            "last_delivery_tag": self.last_tag, "timeline": self.timeline,
            "latency": self.latency.encode(), "drain_ms": max(0.0, (end - self.sched.w1) / 1e6),
        }


def consume(cfg: ConsumerConfig, client: Client, sched: Schedule,
            should_stop: Callable[[int], bool], publish_received: Callable[[int], None]) -> dict[str, Any]:
    """Consume until ``should_stop(completed)`` says so after the window (all that was published
    has arrived) or the drain time runs out. ``publish_received`` shares the running count."""
    run = _Consumer(cfg, client, sched)
    buf, mono, recv = client.buf, time.monotonic_ns, client.sock.recv
    drain_end = sched.w1 + int(cfg.drain_seconds * 1e9)
    at_w0: tuple[int, tuple[float, float]] | None = None
    at_w1: tuple[int, tuple[float, float]] | None = None
    last_check = 0
    pending = bool(buf)  # deliveries that came with consume-ok
    set_recv_timeout(client.sock, IDLE_S)
    while True:
        try:
            data = b"" if pending else recv(RECV_BYTES)  # BlockingIOError after IDLE_S idle
        except BlockingIOError:
            data = None
        now = mono()
        if at_w0 is None and now >= sched.w0:
            at_w0 = (now, cpu_times())
        if at_w1 is None and now >= sched.w1:
            at_w1 = (now, cpu_times())
        if data is None:  # idle: settle a partial multi-ack, check for the end
            run.waits += 1
            run.flush_multi_ack()
            publish_received(run.completed)
            if now >= sched.w1 and (should_stop(run.completed) or now >= drain_end):
                break
            continue
        if not data and not pending:
            raise ConnectionError("broker closed the consumer's socket")
        pending = False
        buf.extend(data)
        run.on_read(buf, now)
        if now - last_check > (10_000_000 if now >= sched.w1 else 50_000_000):  # 10 ms after the window
            last_check = now
            publish_received(run.completed)
            if now >= sched.w1 and (should_stop(run.completed) or now >= drain_end):
                break
    publish_received(run.completed)
    return run.report(mono(), at_w0, at_w1)
