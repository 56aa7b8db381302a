"""Celery's features on FerryMQ, each proven by real ``celery worker`` subprocesses (and, where a
RabbitMQ node is installed, the same test against RabbitMQ, so a difference is a broker bug).

Every test gets its own queue (classic: ``x-max-priority`` 10 and a dead-letter route; or quorum),
its own result backend (filesystem, or rpc://) and its own workers (threads pool, or prefork where
processes are killed), and SIGKILLs each worker's whole process group on the way out. Every publish
uses publisher confirms.

Complementary to tests/compat/test_celery.py (plain results, self.retry, a priority backlog, chain,
quorum-queue native delays), this proves: autoretry; worker-side countdown/ETA (order, never early,
held unacked and returned when the worker dies); acks_late across a SIGKILLed worker (classic and
quorum, with x-delivery-count) and a killed pool child; chain, group, chord; Reject into a DLX with
RabbitMQ's x-death; priority behind a running task with prefetch 1; revoke, and revoke learnt by
mingle; the pidbox (inspect, control add/cancel_consumer and shutdown, the ``celery inspect`` CLI,
exclusive and auto-delete queues); task events; reconnecting across a FerryMQ restart; and
backpressure (a reject-publish nack reaching apply_async).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kombu.exceptions
import pika
import pika.compat
import pika.exceptions
import pytest
from celery import Celery, chain, chord, group
from kombu import Exchange, Queue

from ferrymq.testing import EmbeddedBroker
from tests.compat.celery_features_app import make_app

ROOT = Path(__file__).resolve().parents[2]
APP_MODULE = "tests.compat.celery_features_app"
CONTROL_TIMEOUT = 5.0
ETA_SLACK = 0.1  # Celery turns an ETA into a timer on the worker's clock: allow its rounding, no more
# The differential run is kept to where it is cheap: tests whose broker traffic another test here
# already compares (plain publishes, broadcasts) and that wait on Celery's own timers run on FerryMQ only.
FERRYMQ_ONLY = pytest.mark.parametrize("broker_url", ["ferrymq"], indirect=True)


@pytest.fixture(scope="module", params=["ferrymq", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def broker_url(request: pytest.FixtureRequest) -> str:
    """The same tests against FerryMQ and (when installed) a private RabbitMQ node."""
    if request.param == "ferrymq":
        return str(request.getfixturevalue("ferry").amqp_url)
    return str(request.getfixturevalue("rabbitmq_url"))


class Worker:
    """One ``celery worker`` subprocess in a session of its own, so its pool children die with it."""

    def __init__(self, env: dict[str, str], log_path: Path, pool: str, concurrency: int,
                 extra: tuple[str, ...] = ()) -> None:
        self.name = f"w{uuid.uuid4().hex[:8]}@ferrymq-test"
        self.log_path = log_path
        cmd = [sys.executable, "-m", "celery", "-A", APP_MODULE, "worker", f"--pool={pool}",
               f"--concurrency={concurrency}", "--loglevel=info", "-n", self.name,
               "--without-gossip", "--without-heartbeat", *extra]
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def tail(self, lines: int = 40) -> str:
        code = self.proc.poll()
        state = "running" if code is None else f"exited with {code}"
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        body = "\n".join(text.splitlines()[-lines:])
        return f"\n--- celery worker {self.name} ({state}): {self.log_path} ---\n{body}"

    def wait_ready(self, timeout: float = 30) -> Worker:
        if not poll(lambda: " ready." in self.log_path.read_text(errors="replace"), timeout,
                    lambda: self.proc.poll() is not None):
            raise AssertionError(f"worker not ready in {timeout} s{self.tail()}")
        return self

    def kill(self) -> None:
        """SIGKILL to the worker and its pool children at once (as the OOM killer or a power cut)."""
        _signal_group(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """Teardown: no warm or cold shutdown (an idle worker only notices those when its hub next
        wakes, up to 10 s later); each test's queue is its own, so a requeued leftover harms nothing."""
        if self.proc.poll() is None:
            self.kill()
        _signal_group(self.proc.pid, signal.SIGKILL)  # pool children the parent left behind


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def poll(ready: Callable[[], bool], timeout: float, give_up: Callable[[], bool] = lambda: False) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return True
        except FileNotFoundError:
            pass
        if give_up():
            return False
        time.sleep(0.05)
    return False


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@dataclass
class CeleryRun:
    """One test's Celery world: a client app, its queue, its files, the workers it started."""

    broker_url: str
    tmp: Path
    queue: str = field(default_factory=lambda: f"feat-{uuid.uuid4().hex[:8]}")
    workers: list[Worker] = field(default_factory=list)
    backend: str = ""  # the filesystem backend in tmp unless given
    queue_type: str = "classic"

    def __post_init__(self) -> None:
        if not self.backend:
            (self.tmp / "results").mkdir()
            self.backend = f"file://{self.tmp / 'results'}"
        self.app: Celery = make_app(self.broker_url, self.backend, self.queue, queue_type=self.queue_type)
        self.env = dict(os.environ, FERRYMQ_CELERY_BROKER=self.broker_url, PYTHONUNBUFFERED="1",
                        FERRYMQ_CELERY_RESULTS=self.backend, FERRYMQ_CELERY_QUEUE=self.queue,
                        FERRYMQ_CELERY_QUEUE_TYPE=self.queue_type)

    def task(self, name: str) -> Any:
        return self.app.tasks[f"feat.{name}"]

    def worker(self, pool: str = "threads", concurrency: int = 1, prefetch: int = 1,
               extra: tuple[str, ...] = (), mingle: bool = False) -> Worker:
        """Mingle (ask the running workers for their revoked tasks at start) only when asked for."""
        env = dict(self.env, FERRYMQ_CELERY_PREFETCH=str(prefetch))
        flags = extra if mingle else ("--without-mingle", *extra)
        worker = Worker(env, self.tmp / f"worker-{len(self.workers)}.log", pool, concurrency, flags)
        self.workers.append(worker)
        return worker.wait_ready()

    def tails(self) -> str:
        return "".join(w.tail() for w in self.workers)

    def get(self, result: Any, timeout: float = 20) -> Any:
        try:
            return result.get(timeout=timeout, interval=0.05)
        except Exception as exc:
            raise AssertionError(f"{exc!r}{self.tails()}") from exc

    def wait_lines(self, path: Path, n: int, timeout: float = 20) -> list[str]:
        if not poll(lambda: len(lines(path)) >= n, timeout):
            raise AssertionError(f"{path.name}: {lines(path)} (wanted {n} lines){self.tails()}")
        return lines(path)

    def declare_passive(self, queue: str) -> int:
        """200 if the queue exists and may be declared, else the broker's reply code (404, 405)."""
        conn = pika.BlockingConnection(pika.URLParameters(self.broker_url))
        try:
            conn.channel().queue_declare(queue, passive=True)
            return 200
        except pika.exceptions.ChannelClosedByBroker as exc:
            return int(exc.reply_code)
        finally:
            if conn.is_open:
                conn.close()

    def depth(self, queue: str | None = None) -> int:
        conn = pika.BlockingConnection(pika.URLParameters(self.broker_url))
        try:
            return int(conn.channel().queue_declare(queue or self.queue, passive=True).method.message_count)
        finally:
            conn.close()

    def start_gated(self, label: str = "gate") -> tuple[Any, Path]:
        """A task that holds the only pool slot until the returned gate file is created."""
        gate, trace = self.tmp / f"{label}.open", self.tmp / f"{label}.trace"
        result = self.task("gated").delay(str(trace), label, str(gate))
        self.wait_lines(trace, 1)
        return result, gate


