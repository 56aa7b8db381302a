"""The publishing side of the load generator: one process, one connection, one blocking socket.

Unpaced (``max``): publish as fast as the confirm window allows, in writes of up to ``batch``
publishes while the window has room, and read confirms (one blocking read, which brings all
that arrived meanwhile) only when it has none: one syscall per write or read, no polling.
Fire-and-forget (``window == 0``): write batches back to back; TCP backpressure (RabbitMQ's
credit flow, FerryMQ's flow control) is the only brake.

Paced (``steady``, ``bursty``): message i has an intended send time from the ``Pacer`` and
carries that time (not the time it was written) in its body, so a broker that stalls the
publisher shows up in the latency instead of silently lowering the offered load (coordinated
omission). Confirm latency is measured per write, from the stamp of the write's last message.
"""

from __future__ import annotations

import resource
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ferrymq.bench.amqp_wire import (
    RECV_BYTES,
    Client,
    ConfirmTracker,
    PublishTemplate,
    check_for_close,
    set_recv_timeout,
)
from ferrymq.bench.histogram import IntervalHistograms
from ferrymq.bench.pacing import Pacer

MIN_GAP_S = 0.0002  # paced mode: the shortest sleep between writes


@dataclass(frozen=True)
class ProducerConfig:
    url: str
    routing_key: str
    exchange: str = ""
    size: int = 100
    window: int = 500  # unconfirmed publishes allowed; 0 = no confirms (fire-and-forget)
    persistent: bool = False
    pacer: Pacer = field(default_factory=Pacer)
    batch: int = 100  # publishes per write, at most
    drain_seconds: float = 10.0  # after the run, wait this long at most for outstanding confirms
    nodelay: bool = True  # TCP_NODELAY


@dataclass(frozen=True)
class Schedule:
    """Monotonic ns: traffic starts at ``start``, is measured over [w0, w1), stops at w1;
    timeline intervals of ``interval`` ns count from w0."""
    start: int
    w0: int
    w1: int
    interval: int = 500_000_000


