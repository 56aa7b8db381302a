"""What a driver gets: the target, the run's length, its fault plan and seeded randomness, and the
means to open series (one per variant), start worker processes, and play the faults.

A driver's shape (a module of ``ferrymq/lab/drivers/``)::

    MODES = ("amqp",)                  # the target modes it runs on: "amqp" (queue), "kafka" (log)
    @dataclass
    class Params: ...                  # its parameters, with defaults; optional check() -> None
    async def run(ctx: LabContext, p: Params) -> None
    def explain(run: dict) -> list[str]   # sentences from the run's JSON (pure: reproducible)
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferrymq.clock import Rng
from ferrymq.lab import faults as faults_mod
from ferrymq.lab.faults import FaultSpec
from ferrymq.lab.recorder import Series
from ferrymq.lab.targets import LabTarget
from ferrymq.lab.worker import DEDUPED, IDLE, IN_FLIGHT, PROCESSED, REDELIVERED, Worker

FAULT_GRACE_S = 30.0


@dataclass
class LabContext:
    target: LabTarget
    duration: float
    faults: list[FaultSpec]
    rng: Rng
    workdir: Path
    interval_s: float = 0.5
    short: bool = False
    series_list: list[Series] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    listeners: list[Any] = field(default_factory=list)  # live progress: called with each new series

    def name(self, what: str) -> str:
        """A queue, topic or group name private to this run (several runs may share a broker)."""
        return f"lab-{self.run_id}-{what}"

    def series(self, variant: str = "") -> Series:
        """A new series, starting now: one line on every chart."""
        label = self.target.label + (f" · {variant}" if variant else "")
        s = Series(label, self.target.label, variant, self.interval_s)
        self.series_list.append(s)
        for listener in self.listeners:
            listener(s)
        return s

    async def worker(self, series: Series, queue: str, *, prefetch: int = 10, ack: str = "after",
                     work_ms: float = 0.0, fail: str = "requeue", name: str = "",
                     arguments: str = "", observe: Callable[[int, int, int], None] | None = None,
                     options: tuple[str, ...] = ()) -> Worker:
        """A consumer process on ``queue`` whose receipts land in ``series``; faults address it as
        consumer N in the order workers were started. ``observe`` sees every record first (a driver's
        own per-consumer accounting: shares, idle time, one message's deliveries)."""
        wname = name or f"c{len(self.workers)}"
        on_record = _recording(series, wname, observe)
        args = ["--url", self.target.amqp_url, "--queue", queue, "--prefetch", str(prefetch), "--ack", ack,
                "--work-ms", str(work_ms), "--fail", fail]
        if arguments:
            args += ["--arguments", arguments]
        w = Worker(wname, [*args, *options], on_record)
        await w.start()
        self.workers.append(w)
        self.target.actors.consumers.append(w)
        return w

    async def stop_workers(self) -> None:
        for w in self.workers:
            await w.stop()
        self.target.actors.consumers.clear()
        self.workers.clear()

    def check_faults(self, where: str) -> None:
        faults_mod.check_plan(self.faults, self.target.actors, where)

    @contextlib.asynccontextmanager
    async def faults_on(self, series: Series, seconds: float | None = None) -> AsyncIterator[None]:
        """Play the fault plan on ``series`` while the block runs (times relative to its start)."""
        task = asyncio.create_task(faults_mod.play(self.faults, series, self.target.actors,
                                                   seconds or self.duration))
        try:
            yield
        finally:
            # a fault still under way (a restart takes seconds) finishes, so the books settle on a
            # broker that is back; one that has not begun by then is dropped
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), FAULT_GRACE_S)
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _recording(series: Series, wname: str,
               observe: Callable[[int, int, int], None] | None) -> Callable[[int, int, int], None]:
    """What a worker's records become in its series: receipts, the in-flight and idle gauges
    (idle: the share of the time since the last report spent waiting for a delivery), failures."""
    idle_seen: list[tuple[int, int]] = []  # the last (series time ns, idle ms): the gauge is a delta

    def on_record(kind: int, a: int, b: int) -> None:
        if observe is not None:
            observe(kind, a, b)
        if kind == IDLE:
            now = series.now_ns()
            if idle_seen and now > idle_seen[0][0]:
                share = (a - idle_seen[0][1]) * 1e6 / (now - idle_seen[0][0])
                series.gauge(f"idle:{wname}", round(min(100.0, max(0.0, 100.0 * share)), 1))
            idle_seen[:] = [(now, a)]
        elif kind in (PROCESSED, REDELIVERED):
            series.received(a, b, kind == REDELIVERED)
        elif kind == IN_FLIGHT:
            series.gauge(f"in_flight:{wname}", a)
        elif kind == DEDUPED:
            series.count("deduplicated")
        else:
            series.count("failed")

    return on_record
