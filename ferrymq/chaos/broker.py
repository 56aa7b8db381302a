"""``ferrymq serve`` as a child process on a given data directory and fixed ports, so that it can
be killed (-9), stopped (SIGSTOP) and continued, and restarted on the same data and the same
ports: what the kill -9 loop, the job-system crash tests and QueueLab's faults need."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BrokerProcess:
    """One broker process at a time; ``start`` after ``kill9`` or ``stop`` is a restart."""

    def __init__(self, data_dir: Path, port: int, fsync: str = "always", log_path: Path | None = None,
                 kafka_port: int = 0, http_port: int = 0, extra_args: tuple[str, ...] = (),
                 module: str = "", env: dict[str, str] | None = None) -> None:
        self.data_dir, self.port, self.fsync = data_dir, port, fsync
        self.module, self.env = module, env  # another entry point (the lab's faulty serve) and its env
        self.kafka_port, self.http_port, self.extra_args = kafka_port, http_port, extra_args
        self.log_path = log_path or data_dir.parent / "broker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = 20.0) -> None:
        entry = ["-m", self.module] if self.module else ["-c", "from ferrymq.cli import main; main()"]
        cmd = [sys.executable, *entry, "serve",
               "--data-dir", str(self.data_dir), "--amqp-port", str(self.port),
               "--kafka-port", str(self.kafka_port), "--http-port", str(self.http_port),
               "--fsync", self.fsync, "--log-level", "info", *self.extra_args]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, **self.env} if self.env else None)
        deadline = time.monotonic() + timeout_s
        ports = [p for p in (self.port, self.kafka_port, self.http_port) if p]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}; see {self.log_path}")
            if all(_listens(p) for p in ports):
                return
            time.sleep(0.05)
        raise RuntimeError(f"broker did not listen on {ports} within {timeout_s} s")

    def kill9(self) -> None:
        if self.alive():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: the process holds its sockets but answers nothing (a GC pause, a stuck VM)."""
        if self.alive():
            os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.resume()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _listens(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False
