"""A private, throwaway RabbitMQ node (Debian's rabbitmq-server) for side-by-side runs and
differential tests: its own node name, ports, data and config in a temporary directory."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
START_TIMEOUT_S = 90.0


def available() -> bool:
    return Path(SERVER).exists()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RabbitNode:
    port: int
    dist_port: int
    home: Path
    process: subprocess.Popen[bytes] | None = None
    started_s: float = field(default=0.0)

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    @property
    def pid(self) -> int:
        """The Erlang VM's pid (the script execs into it), for CPU accounting."""
        assert self.process is not None
        out = subprocess.run(["pgrep", "-g", str(self.process.pid), "beam.smp"],
                             capture_output=True, text=True, check=False).stdout.split()
        return int(out[0]) if out else (self.process.pid if self.process else 0)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        shutil.rmtree(self.home, ignore_errors=True)


def start_rabbitmq() -> RabbitNode:
    home = Path(tempfile.mkdtemp(prefix="ferry-rabbit-"))
    node = RabbitNode(free_port(), free_port(), home)
    (home / "enabled_plugins").write_text("[].\n")
    (home / "rabbitmq.conf").write_text("loopback_users = none\n")
    env = dict(
        os.environ, HOME=str(home), RABBITMQ_NODENAME=f"ferrybench{node.port}@localhost",
        RABBITMQ_NODE_PORT=str(node.port), RABBITMQ_DIST_PORT=str(node.dist_port),
        RABBITMQ_MNESIA_BASE=str(home / "mnesia"), RABBITMQ_LOG_BASE=str(home / "log"),
        RABBITMQ_CONFIG_FILE=str(home / "rabbitmq"), RABBITMQ_PID_FILE=str(home / "pid"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(home / "enabled_plugins"),
    )
    env.pop("RABBITMQ_ALLOW_INPUT", None)  # with it the VM runs a shell and dies on EOF
    t0 = time.monotonic()
    node.process = subprocess.Popen(
        [SERVER], env=env, stdin=subprocess.DEVNULL, stdout=(home / "out.log").open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    while time.monotonic() - t0 < START_TIMEOUT_S:
        if node.process.poll() is not None:
            raise RuntimeError(f"rabbitmq-server exited: {(home / 'out.log').read_text()[-2000:]}")
        if _answers_amqp(node.port):
            node.started_s = time.monotonic() - t0
            return node
        time.sleep(0.5)
    node.stop()
    raise TimeoutError("rabbitmq-server did not start in time")


def _answers_amqp(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            return s.recv(1) == b"\x01"  # a connection.start method frame
    except OSError:
        return False