@contextmanager
def session(run: CeleryRun) -> Iterator[CeleryRun]:
    """Stops the run's workers (SIGKILL to each group) and closes its client app, whatever happened."""
    try:
        yield run
    finally:
        for worker in run.workers:
            worker.stop()
        run.app.close()


@pytest.fixture
def celery(broker_url: str, tmp_path: Path) -> Iterator[CeleryRun]:
    with session(CeleryRun(broker_url, tmp_path)) as run:
        yield run


@pytest.fixture
def celery_rpc(broker_url: str, tmp_path: Path) -> Iterator[CeleryRun]:
    """Results over AMQP: each worker publishes to the caller's exclusive, auto-delete reply queue."""
    with session(CeleryRun(broker_url, tmp_path, backend="rpc://")) as run:
        yield run


@FERRYMQ_ONLY
def test_autoretry_for_runs_again_after_its_countdown_and_succeeds_on_attempt_2(celery):
    celery.worker()
    trace = celery.tmp / "attempts"
    assert celery.get(celery.task("autoretry").delay(str(trace))) == 2
    runs = [line.split() for line in lines(trace)]
    assert [int(retries) for retries, _ in runs] == [0, 1], celery.tails()
    first, second = (float(at) for _, at in runs)
    assert second >= first + 1 - ETA_SLACK, (runs, celery.tails())  # not before its countdown


