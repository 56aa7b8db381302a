"""Where a scenario runs. A target spec is one of:

  ferrymq          FerryMQ in queue mode (AMQP): a ``ferrymq serve`` the lab starts on a fresh data
                   directory and fixed ports, so faults can kill, stop and restart it
  ferrymq-kafka    the same broker in log mode (its Kafka listener)
  rabbitmq         a private RabbitMQ node (Debian's rabbitmq-server) the lab starts and stops
  amqp://...       any AMQP 0-9-1 broker already running; kafka://host:port any Kafka-protocol one

optionally named: ``ours=amqp://...``. A target given by URL is checked before the run starts: one
that does not answer gets one line naming it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from ferrymq.chaos.broker import BrokerProcess, free_port
from ferrymq.clock import Rng
from ferrymq.lab.disk import Disk, DiskError
from ferrymq.lab.faults import NETWORK, Actors, FaultSpec
from ferrymq.lab.faulty_serve import CONTROL_ENV, FsyncSwitch
from ferrymq.lab.proxy import Proxy
from ferrymq.lab.signals import Signalled

MODES = {"ferrymq": "amqp", "ferrymq-kafka": "kafka", "rabbitmq": "amqp"}
# A lab-started FerryMQ applies retention and runs the log cleaner every second (Kafka's defaults,
# 5 min and 15 s, would leave a minute's run showing neither); topics without retention or
# compaction configured are untouched either way.
UPKEEP_ENV = {"FERRYMQ_KAFKA_RETENTION_CHECK_MS": "1000", "FERRYMQ_KAFKA_CLEANER_BACKOFF_MS": "1000"}
DISK_MIB = 256  # the disk-full fault's tmpfs: above FerryMQ's default free-disk alarm (50 MB)


class TargetError(ValueError):
    """A target that cannot be used: the message is the one line a user sees."""


@dataclass
class LabTarget:
    name: str
    spec: str
    mode: str  # "amqp" (queue mode) or "kafka" (log mode)
    amqp_url: str = ""
    kafka_bootstrap: str = ""
    http_url: str = ""  # FerryMQ's HTTP plane (management API, /metrics, dashboard), when known
    broker_pid: int = 0
    actors: Actors = field(default_factory=Actors)
    data_dir: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name} ({'queue' if self.mode == 'amqp' else 'log'} mode)"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "spec": self.spec, "mode": self.mode, "amqp_url": self.amqp_url,
                "kafka_bootstrap": self.kafka_bootstrap, "http_url": self.http_url, **self.info}


def split_spec(spec: str) -> tuple[str, str]:
    head, sep, rest = spec.partition("=")
    if sep and "://" not in head:
        return head, rest
    return spec, spec


def _answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 1.0):
        return True
    return False


def check_url(spec: str) -> tuple[str, str, str]:
    """(name, mode, url) for a URL target that answers; TargetError otherwise."""
    name, what = split_spec(spec)
    if what in MODES:
        return name, MODES[what], what
    u = urlparse(what)
    if u.scheme not in ("amqp", "kafka") or not u.hostname:
        raise TargetError(f"unknown target {spec!r}: ferrymq, ferrymq-kafka, rabbitmq, amqp://... or kafka://...")
    port = u.port or (5672 if u.scheme == "amqp" else 9092)
    if not _answers(u.hostname, port):
        raise TargetError(f"target {name}: nothing answers at {u.hostname}:{port}")
    return name, u.scheme, what


class _RestartableBroker:
    """A lab-started ``ferrymq serve``: the faults' broker, restarted on the same data and ports."""

    def __init__(self, proc: BrokerProcess, target: LabTarget) -> None:
        self.proc, self.target = proc, target

    def kill9(self) -> None:
        self.proc.kill9()

    def pause(self) -> None:
        self.proc.pause()

    def resume(self) -> None:
        self.proc.resume()

    async def restart(self) -> None:
        await asyncio.to_thread(self.proc.start)
        self.target.broker_pid = self.proc.pid


