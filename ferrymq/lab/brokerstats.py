"""The broker process as the lab sees it from outside: its resident memory and CPU, sampled from
/proc into a series' gauges (``broker_rss_mib``; ``broker_cpu``, percent of one core), with the
start, peak and mean kept as figures. Works for any broker on this machine: the lab-started one
by its pid, a broker given by a local URL by the process listening on its port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlparse

from ferrymq.bench import procstat
from ferrymq.lab.recorder import Series
from ferrymq.lab.targets import LabTarget

EVERY_S = 0.5
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def broker_pid(target: LabTarget) -> int:
    """The broker's pid, or 0 when it is not a process of this machine we may look at."""
    if target.broker_pid:
        return target.broker_pid
    u = urlparse(target.amqp_url)
    if u.hostname in LOCAL_HOSTS:
        return procstat.listener_pid(u.port or 5672)
    return 0


@dataclass
class BrokerStats:
    rss_mib: list[float] = field(default_factory=list)
    cpu_pct: list[float] = field(default_factory=list)

    def sample(self, series: Series, pid: int, last: list[float], interval_s: float) -> None:
        rss_kib, _ = procstat.rss_kib(pid)
        if rss_kib:
            self.rss_mib.append(round(rss_kib / 1024.0, 1))
            series.gauge("broker_rss_mib", self.rss_mib[-1])
        cpu = procstat.proc_cpu_seconds(pid)
        if last and cpu >= last[0]:
            self.cpu_pct.append(round(100.0 * (cpu - last[0]) / interval_s, 1))
            series.gauge("broker_cpu", self.cpu_pct[-1])
        last[:] = [cpu]

    def figures(self, series: Series) -> None:
        if self.rss_mib:
            series.figure("broker_rss_start_mib", self.rss_mib[0])
            series.figure("broker_rss_peak_mib", max(self.rss_mib))
        if self.cpu_pct:
            series.figure("broker_cpu_mean_pct", round(sum(self.cpu_pct) / len(self.cpu_pct), 1))
            series.figure("broker_cpu_peak_pct", max(self.cpu_pct))


async def _sampler(stats: BrokerStats, series: Series, pid: int, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    last: list[float] = []
    t = loop.time()
    while not stop.is_set():
        now = loop.time()
        stats.sample(series, pid, last, max(0.001, now - t))
        t = now
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), EVERY_S)


@contextlib.asynccontextmanager
async def watching(series: Series, target: LabTarget) -> AsyncIterator[BrokerStats]:
    """Sample the broker while the block runs; its figures land in the series at the end."""
    stats, stop = BrokerStats(), asyncio.Event()
    pid = broker_pid(target)
    task = asyncio.create_task(_sampler(stats, series, pid, stop)) if pid else None
    try:
        yield stats
    finally:
        stop.set()
        if task is not None:
            with contextlib.suppress(Exception):
                await task
        stats.figures(series)