@FERRYMQ_ONLY
def test_countdown_and_eta_tasks_run_after_a_task_sent_later_and_not_before_their_eta(celery):
    """One slot, prefetch 4 (Celery's default): the worker holds both ETA tasks unacked and still runs the
    plain task sent after them. (With prefetch 1 a Celery worker applies the basic.qos raise it makes for
    a held ETA task only when its event loop next wakes, which is at that ETA: the same on RabbitMQ.)"""
    celery.worker(prefetch=4)
    trace, record = celery.tmp / "order", celery.task("record")
    eta = datetime.now(UTC) + timedelta(seconds=2)
    late = record.apply_async((str(trace), "eta"), eta=eta)
    sent = time.time()
    mid = record.apply_async((str(trace), "countdown"), countdown=1)
    soon = record.delay(str(trace), "now")
    assert [celery.get(r) for r in (soon, mid, late)] == ["now", "countdown", "eta"]
    ran = dict(line.split() for line in lines(trace))
    assert list(ran) == ["now", "countdown", "eta"], celery.tails()
    assert float(ran["countdown"]) >= sent + 1 - ETA_SLACK
    assert float(ran["eta"]) >= eta.timestamp() - ETA_SLACK
    assert celery.depth() == 0


@pytest.fixture
def celery_quorum(broker_url: str, tmp_path: Path) -> Iterator[CeleryRun]:
    """A quorum queue: Celery turns global QoS off for it (per-consumer prefetch)."""
    with session(CeleryRun(broker_url, tmp_path, queue_type="quorum")) as run:
        yield run


def test_acks_late_task_of_a_sigkilled_worker_is_redelivered_to_a_new_worker_and_completes(celery):
    _sigkilled_worker_task_completes_on_the_next(celery, delivery_count="None")


def test_acks_late_task_on_a_quorum_queue_survives_a_sigkilled_worker_too(celery_quorum):
    _sigkilled_worker_task_completes_on_the_next(celery_quorum, delivery_count="1")
    conn = pika.BlockingConnection(pika.URLParameters(celery_quorum.broker_url))
    try:  # it really was a quorum queue: declaring it classic is refused as inequivalent
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            conn.channel().queue_declare(celery_quorum.queue, durable=True,
                                         arguments={"x-queue-type": "classic"})
        assert refused.value.reply_code == 406
    finally:
        conn.close()


def _sigkilled_worker_task_completes_on_the_next(celery: CeleryRun, delivery_count: str) -> None:
    first = celery.worker(pool="prefork")
    trace = celery.tmp / "runs"
    result = celery.task("hang_once").delay(str(trace))
    celery.wait_lines(trace, 1)
    first.kill()  # unacked (acks_late): the broker must requeue it when the connection drops
    celery.worker(pool="prefork")
    assert celery.get(result, timeout=30) == 2
    (pid1, *first_run), (pid2, *second_run) = (line.split() for line in lines(trace))
    # (redelivered flag, x-delivery-count): a quorum queue counts the return, a classic one does not
    assert first_run == ["0", "None"] and second_run == ["1", delivery_count] and pid1 != pid2, celery.tails()


def test_pool_child_killed_mid_task_is_rejected_back_to_the_queue_and_runs_again(celery):
    """task_reject_on_worker_lost: the parent sees WorkerLostError and basic.reject(requeue=True)s."""
    worker = celery.worker(pool="prefork")
    trace = celery.tmp / "runs"
    result = celery.task("hang_once").delay(str(trace))
    pid1, *_ = celery.wait_lines(trace, 1)[0].split()
    os.kill(int(pid1), signal.SIGKILL)  # the pool child, a descendant of our worker
    # The parent reaps a dead child when its event loop next turns (else by a 5 s timer): wake it.
    celery.app.control.ping(destination=[worker.name], timeout=1)
    assert celery.get(result, timeout=30) == 2
    assert [line.split()[1:] for line in lines(trace)] == [["0", "None"], ["1", "None"]], celery.tails()
    assert celery.depth() == 0


