"""Targets, chosen by URL: ``amqp://...`` (any AMQP 0-9-1 broker: FerryMQ, RabbitMQ),
``sink`` (the null server, started here), and two conveniences that start a private broker for
the run and stop it afterwards: ``ferrymq`` (``ferrymq serve`` on a fresh data directory) and
``rabbitmq`` (a private node from the one launcher, ``rabbitmq_node``; never the system one).
``ferrymq-tls`` and ``rabbitmq-tls`` start the same brokers and measure them over AMQPS (a
development CA and certificate from ``ferrymq.certs``, made for the run; the client verifies).
``kafka://host:port`` is reserved for the stream workload over the Kafka protocol.
A target may be named: ``--target ours=amqp://...``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ferrymq.bench.procstat import listener_pid
from ferrymq.bench.rabbitmq_node import answers_amqp, free_port, start_rabbitmq

START_TIMEOUT_S = 30.0


@dataclass
class Target:
    name: str
    url: str
    kind: str  # "amqp", "sink" or "kafka"
    broker_pid: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "kind": self.kind, "broker_pid": self.broker_pid,
                **self.info}


def split_spec(spec: str) -> tuple[str, str]:
    """'name=url' or a bare 'url' / 'sink' / 'ferrymq' / 'rabbitmq' -> (name, what)."""
    head, sep, rest = spec.partition("=")
    if sep and "://" not in head:
        return head, rest
    if "://" in spec:
        u = urlparse(spec)
        default = {"amqp": 5672, "amqps": 5671}.get(u.scheme, 9092)
        return f"{u.hostname}:{u.port or default}", spec
    return spec, spec


def _wait_for(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers_amqp(port):
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError(f"{what} did not answer on port {port}")
        time.sleep(0.05)


def _wait_for_tcp(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} did not answer on port {port}") from None
            time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def _sink(name: str, sink_delay_ms: float) -> Iterator[Target]:
    port = free_port()
    cmd = [sys.executable, "-m", "ferrymq.bench.sink", "--port", str(port)]
    if sink_delay_ms:
        cmd += ["--delay-ms", str(sink_delay_ms)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    try:
        _wait_for(port, proc, "the sink")
        yield Target(name, f"amqp://guest:guest@127.0.0.1:{port}/%2F", "sink", proc.pid,
                     {"started": "sink", "delay_ms": sink_delay_ms})
    finally:
        _stop(proc)


def _dev_certs(directory: str) -> dict[str, str]:
    """A CA and a localhost server certificate for a TLS target, valid for a day."""
    import datetime as dt
    from pathlib import Path

    from ferrymq.certs import DEFAULT_HOSTNAMES, write_dev_certs

    paths = write_dev_certs(Path(directory), DEFAULT_HOSTNAMES, 1, dt.datetime.now(dt.UTC))
    return {k: str(v) for k, v in paths.items()}


@contextmanager
def _ferrymq(name: str, fsync: str, kafka: bool, tls: bool = False) -> Iterator[Target]:
    """A private `ferrymq serve`, measured over its AMQP listener, its AMQPS one (``tls``) or
    (``kafka``) its Kafka one."""
    port, kport, sport = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="ferrymq-bench-data-") as data:
        certs = _dev_certs(f"{data}/certs") if tls else {}
        env = {**os.environ, "FERRYMQ_TLS_CERT_FILE": certs["server"],
               "FERRYMQ_TLS_KEY_FILE": certs["server_key"]} if tls else None
        proc = subprocess.Popen(
            [sys.executable, "-m", "ferrymq.cli", "serve", "--amqp-port", str(port), "--kafka-port",
             str(kport), "--http-port", "0", "--data-dir", f"{data}/d", "--fsync", fsync, "--log-level",
             "warning", *(["--amqps-port", str(sport)] if tls else [])], stdout=subprocess.DEVNULL, env=env)
        try:
            _wait_for(port, proc, "ferrymq serve")
            info = {"started": "ferrymq serve", "fsync": fsync, "tls": tls}
            if kafka:
                _wait_for_tcp(kport, proc, "ferrymq serve's Kafka listener")
                yield Target(name, f"kafka://127.0.0.1:{kport}", "kafka", proc.pid, info)
            elif tls:
                _wait_for_tcp(sport, proc, "ferrymq serve's AMQPS listener")
                yield Target(name, f"amqps://guest:guest@localhost:{sport}/%2F?cacertfile={certs['ca']}",
                             "amqp", proc.pid, info)
            else:
                yield Target(name, f"amqp://guest:guest@127.0.0.1:{port}/%2F", "amqp", proc.pid, info)
        finally:
            _stop(proc)


@contextmanager
def _rabbitmq(name: str, tls: bool = False) -> Iterator[Target]:
    with tempfile.TemporaryDirectory(prefix="ferrymq-bench-rabbit-certs-") as certs_dir:
        certs = _dev_certs(certs_dir) if tls else {}
        node = start_rabbitmq(tls=(certs["server"], certs["server_key"], certs["ca"]) if tls else None)
        try:
            yield Target(name, node.amqps_url if tls else node.amqp_url, "amqp", node.pid,
                         {"started": "private rabbitmq node", "start_seconds": round(node.start_seconds, 2),
                          "tls": tls})
        finally:
            node.stop()


@contextmanager
def open_target(spec: str, *, broker_pid: int = 0, sink_delay_ms: float = 0.0,
                fsync: str = "always") -> Iterator[Target]:
    """Resolve a target spec, starting (and afterwards stopping) whatever it names."""
    name, what = split_spec(spec)
    if what == "sink":
        with _sink(name, sink_delay_ms) as target:
            yield target
    elif what in ("ferrymq", "ferrymq-kafka", "ferrymq-tls"):
        with _ferrymq(name, fsync, what == "ferrymq-kafka", what == "ferrymq-tls") as target:
            yield target
    elif what in ("rabbitmq", "rabbitmq-tls"):
        with _rabbitmq(name, what == "rabbitmq-tls") as target:
            yield target
    elif what.startswith(("amqp://", "amqps://")):
        u = urlparse(what)
        pid = broker_pid
        if not pid and u.hostname in ("127.0.0.1", "localhost", "::1"):
            pid = listener_pid(u.port or (5671 if u.scheme == "amqps" else 5672))
        yield Target(name, what, "amqp", pid)
    elif what.startswith("kafka://"):
        yield Target(name, what, "kafka", broker_pid)
    else:
        raise ValueError(f"unknown target {spec!r}: amqp://..., amqps://..., kafka://..., sink, ferrymq, "
                         "ferrymq-kafka, ferrymq-tls, rabbitmq or rabbitmq-tls")
