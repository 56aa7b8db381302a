"""Faults: a small grammar, and the player that applies them on a series' timeline.

    ACTION[:SUBJECT]@START[+DURATION][,key=value...]

    kill@20s            kill -9 the broker at 20 s and restart it on the same data at once
    kill@20s+3s         ... restart it 3 s later
    stop@40%+5s         SIGSTOP the broker at 40 % of the run, SIGCONT 5 s later
    kill:consumer@10s   kill -9 consumer process 0 (``consumer2``: the third); +N restarts it
    stop:consumer1@5s+5s
    slow:consumer@5s+10s,ms=50     consumer 0 takes 50 ms more per message for 10 s
    delay@5s+10s,ms=100            every chunk between clients and broker waits 100 ms (proxy)
    loss@5s+10s,pct=5              5 % of chunks held back 200 ms, as a TCP retransmission would be
    cut@5s+3s                      the proxy drops every connection and refuses new ones for 3 s
    disk-full@5s+5s                the broker's data disk (a small tmpfs) filled, then freed
    fsync-error@5s+3s              every data fsync of the broker fails with EIO for 3 s

START and DURATION are seconds (``20s``, ``1.5s``, ``500ms``) or a share of the run (``40%``), so a
scenario's short form (the test suite's) and its full size share one fault plan. Each fault is
written on the timeline as an event, and the report measures the time to recover after it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ferrymq.lab.recorder import Series

ACTIONS = ("kill", "stop", "slow", "delay", "loss", "cut", "disk-full", "fsync-error")
NEEDS_DURATION = {"stop", "slow", "delay", "loss", "cut", "disk-full", "fsync-error"}
NETWORK = ("delay", "loss", "cut")
STORAGE = ("disk-full", "fsync-error")
_SPEC = re.compile(r"^(?P<action>[a-z-]+)(?::(?P<subject>[a-z]+)(?P<index>\d*))?@(?P<at>[0-9.]+(?:s|ms|%))"
                   r"(?:\+(?P<dur>[0-9.]+(?:s|ms|%)))?(?P<opts>(?:,[a-z]+=[0-9.]+)*)$")
RESTART_PAUSE_S = 0.2  # a kill with no duration: the restart follows at once


@dataclass(frozen=True)
class FaultSpec:
    text: str
    action: str
    subject: str  # "broker" or "consumer"
    index: int
    at: tuple[float, str]  # (value, unit): resolved against the run's duration
    duration: tuple[float, str] | None
    options: dict[str, float] = field(default_factory=dict)

    def at_s(self, run_s: float) -> float:
        return _resolve(self.at, run_s)

    def duration_s(self, run_s: float) -> float | None:
        return None if self.duration is None else _resolve(self.duration, run_s)


def _resolve(value: tuple[float, str], run_s: float) -> float:
    v, unit = value
    return v / 1000.0 if unit == "ms" else v * run_s / 100.0 if unit == "%" else v


def _split(text: str) -> tuple[float, str]:
    unit = "ms" if text.endswith("ms") else text[-1]
    return float(text[: -len(unit)]), unit


def parse_fault(text: str) -> FaultSpec:
    m = _SPEC.match(text.strip())
    if not m:
        raise ValueError(f"fault {text!r}: expected ACTION[:SUBJECT]@START[+DURATION][,key=value], "
                         "e.g. kill@20s, stop@40%+5s, delay@5s+10s,ms=100")
    action, subject = m["action"], m["subject"] or "broker"
    if action not in ACTIONS:
        raise ValueError(f"fault {text!r}: unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if subject not in ("broker", "consumer"):
        raise ValueError(f"fault {text!r}: the subject is broker or consumer[N], not {subject!r}")
    if subject == "consumer" and action not in ("kill", "stop", "slow"):
        raise ValueError(f"fault {text!r}: {action} applies to the network or the broker, not a consumer")
    if action in NEEDS_DURATION and not m["dur"]:
        raise ValueError(f"fault {text!r}: {action} needs a duration (+5s)")
    opts = {k: float(v) for k, v in (o.split("=") for o in m["opts"].split(",") if o)}
    return FaultSpec(text.strip(), action, subject, int(m["index"] or 0), _split(m["at"]),
                     _split(m["dur"]) if m["dur"] else None, opts)


class Controllable(Protocol):
    """A process a fault can hit: the broker, or a consumer worker."""

    def kill9(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...


@dataclass
class Actors:
    """What faults act on, provided by the target (broker, proxy, disk) and the driver (consumers).
    ``restart_broker`` / ``restart_consumer`` bring a killed process back (async: they wait for it)."""

    broker: Controllable | None = None
    restart_broker: Callable[[], Awaitable[None]] | None = None
    consumers: list[Any] = field(default_factory=list)  # lab.worker.Worker (kill9/pause/resume/restart/slow)
    network: Any = None  # lab.proxy.Proxy: set_delay, set_loss, cut, heal
    disk: Any = None  # lab.disk.Disk: fill, free
    fsync: Any = None  # lab.faulty_serve.FsyncSwitch: fail, heal


def check_plan(plan: list[FaultSpec], actors: Actors, where: str) -> None:
    """Refuse, before anything runs, a fault with nothing to act on."""
    for f in plan:
        if f.subject == "broker" and f.action in ("kill", "stop") and actors.broker is None:
            raise ValueError(f"{where}: fault {f.text} needs a broker the lab starts (target ferrymq, "
                             "ferrymq-kafka or rabbitmq), not one given by URL")
        if f.action in ("delay", "loss", "cut") and actors.network is None:
            raise ValueError(f"{where}: fault {f.text} needs the lab's proxy (not set up for this scenario)")
        if f.action == "disk-full" and actors.disk is None:
            raise ValueError(f"{where}: fault {f.text} needs a broker the lab starts on a small disk")
        if f.action == "fsync-error" and actors.fsync is None:
            raise ValueError(f"{where}: fault {f.text} needs a FerryMQ the lab starts (target ferrymq "
                             "or ferrymq-kafka)")


async def play(plan: list[FaultSpec], series: Series, actors: Actors, run_s: float) -> None:
    """Apply each fault at its time (relative to the series' start); mark every one on the timeline."""
    async with asyncio.TaskGroup() as tg:
        for f in plan:
            tg.create_task(_one(f, series, actors, run_s))


async def _one(f: FaultSpec, series: Series, actors: Actors, run_s: float) -> None:
    await asyncio.sleep(max(0.0, f.at_s(run_s) - series.t()))
    dur = f.duration_s(run_s)
    series.event("fault", f.text, dur)
    subject: Any = actors.broker if f.subject == "broker" else _consumer(actors, f)
    if f.action == "kill":
        subject.kill9()
        await asyncio.sleep(dur if dur is not None else RESTART_PAUSE_S)
        restart = actors.restart_broker if f.subject == "broker" else subject.restart
        if restart is not None:
            await restart()
            series.event("restart", f"{f.subject} restarted after {f.text}")
        return
    start, end = _toggles(f, subject, actors)
    start()
    await asyncio.sleep(dur or 0.0)
    end()
    series.event("fault-end", f.text)


def _consumer(actors: Actors, f: FaultSpec) -> Any:
    if f.index >= len(actors.consumers):
        raise ValueError(f"fault {f.text}: no consumer {f.index} (this run has {len(actors.consumers)})")
    return actors.consumers[f.index]


def _toggles(f: FaultSpec, subject: Any, actors: Actors) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(apply, undo) for a fault with a duration."""
    if f.action == "stop":
        return subject.pause, subject.resume
    if f.action == "slow":
        ms = f.options.get("ms", 50.0)
        return (lambda: subject.slow(ms)), (lambda: subject.slow(0.0))
    net, disk = actors.network, actors.disk
    if f.action == "delay":
        ms = f.options.get("ms", 100.0)
        return (lambda: net.set_delay(ms)), (lambda: net.set_delay(0.0))
    if f.action == "loss":
        pct = f.options.get("pct", 5.0)
        return (lambda: net.set_loss(pct)), (lambda: net.set_loss(0.0))
    if f.action == "cut":
        return net.cut, net.heal
    if f.action == "fsync-error":
        return actors.fsync.fail, actors.fsync.heal
    return disk.fill, disk.free