@FERRYMQ_ONLY
def test_chain_group_and_chord_return_their_combined_results(celery):
    celery.worker(concurrency=2)
    add, tsum = celery.task("add"), celery.task("tsum")
    assert celery.get(chain(add.s(1, 2), add.s(3), add.s(4)).apply_async()) == 10
    assert celery.get(group(add.s(i, i) for i in range(5)).apply_async()) == [0, 2, 4, 6, 8]
    # the filesystem backend joins a chord by chord_unlock, a task that retries itself until ready
    assert celery.get(chord((add.s(i, i) for i in range(5)), tsum.s()).apply_async(), timeout=30) == 20


def test_group_and_chain_results_come_back_over_the_rpc_backends_reply_queue(celery_rpc):
    celery_rpc.worker(concurrency=2)
    add = celery_rpc.task("add")
    results = group(add.s(i, 10 * i) for i in range(6)).apply_async()
    assert celery_rpc.get(results) == [11 * i for i in range(6)]
    assert celery_rpc.get(chain(add.s(1, 1), add.s(2)).apply_async()) == 4


def test_task_raising_reject_without_requeue_is_dead_lettered_with_rabbitmqs_x_death(celery):
    dlq = f"{celery.queue}.dlq"
    conn = pika.BlockingConnection(pika.URLParameters(celery.broker_url))
    try:
        channel = conn.channel()
        channel.queue_declare(dlq)
        celery.worker()
        trace = celery.tmp / "refused"
        sent = celery.task("refuse").delay(str(trace))
        assert poll(lambda: celery.depth(dlq) == 1, 15), celery.tails()
        method, props, body = channel.basic_get(dlq, auto_ack=True)
    finally:
        conn.close()
    assert lines(trace) == ["refused 0"] and celery.depth() == 0, celery.tails()  # ran once
    headers = props.headers
    assert (headers["id"], headers["task"], method.routing_key) == (sent.id, "feat.refuse", dlq)
    (death,) = headers["x-death"]
    # Celery publishes through the default exchange, routing key = queue name
    assert {k: death[k] for k in ("count", "reason", "queue", "exchange", "routing-keys")} == {
        "count": 1, "reason": "rejected", "queue": celery.queue, "exchange": "",
        "routing-keys": [celery.queue]}, headers
    assert isinstance(death["count"], pika.compat.long), headers  # a 64-bit 'l' field, as RabbitMQ writes it
    assert isinstance(death["time"], datetime), headers
    assert (headers["x-first-death-reason"], headers["x-first-death-queue"],
            headers["x-first-death-exchange"]) == ("rejected", celery.queue, ""), headers
    assert props.priority == 0 and props.correlation_id == sent.id and json.loads(body)[0][0] == str(trace)


def test_high_priority_task_queued_behind_low_ones_runs_first_with_prefetch_1(celery):
    celery.worker()
    _, gate = celery.start_gated()
    trace, record = celery.tmp / "order", celery.task("record")
    sent = [record.apply_async((str(trace), f"low{i}"), priority=1) for i in range(3)]
    sent.append(record.apply_async((str(trace), "high"), priority=9))
    assert celery.depth() == 4  # prefetch 1 and an unacked gated task: all four wait in the broker
    gate.touch()
    for result in sent:
        celery.get(result)
    assert [line.split()[0] for line in lines(trace)] == ["high", "low0", "low1", "low2"], celery.tails()


def test_revoked_queued_task_never_runs_and_is_acknowledged(celery):
    worker = celery.worker()
    _, gate = celery.start_gated()
    trace, record = celery.tmp / "ran", celery.task("record")
    doomed = record.delay(str(trace), "doomed")
    after = record.delay(str(trace), "after")
    replies = celery.app.control.revoke(doomed.id, reply=True, destination=[worker.name],
                                        timeout=CONTROL_TIMEOUT)
    assert [worker.name] == [name for reply in replies for name in reply], (replies, celery.tails())
    gate.touch()
    assert celery.get(after) == "after"
    assert [line.split()[0] for line in lines(trace)] == ["after"], celery.tails()
    assert poll(lambda: doomed.state == "REVOKED", 10), (doomed.state, celery.tails())
    assert celery.depth() == 0


