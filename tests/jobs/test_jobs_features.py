"""Job features on a real worker (in this process, over a real socket to an EmbeddedBroker, or
RabbitMQ): async jobs, time limits, middleware verdicts, eager mode, replayable retry schedules."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pika
import pytest

from ferrymq.chaos.broker import BrokerProcess, free_port
from ferrymq.clock import ManualClock
from ferrymq.jobs import App, Defer, Middleware, Retry, Skip, SoftTimeLimitExceeded
from ferrymq.jobs.message import JobMessage
from ferrymq.jobs.testing import worker_thread
from tests.support.jobs import queue_depth, wait_until

pytestmark = pytest.mark.timeout(120)


def dead_letters(url: str, queue: str) -> list[tuple[JobMessage, dict]]:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch, out = conn.channel(), []
    while True:
        method, props, body = ch.basic_get(f"{queue}.dlq", auto_ack=True)
        if method is None:
            break
        out.append((JobMessage.from_body(body), props.headers))
    conn.close()
    return out


def test_async_jobs_run_concurrently_on_the_workers_event_loop(amqp_url):
    app = App(amqp_url, queues={"async-q": 50})
    loops, done = set(), []

    @app.job(name="nap", queue="async-q")
    async def nap(n: int) -> None:
        loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0.05)
        done.append(n)

    nap.send_many([(i,) for i in range(40)])
    with worker_thread(app, concurrency=20):
        wait_until(lambda: len(done) == 40, 30, "40 async jobs")
    assert sorted(done) == list(range(40)) and len(loops) == 1


def test_hard_time_limit_stops_a_runaway_job_which_is_retried_then_dead_lettered(amqp_url):
    app = App(amqp_url, queues={"limits-q": 50})
    started = []

    @app.job(name="runaway", queue="limits-q", timeout="300ms", retries=1, backoff=["10ms"])
    def runaway() -> None:
        started.append(time.monotonic())
        for _ in range(200):  # 10 s if nothing stops it
            time.sleep(0.05)

    runaway.send()
    with worker_thread(app, concurrency=2):
        wait_until(lambda: dead_letters_count(amqp_url, "limits-q") == 1, 30, "the dead letter")
    [(dead, headers)] = dead_letters(amqp_url, "limits-q")
    assert "TimeLimitExceeded" in headers["x-job-error"] and len(started) == 2
    assert [h["attempt"] for h in dead.extra["history"]] == [0, 1]


def dead_letters_count(url: str, queue: str) -> int:
    return queue_depth(url, f"{queue}.dlq")


def test_soft_time_limit_lets_the_job_clean_up_and_finish(amqp_url):
    app = App(amqp_url, queues={"soft-q": 50})
    outcome = []

    @app.job(name="tidy", queue="soft-q", soft_timeout="200ms", timeout="5s", retries=0)
    def tidy() -> None:
        try:
            for _ in range(100):
                time.sleep(0.05)
            outcome.append("ran to the end")
        except SoftTimeLimitExceeded:
            outcome.append("cleaned up")

    tidy.send()
    with worker_thread(app, concurrency=1):
        wait_until(lambda: outcome, 30, "the job to end")
    assert outcome == ["cleaned up"] and dead_letters_count(amqp_url, "soft-q") == 0


class Verdicts(Middleware):
    """Skips jobs whose first argument is 'skip'; defers 'later' once (no attempt spent)."""

    def __init__(self) -> None:
        self.deferred: list[str] = []

    def before_process(self, ctx, message):
        if message.args[0] == "skip":
            raise Skip("told to")
        if message.args[0] == "later" and not self.deferred:
            self.deferred.append(message.id)
            raise Defer(50, "not yet")


def test_middleware_skip_acks_without_running_and_defer_reruns_without_spending_an_attempt(amqp_url):
    verdicts = Verdicts()
    app = App(amqp_url, queues={"mw-q": 50}, middleware=[verdicts])
    ran = []

    @app.job(name="echo", queue="mw-q", retries=0)
    def echo(word: str) -> None:
        ran.append((word, ctx_attempt()))

    for word in ("skip", "later", "now"):
        echo.send(word)
    with worker_thread(app, concurrency=2):
        wait_until(lambda: len(ran) == 2, 30, "two runs")
        time.sleep(0.2)
    assert sorted(ran) == [("later", 0), ("now", 0)] and verdicts.deferred
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    assert conn.channel().queue_declare("mw-q", passive=True).method.message_count == 0
    conn.close()


def ctx_attempt() -> int:
    from ferrymq.jobs import current

    return current.message.attempt


def test_eager_mode_runs_in_place_through_retries_to_the_dead_letters():
    app = App("eager://", seed=3)
    calls = []

    @app.job(name="flaky", retries=2, backoff="exponential", min_delay="1s", max_delay="10s")
    def flaky(n: int) -> int:
        calls.append(n)
        raise Retry(after="5s") if len(calls) == 1 else RuntimeError("still broken")

    message = flaky.send(1)
    assert calls == [1, 1, 1]
    assert [delay for _, delay in app.eager_reruns] == [5_000, app.retry_schedule("flaky", message.id)[1]]
    [(dead, headers)] = app.eager_dead
    assert dead.id == message.id and "retries exhausted" in headers["x-job-error"]


def test_retry_schedule_replays_from_the_seed_and_respects_floor_and_cap():
    def schedule(seed: int) -> list[int]:
        app = App("eager://", seed=seed, clock=ManualClock())
        app.job(name="j", retries=12, min_delay="1s", max_delay="1m")(lambda: None)
        return app.retry_schedule("j", "job-1")

    assert schedule(11) == schedule(11)
    assert schedule(11) != schedule(12)
    assert all(500 <= d <= 60_000 for d in schedule(11))
    fixed = App("eager://")
    fixed.job(name="f", retries=4, backoff=["1s", "5s", "30s"])(lambda: None)
    assert fixed.retry_schedule("f", "x") == [1_000, 5_000, 30_000, 30_000]


def test_the_same_app_runs_on_rabbitmq_with_ttl_queue_delays_retries_and_dead_letters(rabbitmq_url):
    app = App(rabbitmq_url, queues={"rq": 50})
    order: list[str] = []
    lock = threading.Lock()

    @app.job(name="say", queue="rq", retries=1, backoff=["200ms"])
    def say(word: str) -> None:
        with lock:
            order.append(word)
        if word == "bad":
            raise ValueError("bad word")

    say.send("late", delay="1500ms")
    say.send("now")
    say.send("bad")
    with worker_thread(app, concurrency=2):
        wait_until(lambda: order.count("late") == 1 and dead_letters_count(rabbitmq_url, "rq") == 1, 60,
                   "the delayed job and the dead letter")
    assert order.index("now") < order.index("late") and order.count("bad") == 2
    assert not app.publisher.topology or not app.publisher.topology.ferrymq


def test_a_worker_reconnects_after_the_broker_restarts_and_goes_on(tmp_path: Path):
    port = free_port()
    broker = BrokerProcess(tmp_path / "data", port)
    broker.start()
    url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
    app = App(url, queues={"rc": 50})
    done = []
    app.job(name="note", queue="rc")(lambda n: done.append(n))
    try:
        with worker_thread(app, concurrency=2):
            app.jobs["note"].send(1)
            wait_until(lambda: done == [1], 30, "the first job")
            app.close()
            broker.stop()
            broker.start()
            sender = App(url, queues={"rc": 50})
            sender.job(name="note", queue="rc")(lambda n: None)
            sender.jobs["note"].send(2)
            sender.close()
            wait_until(lambda: 2 in done, 60, "the job sent after the restart")
    finally:
        broker.kill9()


def test_app_result_waits_for_a_stored_result_and_a_cancelled_queued_job_never_runs(amqp_url, tmp_path):
    app = App(amqp_url, store=f"sqlite:///{tmp_path / 'store.db'}", state=True, queues={"rs": 50})
    ran = []

    @app.job(name="square", queue="rs", store_result=True)
    def square(x: int) -> int:
        ran.append(x)
        return x * x

    first = square.send(7)
    later = square.send(8, delay="1s")
    assert app.cancel(later.id)
    with worker_thread(app, concurrency=2):
        assert app.result(first.id, timeout="20s") == 49
        wait_until(lambda: any("before it ran" in e.detail for e in app.state.store.history(later.id)), 30,
                   "the cancelled job to reach the worker and be skipped")
    assert ran == [7]