def cpu_times() -> tuple[float, float]:
    """(user, system) CPU seconds of this process."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def cpu_report(t0: tuple[float, float], t1: tuple[float, float], wall: float) -> dict[str, float]:
    user, system = (t1[0] - t0[0]) / wall, (t1[1] - t0[1]) / wall
    return {"cpu_fraction": user + system, "cpu_user": user, "cpu_system": system}


def connect(cfg: ProducerConfig) -> tuple[Client, PublishTemplate]:
    """Open a connection (the topology is declared beforehand by the orchestrator)."""
    client = Client(cfg.url, nodelay=cfg.nodelay).open()
    if cfg.window:
        client.confirm_select()
    return client, PublishTemplate(cfg.routing_key, cfg.size, persistent=cfg.persistent,
                                   frame_max=client.frame_max, exchange=cfg.exchange)


def produce(cfg: ProducerConfig, client: Client, tmpl: PublishTemplate, sched: Schedule,
            progress: Any = None) -> dict[str, Any]:
    """Run the schedule; returns counts for the whole run and for the measured window.
    ``progress``, when given, is a one-slot shared counter updated with the publish count."""
    sock = client.sock
    set_recv_timeout(sock, 0.05)  # blocking reads that give up after 50 ms
    buf = client.buf
    tracker = ConfirmTracker()
    mono = time.monotonic_ns
    window, batch = cfg.window, max(1, cfg.batch)
    pacer = cfg.pacer
    iv, w0 = sched.interval, sched.w0
    timeline: dict[int, int] = {}  # interval -> publishes written in it
    confirm_lat = IntervalHistograms(w0, iv)
    inflight: deque[tuple[int, int, int]] = deque()  # (last tag of a write, its stamp, count)
    sent = writes = reads = 0
    at_w0: tuple[int, int, int, tuple[float, float]] | None = None  # (t, sent, acked, cpu)

    def settle_latency(now: int) -> None:
        upto = tracker.upto
        while inflight and inflight[0][0] <= upto:
            _, stamp, n = inflight.popleft()
            if w0 <= stamp < sched.w1:
                confirm_lat.record_many(stamp, (now - stamp) // 1000, n)

    def harvest(flags: int = 0) -> None:
        """One read (blocking up to the receive timeout unless flags say otherwise); counts
        the confirms in it."""
        nonlocal reads
        try:
            data = sock.recv(RECV_BYTES, flags)
        except BlockingIOError:
            return
        if not data:
            raise ConnectionError("broker closed the producer's socket")
        reads += 1
        buf.extend(data)
        consumed = tracker.feed(buf) if window else check_for_close(buf)
        if consumed:
            del buf[:consumed]
        if window and inflight:
            settle_latency(mono())

    def wrote(now: int, n: int, stamp: int) -> None:
        nonlocal sent, writes
        sent += n
        writes += 1
        k = (now - w0) // iv
        timeline[k] = timeline.get(k, 0) + n
        if window:
            inflight.append((sent, stamp, n))
        if progress is not None and writes % 16 == 0:
            progress.value = sent

    sleep_until(sched.start)
    start = mono()
    if buf:
        consumed = tracker.feed(buf) if window else check_for_close(buf)
        del buf[:consumed]
    while True:
        now = mono()
        if at_w0 is None and now >= w0:
            at_w0 = (now, sent, tracker.acked, cpu_times())
        if now >= sched.w1:
            break
        if pacer.paced:
            # Everything due by now, each stamped with its intended send time.
            due = pacer.due(now - start) - sent
            room = min(due, window - (sent - tracker.settled)) if window else due
            n = min(room, batch * 10)
            if n > 0:
                stamps = [start + pacer.intended_ns(i) for i in range(sent, sent + n)]
                sock.sendall(tmpl.stamped(stamps))
                wrote(now, n, stamps[-1])
            if window and sent - tracker.settled >= window:
                harvest()  # window full: wait for confirms
            else:
                # Sleep until the next message is due, but at least MIN_GAP_S: at high rates
                # a wake-up per message (or per confirm) would cost more than the sends.
                next_due = start + pacer.intended_ns(sent)
                time.sleep(min(0.05, max(MIN_GAP_S, (next_due - mono()) / 1e9)))
                harvest(socket.MSG_DONTWAIT)
            continue
        if not pacer.is_on(now - start):
            time.sleep(min(0.01, max(0.0, (start + pacer.next_on_ns(now - start) - now) / 1e9)))
            if window:
                harvest(socket.MSG_DONTWAIT)
            continue
        if window:
            # Keep the window full: write whenever there is room, read only when there is
            # none. Each read brings the confirms that arrived meanwhile, usually many.
            room = window - (sent - tracker.settled)
            if room > 0:
                n = min(room, batch)
                sock.sendall(tmpl.same_time(now, n))
                wrote(now, n, now)
            else:
                harvest()
        else:
            sock.sendall(tmpl.same_time(now, batch))
            wrote(now, batch, now)
            if writes % 64 == 0:
                harvest(socket.MSG_DONTWAIT)  # only to notice a close from the broker
    end = mono()
    cpu_end = cpu_times()
    acked_w1 = tracker.acked
    if at_w0 is None:  # zero-length window
        at_w0 = (end, sent, acked_w1, cpu_end)
    # Drain: wait for the confirms still outstanding (not counted in the window's rates).
    drain_deadline = end + int(cfg.drain_seconds * 1e9)
    while window and tracker.settled < sent and mono() < drain_deadline:
        harvest()
    if progress is not None:
        progress.value = sent
    drained_ms = (mono() - end) / 1e6
    w_t0, w_sent0, w_acked0, w_cpu0 = at_w0
    wall = max(1e-9, (end - w_t0) / 1e9)
    return {
        "published": sent,
        "confirmed": tracker.acked,
        "nacked": tracker.nacked,
        "unconfirmed": (sent - tracker.settled) if window else None,
        "window_seconds": wall,
        "window_published": sent - w_sent0,
        "window_confirmed": acked_w1 - w_acked0,
        **cpu_report(w_cpu0, cpu_end, wall),
        "writes": writes,
        "reads": reads,
        "drain_ms": drained_ms,
        "run_seconds": (end - start) / 1e9,
        "timeline": timeline,
        "confirm_latency": confirm_lat.encode(),
    }


def sleep_until(t_ns: int) -> None:
    while True:
        left = t_ns - time.monotonic_ns()
        if left <= 0:
            return
        time.sleep(min(left / 1e9, 0.05))