@FERRYMQ_ONLY
def test_worker_started_later_learns_a_revoke_from_the_running_worker_by_mingle_and_discards_it(celery):
    """Mingle: a new worker broadcasts "hello" and merges the revoked ids the others reply with."""
    first = celery.worker()
    _, gate = celery.start_gated()
    trace, record = celery.tmp / "ran", celery.task("record")
    doomed = record.delay(str(trace), "doomed")
    replies = celery.app.control.revoke(doomed.id, reply=True, destination=[first.name],
                                        timeout=CONTROL_TIMEOUT)
    assert replies, celery.tails()
    second = celery.worker(mingle=True)  # the only worker with a free slot: doomed goes to it
    assert poll(lambda: doomed.state == "REVOKED", 15), (doomed.state, celery.tails())
    # the state is stored before the worker's log line is flushed: wait for the line, not only the state
    assert poll(lambda: "Discarding revoked task" in second.log_path.read_text(), 10), celery.tails()
    gate.touch()
    assert celery.get(record.delay(str(trace), "after")) == "after"
    assert [line.split()[0] for line in lines(trace)] == ["after"], celery.tails()


def test_inspect_ping_and_active_answer_through_the_pidbox_while_a_task_runs(celery):
    worker = celery.worker()
    running, gate = celery.start_gated()
    inspect = celery.app.control.inspect(destination=[worker.name], timeout=CONTROL_TIMEOUT)
    assert inspect.ping() == {worker.name: {"ok": "pong"}}, celery.tails()
    active = inspect.active() or {}
    assert [t["id"] for t in active.get(worker.name, [])] == [running.id], (active, celery.tails())
    cli = subprocess.run([sys.executable, "-m", "celery", "-A", APP_MODULE, "inspect", "ping", "--json",
                          "-d", worker.name, "-t", str(CONTROL_TIMEOUT)],
                         cwd=ROOT, env=celery.env, capture_output=True, text=True, timeout=30)
    assert json.loads(cli.stdout.strip().splitlines()[-1]) == {worker.name: {"ok": "pong"}}, cli.stderr
    gate.touch()
    assert celery.get(running) == "gate"


def test_control_add_consumer_makes_the_worker_consume_a_new_queue_and_cancel_consumer_stops_it(celery):
    worker = celery.worker()
    control, extra = celery.app.control, f"{celery.queue}-extra"

    def active_queues() -> list[str]:
        answer = control.inspect(destination=[worker.name], timeout=CONTROL_TIMEOUT).active_queues() or {}
        return sorted(q["name"] for q in answer.get(worker.name, []))

    reply = control.add_consumer(extra, reply=True, destination=[worker.name], timeout=CONTROL_TIMEOUT)
    assert reply and "ok" in reply[0][worker.name], (reply, celery.tails())
    # the worker replies "ok" first and attaches the consumer on its next loop turn (call_soon)
    both = sorted([celery.queue, extra])
    assert poll(lambda: active_queues() == both, 10), (active_queues(), celery.tails())
    trace = celery.tmp / "extra"
    assert celery.get(celery.task("record").apply_async((str(trace), "extra"), queue=extra)) == "extra"
    reply = control.cancel_consumer(extra, reply=True, destination=[worker.name], timeout=CONTROL_TIMEOUT)
    assert reply and "ok" in reply[0][worker.name], (reply, celery.tails())
    assert poll(lambda: active_queues() == [celery.queue], 10), (active_queues(), celery.tails())
    celery.task("record").apply_async((str(trace), "parked"), queue=extra)
    # a task sent after it, to the queue still consumed, runs: the worker is alive and fetching
    assert celery.get(celery.task("record").delay(str(trace), "main")) == "main"
    assert [line.split()[0] for line in lines(trace)] == ["extra", "main"] and celery.depth(extra) == 1


def test_countdown_task_is_held_unacked_by_its_worker_and_returns_to_the_queue_when_the_worker_dies(celery):
    """Celery holds a countdown task in worker memory, unacknowledged (why a countdown longer than the
    broker's consumer timeout is a hazard): killing the worker gives it back, to the next worker."""
    first = celery.worker(prefetch=4)
    trace = celery.tmp / "held"
    held = celery.task("record").apply_async((str(trace), "held"), countdown=120)

    def scheduled(worker: Worker) -> list[str]:
        inspect = celery.app.control.inspect(destination=[worker.name], timeout=CONTROL_TIMEOUT)
        return [t["request"]["id"] for t in (inspect.scheduled() or {}).get(worker.name, [])]

    assert poll(lambda: scheduled(first) == [held.id], 10), celery.tails()
    assert celery.depth() == 0
    first.kill()
    assert poll(lambda: celery.depth() == 1, 10), celery.tails()
    second = celery.worker(prefetch=4)
    assert poll(lambda: scheduled(second) == [held.id], 10), celery.tails()
    assert not trace.exists()  # and it never ran before its ETA


