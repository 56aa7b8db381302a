"""The consuming side of the load generator: one process, one connection, manual acks.

Reads are blocking (one syscall each, with a kernel receive timeout to notice idleness). Each
read (up to 256 KiB) is scanned once with struct for basic.deliver tags and the send time
at the start of each body; the acks for everything in that read go out in one write: one
``basic.ack`` per delivery, or with ``multi_ack = N`` one ``multiple=True`` ack once N deliveries
are unacked (and whenever the socket goes idle, so a small prefetch cannot stall).

Latency is (time the read returned) - (send time in the body), both ``time.monotonic_ns()``,
which is one system-wide clock for every process on the machine.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ferrymq.bench.amqp_wire import (
    ACK,
    BASIC_ACK,
    FRAME_END,
    METHOD,
    RECV_BYTES,
    Client,
    DeliveryScanner,
    set_recv_timeout,
)
from ferrymq.bench.producer import Schedule, cpu_report, cpu_times

IDLE_S = 0.005  # a read that waits this long counts as idle (flushes a partial multi-ack)


@dataclass(frozen=True)
class ConsumerConfig:
    url: str
    queue: str
    prefetch: int = 500
    durable: bool = False
    multi_ack: int = 0  # 0: ack every delivery; N: one multiple ack per N deliveries
    drain_seconds: float = 10.0  # after the run, keep consuming this long at most
    nodelay: bool = True  # TCP_NODELAY


def connect(cfg: ConsumerConfig) -> Client:
    client = Client(cfg.url, nodelay=cfg.nodelay).open()
    client.declare_queue(cfg.queue, durable=cfg.durable)
    client.consume(cfg.queue, cfg.prefetch)
    return client


def consume(cfg: ConsumerConfig, client: Client, sched: Schedule,
            should_stop: Callable[[int], bool], publish_received: Callable[[int], None]) -> dict[str, Any]:
    """Consume until ``should_stop(received)`` says so after the window (all that was published
    has arrived) or the drain time runs out. ``publish_received`` shares the running count."""
    sock = client.sock
    sock.settimeout(None)
    buf = client.buf
    scanner = DeliveryScanner()
    mono = time.monotonic_ns
    pack_ack = ACK.pack
    w0, w1 = sched.w0, sched.w1
    drain_end = w1 + int(cfg.drain_seconds * 1e9)
    # A multiple ack waits for N deliveries: N above the prefetch would wait for the idle flush.
    multi = max(0, min(cfg.multi_ack, cfg.prefetch or cfg.multi_ack))
    latencies = array("q")
    tags: list[int] = []
    stamps: list[int] = []
    received = in_window = 0
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
            if now >= w1 and (should_stop(received) or now >= drain_end):
                break
            continue
        if not data:
            raise ConnectionError("broker closed the consumer's socket")
        reads += 1
        buf.extend(data)
        data = None
        consumed = scanner.feed(buf, tags, stamps)
        if consumed:
            del buf[:consumed]
        if tags:
            n = len(tags)
            received += n
            last_tag = tags[-1]
            if w0 <= now < w1:
                in_window += n
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
            latencies.extend([now - ts for ts in stamps if w0 <= ts < w1])
            stamps.clear()
        if now >= w1 and now - last_check > 10_000_000:  # after the window: every 10 ms
            last_check = now
            publish_received(received)
            if should_stop(received) or now >= drain_end:
                break
        elif now - last_check > 50_000_000:
            last_check = now
            publish_received(received)
    publish_received(received)
    end = mono()
    if at_w0 is None:
        at_w0 = (end, cpu_times())
    if at_w1 is None:
        at_w1 = (end, cpu_times())
    wall = max(1e-9, (at_w1[0] - at_w0[0]) / 1e9)
    return {
        "consumed": received,
        "window_seconds": wall,
        "window_consumed": in_window,
        **cpu_report(at_w0[1], at_w1[1], wall),
        "reads": reads,
        "writes": writes,
        "waits": waits,
        # the broker numbers deliveries 1, 2, ... per channel: an independent count
        "last_delivery_tag": last_tag,
        "latency_ns": latencies.tobytes(),
        "drain_ms": max(0.0, (end - w1) / 1e6),
    }