@contextlib.asynccontextmanager
async def _ferrymq(name: str, spec: str, mode: str, fsync: str,
                   faults: list[FaultSpec]) -> AsyncIterator[LabTarget]:
    """A fresh ``ferrymq serve``; with an fsync-error fault planned, the lab's faulty entry point."""
    actions = {f.action for f in faults}
    with (tempfile.TemporaryDirectory(prefix="ferrymq-lab-") as tmp,
          _data_disk(Path(tmp) / "data", "disk-full" in actions) as disk):
        ports = [free_port() for _ in range(3)]
        switch = FsyncSwitch(str(Path(tmp) / "fail-fsync")) if "fsync-error" in actions else None
        env = {**UPKEEP_ENV, **({CONTROL_ENV: switch.control} if switch else {})}
        advertised = free_port() if mode == "kafka" and actions & set(NETWORK) else 0
        if advertised:  # Kafka clients must come back through the fault proxy after bootstrap
            env["FERRYMQ_KAFKA_ADVERTISED_PORT"] = str(advertised)
        proc = BrokerProcess(Path(tmp) / "data", ports[0], fsync, Path(tmp) / "broker.log",
                             kafka_port=ports[1], http_port=ports[2],
                             module="ferrymq.lab.faulty_serve" if switch else "", env=env)
        await asyncio.to_thread(proc.start)
        target = LabTarget(name, spec, mode, f"amqp://guest:guest@127.0.0.1:{ports[0]}/%2F",
                           f"127.0.0.1:{ports[1]}", f"http://127.0.0.1:{ports[2]}", proc.pid,
                           data_dir=Path(tmp) / "data", info={"started": "ferrymq serve", "fsync": fsync})
        if advertised:
            target.info["kafka_advertised_port"] = advertised
        broker = _RestartableBroker(proc, target)
        target.actors = Actors(broker=broker, restart_broker=broker.restart, fsync=switch, disk=disk)
        try:
            yield target
        finally:
            if switch is not None:
                switch.heal()
            await asyncio.to_thread(proc.stop)


@contextlib.contextmanager
def _data_disk(path: Path, small: bool) -> Iterator[Disk | None]:
    """The broker's data directory; for a disk-full fault, a small tmpfs of its own (the broker's
    log stays outside it, or filling the disk would fill the log too)."""
    path.mkdir()
    if not small:
        yield None
        return
    try:
        disk = Disk.mount(path, DISK_MIB)
    except DiskError as exc:
        raise TargetError(f"fault disk-full: {exc}") from None
    try:
        yield disk
    finally:
        disk.free()
        disk.unmount()


@contextlib.asynccontextmanager
async def behind_proxy(target: LabTarget, rng: Rng) -> AsyncIterator[LabTarget]:
    """The lab's clients reach the target through the fault proxy (network faults): the AMQP
    listener, or the Kafka one of a lab-started FerryMQ told to advertise the proxy's port."""
    direct_amqp, direct_kafka = target.amqp_url, target.kafka_bootstrap
    if target.mode == "kafka":
        host, _, port = direct_kafka.rpartition(":")
        listen = int(target.info.get("kafka_advertised_port", 0))
        if not listen:
            raise TargetError(f"target {target.name}: network faults in log mode need a FerryMQ the lab "
                              "starts (its Kafka listener then advertises the proxy)")
        proxy = await Proxy.start(host, int(port), rng=rng, port=listen)
        target.kafka_bootstrap = f"127.0.0.1:{proxy.port}"
    else:
        u = urlparse(direct_amqp)
        proxy = await Proxy.start(u.hostname or "127.0.0.1", u.port or 5672, rng=rng)
        target.amqp_url = urlunparse(u._replace(netloc=f"{u.username}:{u.password}@127.0.0.1:{proxy.port}"))
    target.actors.network = proxy
    try:
        yield target
    finally:
        target.amqp_url, target.kafka_bootstrap, target.actors.network = direct_amqp, direct_kafka, None
        await proxy.close()


class _RabbitBroker(Signalled):
    """SIGSTOP/SIGCONT of the Erlang VM; kill -9 with no restart (the node's start picks new ports)."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def signalled_pid(self) -> int:
        return int(self.node.pid)


@contextlib.asynccontextmanager
async def _rabbitmq(name: str, spec: str) -> AsyncIterator[LabTarget]:
    from ferrymq.bench.rabbitmq_node import available, start_rabbitmq

    if not available():
        raise TargetError("target rabbitmq: rabbitmq-server is not installed (apt install rabbitmq-server)")
    node = await asyncio.to_thread(start_rabbitmq, None, 60.0, True)
    target = LabTarget(name, spec, "amqp", node.amqp_url, http_url=node.management_url, broker_pid=node.pid,
                       info={"started": "private rabbitmq node"})
    target.actors = Actors(broker=_RabbitBroker(node))
    try:
        yield target
    finally:
        _RabbitBroker(node).resume()
        await asyncio.to_thread(node.stop)


@contextlib.asynccontextmanager
async def open_target(spec: str, fsync: str = "always",
                      faults: list[FaultSpec] | None = None) -> AsyncIterator[LabTarget]:
    """Resolve a spec, starting (and afterwards stopping) whatever it names, fitted for the faults
    planned on it."""
    name, mode, what = check_url(spec)
    if what in ("ferrymq", "ferrymq-kafka"):
        async with _ferrymq(name, spec, mode, fsync, faults or []) as t:
            yield t
    elif what == "rabbitmq":
        async with _rabbitmq(name, spec) as t:
            yield t
    elif mode == "amqp":
        yield LabTarget(name, spec, "amqp", amqp_url=what)
    else:
        u = urlparse(what)
        yield LabTarget(name, spec, "kafka", kafka_bootstrap=f"{u.hostname}:{u.port or 9092}")