def test_task_events_from_a_worker_with_events_on_reach_a_receiver_in_order(celery):
    """-E: the worker publishes to the celeryev topic exchange; the receiver's queue is auto-delete,
    with x-message-ttl and x-expires. Its wakeup broadcast makes the worker send a heartbeat event,
    which says the receiver's queue is bound: only then is the task sent."""
    celery.worker(extra=("-E",))
    events: list[dict[str, Any]] = []
    sent: Any = None
    with celery.app.connection() as conn:
        receiver = celery.app.events.Receiver(conn, handlers={"*": events.append})
        for _ in receiver.consume(timeout=20, wakeup=True):
            if sent is None and any(e["type"] == "worker-heartbeat" for e in events):
                sent = celery.task("add").delay(2, 2)
            if sent is not None and any(e.get("uuid") == sent.id and e["type"] == "task-succeeded"
                                        for e in events):
                break
    ours = [e["type"] for e in events if sent is not None and e.get("uuid") == sent.id]
    assert ours == ["task-received", "task-started", "task-succeeded"], (ours, celery.tails())


def test_worker_reconnects_after_a_ferrymq_restart_and_runs_what_was_queued_and_what_was_unacked(tmp_path):
    """FerryMQ only (a RabbitMQ restart costs seconds): persistent tasks in a durable queue, one
    queued and one delivered but unacknowledged (acks_late), survive the restart; the worker
    reconnects by itself and runs both, the unacknowledged one marked redelivered."""
    data = str(tmp_path / "ferry")
    brokers = [EmbeddedBroker(data_dir=data).start()]
    try:
        port = brokers[0].amqp_port
        with session(CeleryRun(brokers[0].amqp_url, tmp_path)) as celery:
            celery.worker()
            running, gate = celery.start_gated()
            trace = celery.tmp / "queued"
            queued = celery.task("record").delay(str(trace), "queued")
            assert celery.depth() == 1
            brokers[0].stop()
            brokers.append(EmbeddedBroker(data_dir=data, amqp_port=port).start())
            gate.touch()
            assert celery.get(queued, timeout=40) == "queued"
            assert celery.wait_lines(celery.tmp / "gate.trace", 2, timeout=30) == [
                "start gate 0", "start gate 1"]
            assert celery.get(running) == "gate"
    finally:
        for broker in brokers:
            broker.stop()




def test_control_shutdown_stops_the_worker_and_pidbox_queues_go_with_their_users(celery):
    """A broadcast shutdown ends the worker with status 0. The same answers as RabbitMQ gives: a
    worker's pidbox queue is exclusive (405 to others), and the exclusive and auto-delete queues go
    when their connection or consumer does (shutdown, SIGKILL, a reply collected)."""
    control = celery.app.control
    first = celery.worker()
    assert control.ping(destination=[first.name], timeout=CONTROL_TIMEOUT), celery.tails()
    assert celery.declare_passive(f"{control.mailbox.oid}.reply.celery.pidbox") == 404
    assert celery.declare_passive(f"{first.name}.celery.pidbox") == 405
    control.shutdown(destination=[first.name])
    try:
        assert first.proc.wait(20) == 0, celery.tails()
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"worker still running{celery.tails()}") from exc
    assert celery.declare_passive(f"{first.name}.celery.pidbox") == 404
    second = celery.worker()
    assert celery.declare_passive(f"{second.name}.celery.pidbox") == 405
    second.kill()
    assert poll(lambda: celery.declare_passive(f"{second.name}.celery.pidbox") == 404, 10)
    assert celery.declare_passive(celery.queue) == 200




def test_apply_async_to_a_full_reject_publish_queue_fails_at_the_caller_when_confirms_are_on(celery):
    """Backpressure reaches Celery: the broker nacks the publish (x-overflow reject-publish), kombu
    raises, Celery reports it from apply_async; the queue keeps only what it accepted."""
    name = f"{celery.queue}-bounded"
    bounded = Queue(name, Exchange(name), routing_key=name,
                    queue_arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    add = celery.task("add")
    add.apply_async((1, 1), queue=bounded)
    with pytest.raises(kombu.exceptions.OperationalError):
        add.apply_async((1, 2), queue=bounded)
    assert celery.depth(name) == 1
