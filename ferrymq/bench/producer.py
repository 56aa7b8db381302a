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

from ferrymq.bench.histogram import IntervalHistograms
from ferrymq.bench.pacing import Pacer
from ferrymq.bench.traffic import ConfirmTracker, PublishTemplate, check_for_close
from ferrymq.client.connection import RECV_BYTES, Client, set_recv_timeout

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


class _Producer:
    """One producer run's state: the loop in ``produce`` calls one step per write or read."""

    def __init__(self, cfg: ProducerConfig, client: Client, tmpl: PublishTemplate, sched: Schedule,
                 progress: Any) -> None:
        self.cfg, self.tmpl, self.sched, self.progress = cfg, tmpl, sched, progress
        self.sock, self.buf = client.sock, client.buf
        self.tracker = ConfirmTracker()
        self.window, self.batch, self.pacer = cfg.window, max(1, cfg.batch), cfg.pacer
        self.timeline: dict[int, int] = {}  # interval -> publishes written in it
        self.confirm_lat = IntervalHistograms(sched.w0, sched.interval)
        self.inflight: deque[tuple[int, int, int]] = deque()  # (last tag of a write, its stamp, count)
        self.sent = self.writes = self.reads = self.start = 0
        self.at_w0: tuple[int, int, int, tuple[float, float]] | None = None  # (t, sent, acked, cpu)

    def scan(self) -> None:
        buf = self.buf
        consumed = self.tracker.feed(buf) if self.window else check_for_close(buf)
        if consumed:
            del buf[:consumed]

    def harvest(self, flags: int = 0) -> None:
        """One read (blocking up to the receive timeout unless flags say otherwise); counts
        the confirms in it."""
        try:
            data = self.sock.recv(RECV_BYTES, flags)
        except BlockingIOError:
            return
        if not data:
            raise ConnectionError("broker closed the producer's socket")
        self.reads += 1
        self.buf.extend(data)
        self.scan()
        if self.window and self.inflight:
            self.settle_latency(time.monotonic_ns())

    def settle_latency(self, now: int) -> None:
        upto, inflight, sched = self.tracker.upto, self.inflight, self.sched
        while inflight and inflight[0][0] <= upto:
            _, stamp, n = inflight.popleft()
            if sched.w0 <= stamp < sched.w1:
                self.confirm_lat.record_many(stamp, (now - stamp) // 1000, n)

    def write(self, data: bytes, now: int, n: int, stamp: int) -> None:
        self.sock.sendall(data)
        self.sent += n
        self.writes += 1
        k = (now - self.sched.w0) // self.sched.interval
        self.timeline[k] = self.timeline.get(k, 0) + n
        if self.window:
            self.inflight.append((self.sent, stamp, n))
        if self.progress is not None and self.writes % 16 == 0:
            self.progress.value = self.sent

    def unconfirmed(self) -> int:
        return self.sent - self.tracker.settled

    def paced_step(self, now: int) -> None:
        """Everything due by now, each stamped with its intended send time."""
        pacer, window, start = self.pacer, self.window, self.start
        due = pacer.due(now - start) - self.sent
        n = min(min(due, window - self.unconfirmed()) if window else due, self.batch * 10)
        if n > 0:
            stamps = [start + pacer.intended_ns(i) for i in range(self.sent, self.sent + n)]
            self.write(self.tmpl.stamped(stamps), now, n, stamps[-1])
        if window and self.unconfirmed() >= window:
            self.harvest()  # window full: wait for confirms
            return
        # Sleep until the next message is due, but at least MIN_GAP_S: at high rates a wake-up
        # per message (or per confirm) would cost more than the sends.
        next_due = start + pacer.intended_ns(self.sent)
        time.sleep(min(0.05, max(MIN_GAP_S, (next_due - time.monotonic_ns()) / 1e9)))
        self.harvest(socket.MSG_DONTWAIT)

    def open_step(self, now: int) -> None:
        """Unpaced (and bursty while on): keep the window full, writing whenever there is room and
        reading only when there is none; each read brings the confirms that arrived meanwhile."""
        if not self.pacer.is_on(now - self.start):
            off = self.start + self.pacer.next_on_ns(now - self.start) - now
            time.sleep(min(0.01, max(0.0, off / 1e9)))
            if self.window:
                self.harvest(socket.MSG_DONTWAIT)
        elif self.window:
            room = self.window - self.unconfirmed()
            if room > 0:
                n = min(room, self.batch)
                self.write(self.tmpl.same_time(now, n), now, n, now)
            else:
                self.harvest()
        else:
            self.write(self.tmpl.same_time(now, self.batch), now, self.batch, now)
            if self.writes % 64 == 0:
                self.harvest(socket.MSG_DONTWAIT)  # only to notice a close from the broker

    def drain(self, end: int) -> float:
        """Wait for the confirms still outstanding (not counted in the window's rates); ms taken."""
        deadline = end + int(self.cfg.drain_seconds * 1e9)
        while self.window and self.unconfirmed() > 0 and time.monotonic_ns() < deadline:
            self.harvest()
        if self.progress is not None:
            self.progress.value = self.sent
        return (time.monotonic_ns() - end) / 1e6

    def report(self, end: int, cpu_end: tuple[float, float], acked_w1: int,
               drain_ms: float) -> dict[str, Any]:
        w_t0, w_sent0, w_acked0, w_cpu0 = self.at_w0 or (end, self.sent, acked_w1, cpu_end)
        wall = max(1e-9, (end - w_t0) / 1e9)
        t = self.tracker
        return {
            "published": self.sent, "confirmed": t.acked, "nacked": t.nacked,
            "unconfirmed": self.unconfirmed() if self.window else None,
            "window_seconds": wall, "window_published": self.sent - w_sent0,
            "window_confirmed": acked_w1 - w_acked0, **cpu_report(w_cpu0, cpu_end, wall),
            "writes": self.writes, "reads": self.reads, "drain_ms": drain_ms,
            "run_seconds": (end - self.start) / 1e9, "timeline": self.timeline,
            "confirm_latency": self.confirm_lat.encode(),
        }


def produce(cfg: ProducerConfig, client: Client, tmpl: PublishTemplate, sched: Schedule,
            progress: Any = None) -> dict[str, Any]:
    """Run the schedule; returns counts for the whole run and for the measured window.
    ``progress``, when given, is a one-slot shared counter updated with the publish count."""
    set_recv_timeout(client.sock, 0.05)  # blocking reads that give up after 50 ms
    run = _Producer(cfg, client, tmpl, sched, progress)
    mono = time.monotonic_ns
    step = run.paced_step if cfg.pacer.paced else run.open_step
    sleep_until(sched.start)
    run.start = mono()
    if run.buf:
        run.scan()
    while True:
        now = mono()
        if run.at_w0 is None and now >= sched.w0:
            run.at_w0 = (now, run.sent, run.tracker.acked, cpu_times())
        if now >= sched.w1:
            break
        step(now)
    end = mono()
    cpu_end = cpu_times()
    acked_w1 = run.tracker.acked
    return run.report(end, cpu_end, acked_w1, run.drain(end))


def sleep_until(t_ns: int) -> None:
    while True:
        left = t_ns - time.monotonic_ns()
        if left <= 0:
            return
        time.sleep(min(left / 1e9, 0.05))
