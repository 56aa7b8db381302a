"""A real Celery worker (subprocess) against FerryMQ, with the rpc:// result backend.

Two workers per module: ``main`` (classic priority queue ``ferry-main``, solo pool so execution
order is delivery order) and ``quorum`` (quorum queue on a topic exchange, which turns on Celery's
RabbitMQ-native delayed delivery: 28 TTL'd quorum queues chained by dead-lettering, x-overflow
reject-publish, topic exchanges and exchange-to-exchange bindings).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pytest
from celery import Celery

from tests.compat.celery_app import make_app

ROOT = Path(__file__).resolve().parents[2]
PRIORITIES = [1, 6, 3, 9, 2, 8, 5, 7]


class Worker:
    """``celery worker`` in a subprocess; output goes to a file whose tail explains failures."""

    def __init__(self, broker_url: str, mode: str, log_path: Path, pool: str) -> None:
        self.broker_url, self.mode, self.log_path, self.pool = broker_url, mode, log_path, pool
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        env = dict(os.environ, FERRYMQ_CELERY_BROKER=self.broker_url, FERRYMQ_CELERY_MODE=self.mode,
                   PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "celery", "-A", "tests.compat.celery_app", "worker",
               f"--pool={self.pool}", "--concurrency=2", "--loglevel=warning", "-n", f"{self.mode}@%h",
               "--without-gossip", "--without-mingle", "--without-heartbeat"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 60) -> str:
        code = self.proc.poll() if self.proc else None
        state = "running" if self.proc and code is None else f"exited with {code}"
        body = "\n".join(self.log().splitlines()[-lines:])
        return f"\n--- celery worker ({self.mode}, {state}) log tail: {self.log_path} ---\n{body}"

    def terminate(self) -> None:
        """SIGTERM: Celery's warm shutdown (the worker exits when its hub next wakes, up to ~10 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def reap(self, grace: float = 15) -> None:
        """Wait for the warm shutdown, SIGKILL after ``grace`` seconds."""
        if self.proc is None:
            return
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@dataclass
class CeleryEnv:
    app: Celery
    worker: Worker
    tmp: Path

    def task(self, name: str) -> Any:
        return self.app.tasks[f"ferry.{name}"]

    def get(self, result: Any, timeout: float = 20) -> Any:
        try:
            return result.get(timeout=timeout)
        except Exception as exc:
            raise AssertionError(f"{exc!r}{self.worker.tail()}") from exc



def _queue_depth(amqp_url: str, queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def _wait_lines(path: Path, n: int, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= n:
            break
        time.sleep(0.05)
    return lines


@pytest.fixture(scope="module")
def broker_url(ferry) -> str:
    return f"pyamqp://guest:guest@{ferry.settings.host}:{ferry.amqp_port}//"


@pytest.fixture(scope="module")
def workers(broker_url) -> Iterator[list[Worker]]:
    """Stops every worker of the module (before the broker goes away): SIGTERM, then SIGKILL.

    Celery's warm shutdown only takes effect when the worker's hub next wakes, which an idle worker
    does every 10 s (RabbitMQ behaves the same); a broadcast ``ping`` wakes them at once.
    """
    started: list[Worker] = []
    try:
        yield started
    finally:
        for worker in started:
            worker.terminate()
        if any(w.proc is not None and w.proc.poll() is None for w in started):
            time.sleep(0.2)  # let the signal land first
            nudger = make_app(broker_url)
            try:
                nudger.control.ping(timeout=0.5)
            except Exception:
                pass  # then reap() just waits longer
            finally:
                nudger.close()
        for worker in started:
            worker.reap()


@pytest.fixture(scope="module")
def main(ferry, workers, broker_url, tmp_path_factory) -> Iterator[CeleryEnv]:
    """The classic-queue worker, started only AFTER a batch of prioritised tasks was published."""
    tmp = tmp_path_factory.mktemp("celery-main")
    app = make_app(broker_url, "classic")
    worker = Worker(broker_url, "classic", tmp / "worker.log", pool="solo")
    env = CeleryEnv(app, worker, tmp)
    try:
        for p in PRIORITIES:
            env.task("record").apply_async((str(tmp / "priority-order.txt"), str(p)), priority=p)
        assert _queue_depth(ferry.amqp_url, "ferry-main") == len(PRIORITIES)
        workers.append(worker.start())
        env.get(env.task("add").delay(0, 0), timeout=30)  # worker is up (runs after the batch)
        yield env
    finally:
        worker.terminate()
        app.close()


@pytest.fixture(scope="module")
def quorum(workers, broker_url, tmp_path_factory) -> Iterator[CeleryEnv]:
    tmp = tmp_path_factory.mktemp("celery-quorum")
    app = make_app(broker_url, "quorum")
    worker = Worker(broker_url, "quorum", tmp / "worker.log", pool="threads")
    env = CeleryEnv(app, worker, tmp)
    try:
        workers.append(worker.start())
        env.get(env.task("add").delay(0, 0), timeout=30)
        yield env
    finally:
        worker.terminate()
        app.close()


def test_plain_task_returns_its_result(main):
    assert main.get(main.task("add").delay(2, 3)) == 5


def test_task_failing_twice_retries_with_countdown_then_succeeds(main):
    attempts_file = main.tmp / "flaky-attempts.txt"
    assert main.get(main.task("flaky").delay(str(attempts_file)), timeout=20) == 2
    attempts = [line.split() for line in attempts_file.read_text().splitlines()]
    assert [int(r) for r, _ in attempts] == [0, 1, 2], main.worker.tail()
    times = [float(t) for _, t in attempts]
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(times)), (times, main.worker.tail())


def test_acks_late_task_returns_result_and_leaves_nothing_queued(main, amqp_url):
    assert main.get(main.task("late_mul").delay(6, 7)) == 42
    assert _queue_depth(amqp_url, "ferry-main") == 0


def test_priority_queue_runs_higher_priority_tasks_first_when_worker_starts_after_publishing(main):
    order = _wait_lines(main.tmp / "priority-order.txt", len(PRIORITIES), timeout=10)
    assert [int(p) for p in order] == sorted(PRIORITIES, reverse=True), main.worker.tail()


def test_chain_passes_each_result_to_the_next_task(main):
    add = main.task("add")
    assert main.get((add.s(1, 2) | add.s(3)).apply_async()) == 6


def test_native_delayed_delivery_on_quorum_queue_parks_countdown_task_broker_side(quorum, amqp_url):
    # The worker's DelayedDelivery bootstep declared the 28-level topology and bound our queue.
    assert "delayed delivery" not in quorum.worker.log().lower(), quorum.worker.tail()
    for level in (0, 1, 27):
        assert _queue_depth(amqp_url, f"celery_delayed_{level}") == 0
    sent = time.time()
    result = quorum.task("stamp").apply_async(countdown=2)
    time.sleep(0.5)
    # countdown 2 = binary ...010: the message waits in level 1 (x-message-ttl 2000 ms), not in our queue.
    assert _queue_depth(amqp_url, "celery_delayed_1") == 1, quorum.worker.tail()
    ran_at = quorum.get(result, timeout=20)
    assert ran_at - sent >= 2.0
    assert _queue_depth(amqp_url, "celery_delayed_1") == 0
