"""SQS targets: ``ferrymq`` (a private `ferrymq serve` on a fresh data directory, SQS on its HTTP
port), ``moto`` (moto's server mode, `python -m moto.server`, threaded werkzeug), ``sink`` (the
null SQS server of ``sink``), or an ``http://host:port`` URL, optionally named ``name=URL``.
Started targets are stopped afterwards; a local URL's pid is found from its listening socket so
its CPU is measured too.

moto picks the service from the Authorization header's credential scope (it checks no signature),
so requests to it carry a fixed, unsigned one; FerryMQ accepts unsigned requests on loopback."""

from __future__ import annotations

import http.client
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ferrymq.bench.procstat import listener_pid
from ferrymq.bench.rabbitmq_node import free_port
from ferrymq.bench.sqs import calls
from ferrymq.bench.targets import _stop, _wait_for_tcp

ACCOUNT = "000000000000"
ROUTING_AUTH = ("AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/sqs/aws4_request, "
                "SignedHeaders=content-type;host;x-amz-target, Signature=" + "0" * 64)
NAMED = ("ferrymq", "moto", "sink")


class SetupError(Exception):
    """A setup call (create, attributes, delete) the target refused: said once, plainly."""


@dataclass
class Endpoint:
    name: str
    host: str
    port: int
    pid: int = 0  # 0: not local / unknown, CPU not measured
    auth: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def call(self, action: str, body: bytes) -> bytes:
        """A setup call over a plain http.client connection; SetupError unless 200."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request("POST", "/", body, calls.headers(self.auth)[action])
            r = conn.getresponse()
            reply = r.read()
        except OSError as exc:
            raise SetupError(f"{self.name}: {action} failed: {exc}") from None
        finally:
            conn.close()
        if r.status != 200:
            raise SetupError(f"{self.name}: {action} -> HTTP {r.status}: {reply[:500]!r} "
                             f"(request {body[:300]!r})")
        return reply

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.base_url, "pid": self.pid, "signed": False,
                "routing_auth_header": self.auth is not None, **self.info}


def split_spec(spec: str) -> tuple[str, str]:
    head, sep, rest = spec.partition("=")
    if sep and "://" not in head:
        return head, rest
    return spec, spec


@contextmanager
def _process(name: str, cmd: list[str], port: int, auth: str | None,
             info: dict[str, Any]) -> Iterator[Endpoint]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_tcp(port, proc, name)
        yield Endpoint(name, "127.0.0.1", port, proc.pid, auth, info)
    finally:
        _stop(proc)


@contextmanager
def open_endpoint(spec: str, fsync: str = "always", routing_auth: bool = False) -> Iterator[Endpoint]:
    """Resolve a target spec, starting (and afterwards stopping) whatever it names;
    ``routing_auth``: send moto's routing header to a URL target too (a moto you started)."""
    name, what = split_spec(spec)
    port = free_port()
    if what == "ferrymq":
        with tempfile.TemporaryDirectory(prefix="ferrymq-bench-sqs-") as data:
            cmd = [sys.executable, "-m", "ferrymq.cli", "serve", "--data-dir", data, "--amqp-port", "0",
                   "--kafka-port", "0", "--http-port", str(port), "--fsync", fsync, "--log-level", "warning"]
            with _process(name, cmd, port, None, {"started": "ferrymq serve", "fsync": fsync}) as ep:
                yield ep
    elif what == "moto":
        cmd = [sys.executable, "-m", "moto.server", "-p", str(port)]
        with _process(name, cmd, port, ROUTING_AUTH, {"started": "moto.server (threaded werkzeug)"}) as ep:
            yield ep
    elif what == "sink":
        cmd = [sys.executable, "-m", "ferrymq.bench.sqs.sink", "--port", str(port)]
        with _process(name, cmd, port, None, {"started": "null SQS sink"}) as ep:
            yield ep
    elif what.startswith("http://"):
        u = urlparse(what)
        host, uport = u.hostname or "127.0.0.1", u.port or 80
        pid = listener_pid(uport) if host in ("127.0.0.1", "localhost") else 0
        yield Endpoint(name, host, uport, pid, ROUTING_AUTH if routing_auth else None, {"given": what})
    else:
        raise ValueError(f"unknown SQS target {spec!r}: ferrymq, moto, sink, http://host:port or name=URL")
