"""A sampler thread in the orchestrating process: every interval it reads the queues' depth
(``queue.declare passive``: ready messages, as any AMQP broker reports them), the consumer lag
(published x copies - completed, from the generator processes' shared counters: in flight,
ready or unacked), the CPU of the broker and of every generator process, and the machine's.
Each sample also feeds the live progress display."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ferrymq.bench.procstat import machine_busy_seconds, proc_cpu_seconds
from ferrymq.client.connection import Client


@dataclass
class Sample:
    t: float  # seconds since the measured window's start (negative in the warm-up)
    published: int
    completed: int
    lag: int
    depth: int | None
    cpu: dict[str, float]  # cores over the last interval, by process name (+ "machine")


@dataclass
class Monitor:
    url: str | None  # None: no broker to ask (the sink)
    queues: Sequence[str]
    pids: dict[str, int]  # name -> pid (broker first, when known)
    counters: Callable[[], tuple[int, int, int]]  # (published, expected deliveries, completed)
    origin_ns: int
    interval_s: float
    on_sample: Callable[[Sample], None] | None = None
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="bench-monitor", daemon=True)
        self._client: Client | None = None

    def start(self) -> Monitor:
        self._thread.start()
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join(10)
        if self._client is not None:
            self._client.close(timeout=1.0)
        return self.samples

    def depth(self) -> int | None:
        if self.url is None or not self.queues:
            return None
        try:
            if self._client is None:
                self._client = Client(self.url, timeout=5.0, product="ferrymq-bench-monitor").open()
            return sum(self._client.declare_queue(q, False, passive=True).message_count or 0
                       for q in self.queues)
        except Exception as exc:  # a broker too busy to answer in 5 s: report it, stop asking
            self.errors.append(f"queue depth: {exc!r}")
            self.url = None
            return None

    def _main(self) -> None:
        prev_t = time.monotonic_ns()
        prev = {name: proc_cpu_seconds(pid) for name, pid in self.pids.items()}
        prev_machine = machine_busy_seconds()
        while not self._stop.wait(self.interval_s):
            now = time.monotonic_ns()
            wall = max(1e-9, (now - prev_t) / 1e9)
            cpu: dict[str, float] = {}
            for name, pid in self.pids.items():
                cur = proc_cpu_seconds(pid)
                cpu[name] = round(max(0.0, cur - prev[name]) / wall, 3)
                prev[name] = cur
            machine = machine_busy_seconds()
            cpu["machine"] = round((machine - prev_machine) / wall, 3)
            prev_machine, prev_t = machine, now
            published, expected, completed = self.counters()
            sample = Sample(round((now - self.origin_ns) / 1e9, 3), published, completed,
                            max(0, expected - completed), self.depth(), cpu)
            self.samples.append(sample)
            if self.on_sample is not None:
                self.on_sample(sample)

    @staticmethod
    def as_dict(samples: list[Sample]) -> dict[str, Any]:
        """Column form for the report."""
        names = list(samples[0].cpu) if samples else []
        return {
            "t": [s.t for s in samples],
            "published": [s.published for s in samples],
            "completed": [s.completed for s in samples],
            "lag": [s.lag for s in samples],
            "depth": [s.depth for s in samples],
            "cpu": {n: [s.cpu.get(n, 0.0) for s in samples] for n in names},
        }
