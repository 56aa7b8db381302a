"""Pieces for job-system tests: ``ferrymq worker`` child processes on tests/support/jobs_app.py,
the effects they record, and waiting on them."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.support.jobs_app:app"


class WorkerProcess:
    """``ferrymq worker <app>`` (tests.support.jobs_app:app unless told) as a child process."""

    def __init__(self, url: str, effects: Path, *args: str, log_path: Path | None = None,
                 lease: str | None = None, app: str = APP, env: dict[str, str] | None = None) -> None:
        env = {**os.environ, "FERRYMQ_JOBS_URL": url, "FERRYMQ_JOBS_EFFECTS": str(effects),
               "PYTHONPATH": str(ROOT), **(env or {})}
        if lease is not None:
            env["FERRYMQ_JOBS_LEASE"] = lease
        self.log_path = log_path or effects.with_suffix(".worker.log")
        with open(self.log_path, "ab") as log:
            argv = [sys.executable, "-m", "ferrymq.cli", "worker", app, *args]
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signum)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """SIGKILL the whole process group (children of a supervisor too)."""
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def runs(effects: Path, job: str | None = None) -> list[tuple[str, str, int, int, int]]:
    """(job, arg, attempt, pid, redelivered) of every recorded run."""
    if not effects.exists():
        return []
    with sqlite3.connect(effects, timeout=30) as conn:
        try:
            rows = conn.execute("SELECT job, arg, attempt, pid, redelivered FROM runs").fetchall()
        except sqlite3.OperationalError:  # the table is not created yet
            return []
    return [r for r in rows if job is None or r[0] == job]


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def queue_depth(url: str, queue: str) -> int:
    """Ready messages in ``queue`` (0 when it does not exist), by a passive declare."""
    import pika
    import pika.exceptions

    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker:
        return 0
    finally:
        conn.close()
