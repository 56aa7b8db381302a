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

from ferrymq.bench.amqp_wire import (
    ACK,
    BASIC_ACK,
    FRAME_END,
    METHOD,
    RECV_BYTES,
    Client,
    DeliveryScanner,
    PublishTemplate,
    reject_frame,
    set_recv_timeout,
)
from ferrymq.bench.histogram import IntervalHistograms
from ferrymq.bench.producer import Schedule, cpu_report, cpu_times

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


def consume(cfg: ConsumerConfig, client: Client, sched: Schedule,
            should_stop: Callable[[int], bool], publish_received: Callable[[int], None]) -> dict[str, Any]:
    """Consume until ``should_stop(completed)`` says so after the window (all that was published
    has arrived) or the drain time runs out. ``publish_received`` shares the running count."""
    sock = client.sock
    sock.settimeout(None)
    buf = client.buf
    scanner = DeliveryScanner()
    mono = time.monotonic_ns
    pack_ack = ACK.pack
    w0, w1, iv = sched.w0, sched.w1, sched.interval
    drain_end = w1 + int(cfg.drain_seconds * 1e9)
    task = cfg.fail_rate > 0
    # A multiple ack waits for N deliveries: N above the prefetch would wait for the idle flush.
    multi = 0 if task else max(0, min(cfg.multi_ack, cfg.prefetch or cfg.multi_ack))
    latency = IntervalHistograms(w0, iv)
    timeline: dict[int, int] = {}  # interval (receive time) -> deliveries
    tags: list[int] = []
    stamps: list[int] = []
    attempts: list[int] | None = [] if task else None
    retry = (PublishTemplate(cfg.queue, cfg.size, persistent=cfg.persistent, frame_max=client.frame_max)
             if task else None)
    rnd = random.Random(cfg.seed).random
    fail_rate, max_retries = cfg.fail_rate, cfg.max_retries
    work_s = cfg.work_us / 1e6
    received = in_window = completed = retried = dead = 0
    unacked_tag = unacked = 0
    at_w0: tuple[int, tuple[float, float]] | None = None
    at_w1: tuple[int, tuple[float, float]] | None = None
    reads = writes = last_tag = waits = 0
    last_check = 0
    data: bytes | None = bytes(buf) or None
    buf.clear()
    set_recv_timeout(sock, IDLE_S)
    recv = sock.recv
    while True:
        if data is None:
            try:
                data = recv(RECV_BYTES)  # blocks; BlockingIOError after IDLE_S without data
            except BlockingIOError:
                data = None
        now = mono()
        if at_w0 is None and now >= w0:
            at_w0 = (now, cpu_times())
        if at_w1 is None and now >= w1:
            at_w1 = (now, cpu_times())
        if data is None:  # idle: settle a partial multi-ack, check for the end
            waits += 1
            if unacked:
                sock.sendall(pack_ack(METHOD, 1, 13, BASIC_ACK, unacked_tag, 1, FRAME_END))
                unacked = 0
            publish_received(completed)
            if now >= w1 and (should_stop(completed) or now >= drain_end):
                break
            continue
        if not data:
            raise ConnectionError("broker closed the consumer's socket")
        reads += 1
        buf.extend(data)
        data = None
        consumed = scanner.feed(buf, tags, stamps, attempts)
        if consumed:
            del buf[:consumed]
        if task and tags:
            assert attempts is not None and retry is not None
            n = min(len(tags), len(stamps))  # a deliver whose body is in the next read waits
            if n:
                out = []
                ok: list[int] = []
                retried_before = retried
                for tag, ts, att in zip(tags[:n], stamps[:n], attempts[:n]):
                    if rnd() >= fail_rate:
                        ok.append(ts)
                        out.append(pack_ack(METHOD, 1, 13, BASIC_ACK, tag, 0, FRAME_END))
                    elif att < max_retries:
                        out.append(retry.retry(ts, att + 1))
                        out.append(pack_ack(METHOD, 1, 13, BASIC_ACK, tag, 0, FRAME_END))
                        retried += 1
                    else:
                        out.append(reject_frame(tag, False))
                        dead += 1
                if work_s:
                    time.sleep(work_s * n)
                sock.sendall(b"".join(out))
                writes += 1
                received += n
                # a job is complete when it succeeds or is dead-lettered; a retry is not
                completed += n - (retried - retried_before)
                last_tag = tags[n - 1]
                if w0 <= now < w1:
                    in_window += n
                k = (now - w0) // iv
                timeline[k] = timeline.get(k, 0) + n
                del tags[:n], stamps[:n], attempts[:n]
                latency.record(now, ok)
        elif tags:
            n = len(tags)
            if work_s:
                time.sleep(work_s * n)
            received += n
            completed += n
            last_tag = tags[-1]
            if w0 <= now < w1:
                in_window += n
            k = (now - w0) // iv
            timeline[k] = timeline.get(k, 0) + n
            if multi:
                unacked += n
                unacked_tag = tags[-1]
                if unacked >= multi:
                    sock.sendall(pack_ack(METHOD, 1, 13, BASIC_ACK, unacked_tag, 1, FRAME_END))
                    unacked = 0
                    writes += 1
            else:
                sock.sendall(b"".join([pack_ack(METHOD, 1, 13, BASIC_ACK, t, 0, FRAME_END)
                                       for t in tags]))
                writes += 1
            tags.clear()
            if stamps:
                latency.record(now, stamps)
                stamps.clear()
        if now >= w1 and now - last_check > 10_000_000:  # after the window: every 10 ms
            last_check = now
            publish_received(completed)
            if should_stop(completed) or now >= drain_end:
                break
        elif now - last_check > 50_000_000:
            last_check = now
            publish_received(completed)
    publish_received(completed)
    end = mono()
    if at_w0 is None:
        at_w0 = (end, cpu_times())
    if at_w1 is None:
        at_w1 = (end, cpu_times())
    wall = max(1e-9, (at_w1[0] - at_w0[0]) / 1e9)
    return {
        "consumed": received,
        "completed": completed,
        "retried": retried,
        "dead_lettered": dead,
        "window_seconds": wall,
        "window_consumed": in_window,
        **cpu_report(at_w0[1], at_w1[1], wall),
        "reads": reads,
        "writes": writes,
        "waits": waits,
        # the broker numbers deliveries 1, 2, ... per channel: an independent count
        "last_delivery_tag": last_tag,
        "timeline": timeline,
        "latency": latency.encode(),
        "drain_ms": max(0.0, (end - w1) / 1e6),
    }
