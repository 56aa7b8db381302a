"""Per-tenant fairness on real workers over real sockets (EmbeddedBroker, and RabbitMQ when
installed): a noisy tenant cannot starve quiet ones, sub-queues announced before or after a
worker starts are consumed, retries stay in their tenant's sub-queue."""

from __future__ import annotations

import pika
import pytest

from ferrymq.jobs import App, Retry, current
from ferrymq.jobs.message import JobMessage
from ferrymq.jobs.tenants import TenantPicker, parent_queue, tenant_queue
from ferrymq.jobs.testing import worker_thread
from tests.support.jobs import wait_until

pytestmark = pytest.mark.timeout(180)


def depth(url: str, queue: str) -> int:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return conn.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        conn.close()


def get_one(url: str, queue: str) -> JobMessage:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        method, _, body = conn.channel().basic_get(queue, auto_ack=True)
        assert method is not None, f"{queue} is empty"
        return JobMessage.from_body(body)
    finally:
        conn.close()


def recording_app(url: str, queue: str) -> tuple[App, list[str]]:
    app = App(url, queues={queue: 50}, fair_queues={queue})
    runs: list[str] = []

    @app.job(name=f"rec-{queue}", queue=queue)
    def rec(tenant: str, n: int) -> None:
        runs.append(tenant)

    return app, runs


def noisy_and_quiet(url: str, queue: str, noisy: int) -> None:
    """Everything is queued before the worker starts: it finds the sub-queues in the registry."""
    app, runs = recording_app(url, queue)
    job = app.jobs[f"rec-{queue}"]
    job.send_many([("noisy", i) for i in range(noisy)], tenant="noisy")
    for tenant in ("quiet-a", "quiet-b", "quiet-c"):
        job.send_many([(tenant, i) for i in range(20)], tenant=tenant)
    assert depth(url, f"{queue}.t.noisy") == noisy and depth(url, queue) == 0
    with worker_thread(app, concurrency=1):
        wait_until(lambda: len(runs) >= 100, 60, "100 runs")
    first = runs[:100]
    assert {t: first.count(t) for t in ("quiet-a", "quiet-b", "quiet-c")} == dict.fromkeys(
        ("quiet-a", "quiet-b", "quiet-c"), 20), first


def retry_stays_in_its_sub_queue(url: str, queue: str) -> None:
    app = App(url, queues={queue: 50}, fair_queues={queue})
    attempts: list[int] = []

    @app.job(name=f"flaky-{queue}", queue=queue, retries=3)
    def flaky() -> None:
        attempts.append(current.message.attempt)
        raise Retry(after="300ms")

    flaky.send(tenant="acme corp/eu")
    sub = tenant_queue(queue, "acme corp/eu")
    with worker_thread(app, concurrency=1):
        wait_until(lambda: attempts, 30, "the first attempt")
    wait_until(lambda: depth(url, sub) == 1, 30, "the retry in the tenant's sub-queue")
    assert depth(url, queue) == 0 and attempts == [0]
    retried = get_one(url, sub)
    assert (retried.tenant, retried.attempt, retried.queue) == ("acme corp/eu", 1, queue)


def test_a_noisy_tenants_backlog_does_not_delay_quiet_tenants_on_a_fair_queue(amqp_url):
    noisy_and_quiet(amqp_url, "fair-q", 2000)


def test_a_tenant_sub_queue_announced_while_a_worker_runs_is_consumed_and_its_junk_goes_to_the_dlq(amqp_url):
    app, runs = recording_app(amqp_url, "live-q")
    job = app.jobs["rec-live-q"]
    job.send("untenanted", 0)
    with worker_thread(app, concurrency=2):
        wait_until(lambda: runs == ["untenanted"], 30, "the job without a tenant")
        job.send_many([("newcomer", i) for i in range(5)], tenant="newcomer")
        wait_until(lambda: len(runs) == 6, 30, "the new tenant's jobs")
        publish_raw(amqp_url, "live-q.t.newcomer", b"not a job")
        wait_until(lambda: depth(amqp_url, "live-q.dlq") == 1, 30, "the bad message in live-q's DLQ")
    assert runs.count("newcomer") == 5


def publish_raw(url: str, queue: str, body: bytes) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        conn.channel().basic_publish("", queue, body)
    finally:
        conn.close()


def test_a_second_worker_started_later_finds_sub_queues_announced_before_it(amqp_url):
    app, runs = recording_app(amqp_url, "late-q")
    job = app.jobs["rec-late-q"]
    job.send("early", 0, tenant="early")
    with worker_thread(app, concurrency=1):
        wait_until(lambda: runs == ["early"], 30, "the first worker's run")
    # the first worker is gone; a new one must learn of late-q.t.early from the registry
    job.send("early", 1, tenant="early")
    with worker_thread(app, concurrency=1):
        wait_until(lambda: len(runs) == 2, 30, "the second worker's run")
    assert depth(amqp_url, "late-q.tenants") == 1  # one sender connection, one announcement, kept


def test_retries_of_a_tenant_job_go_back_to_its_tenant_sub_queue(amqp_url):
    retry_stays_in_its_sub_queue(amqp_url, "retry-q")


def test_on_rabbitmq_a_noisy_tenant_does_not_starve_quiet_ones_and_retries_stay_in_its_queue(rabbitmq_url):
    noisy_and_quiet(rabbitmq_url, "rq-fair", 500)
    retry_stays_in_its_sub_queue(rabbitmq_url, "rq-retry")


def test_tenant_names_map_to_short_distinct_dotless_queue_names_that_lead_back_to_their_queue():
    names = {t: tenant_queue("jobs", t) for t in ("acme", "a.b", "a_b", "ü" * 150, "x" * 300, "x" * 301)}
    assert names["acme"] == "jobs.t.acme" and tenant_queue("jobs", 42) == "jobs.t.42"  # type: ignore[arg-type]
    assert len(set(names.values())) == len(names)
    for name in names.values():
        assert len(name.encode()) <= 200 and "." not in name.removeprefix("jobs.t.")
        assert parent_queue(name, {"jobs"}) == "jobs"
    assert parent_queue("jobs.t.acme", {"other"}) == "jobs.t.acme"
    with pytest.raises(ValueError, match="fair queue"):
        App("eager://", fair_queues={"q" * 190})


def test_picker_splits_a_fair_queues_weight_among_its_tenants_and_keeps_weights_between_queues():
    buffers: dict[str, list[int]] = {"fair": [], "other": [1] * 10_000}
    picker = TenantPicker({"fair": 50, "other": 50}, buffers)
    for tenant in ("fair.t.a", "fair.t.b"):
        buffers[tenant] = [1] * 10_000
        picker.add(tenant, "fair")
    picks = take(picker, buffers, 400)
    assert {n: picks.count(n) for n in buffers} == {"fair": 0, "other": 200, "fair.t.a": 100, "fair.t.b": 100}
    buffers["fair"].append(1)  # a job without a tenant takes its turn among the tenants
    assert take(picker, buffers, 6).count("fair") == 1


def take(picker: TenantPicker, buffers: dict[str, list[int]], n: int) -> list[str]:
    picks = []
    for _ in range(n):
        name = picker.pick(buffers)
        assert name is not None
        buffers[name].pop()
        picks.append(name)
    return picks
