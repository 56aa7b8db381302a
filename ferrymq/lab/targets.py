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
import os
import signal
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ferrymq.chaos.broker import BrokerProcess, free_port
from ferrymq.lab.faults import Actors

MODES = {"ferrymq": "amqp", "ferrymq-kafka": "kafka", "rabbitmq": "amqp"}
# A lab-started FerryMQ applies retention and runs the log cleaner every second (Kafka's defaults,
# 5 min and 15 s, would leave a minute's run showing neither); topics without retention or
# compaction configured are untouched either way.
UPKEEP = "kafka_retention_check_ms = 1000\nkafka_cleaner_backoff_ms = 1000\n"


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
async def _ferrymq(name: str, spec: str, mode: str, fsync: str) -> AsyncIterator[LabTarget]:
    with tempfile.TemporaryDirectory(prefix="ferrymq-lab-") as tmp:
        ports = [free_port() for _ in range(3)]
        (Path(tmp) / "ferrymq.toml").write_text(UPKEEP)
        proc = BrokerProcess(Path(tmp) / "data", ports[0], fsync, Path(tmp) / "broker.log",
                             kafka_port=ports[1], http_port=ports[2],
                             extra_args=("--config", str(Path(tmp) / "ferrymq.toml")))
        await asyncio.to_thread(proc.start)
        target = LabTarget(name, spec, mode, f"amqp://guest:guest@127.0.0.1:{ports[0]}/%2F",
                           f"127.0.0.1:{ports[1]}", f"http://127.0.0.1:{ports[2]}", proc.pid,
                           data_dir=Path(tmp) / "data", info={"started": "ferrymq serve", "fsync": fsync})
        broker = _RestartableBroker(proc, target)
        target.actors = Actors(broker=broker, restart_broker=broker.restart)
        try:
            yield target
        finally:
            await asyncio.to_thread(proc.stop)


class _RabbitBroker:
    """SIGSTOP/SIGCONT of the Erlang VM; kill -9 with no restart (the node's start picks new ports)."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.node.pid, sig)

    def kill9(self) -> None:
        self._signal(signal.SIGKILL)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)


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
async def open_target(spec: str, fsync: str = "always") -> AsyncIterator[LabTarget]:
    """Resolve a spec, starting (and afterwards stopping) whatever it names."""
    name, mode, what = check_url(spec)
    if what in ("ferrymq", "ferrymq-kafka"):
        async with _ferrymq(name, spec, mode, fsync) as t:
            yield t
    elif what == "rabbitmq":
        async with _rabbitmq(name, spec) as t:
            yield t
    elif mode == "amqp":
        yield LabTarget(name, spec, "amqp", amqp_url=what)
    else:
        u = urlparse(what)
        yield LabTarget(name, spec, "kafka", kafka_bootstrap=f"{u.hostname}:{u.port or 9092}")
