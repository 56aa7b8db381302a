"""MetricsMiddleware's hooks under a ManualClock and an eager app: what each counter and
histogram records for one run, a retry and a dead letter."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from ferrymq.clock import ManualClock
from ferrymq.jobs.app import App
from ferrymq.jobs.context import JobContext
from ferrymq.jobs.message import JobMessage
from ferrymq.jobs.metrics import MetricsMiddleware


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_queue_wait_runs_from_the_later_of_enqueue_and_eta_and_duration_from_the_clock():
    clock, registry = ManualClock(), CollectorRegistry()
    metrics = MetricsMiddleware(registry)
    app = App("eager://", clock=clock)
    now = clock.now_ms()
    queued = JobMessage("a", "j", "q", enqueued_ms=now - 1500)
    delayed = JobMessage("b", "j", "q", enqueued_ms=now - 5000, eta_ms=now - 2000)
    retry = JobMessage("c", "j", "q", attempt=1, enqueued_ms=now - 60_000)
    contexts = [JobContext(app, "w", clock, None, m) for m in (queued, delayed, retry)]  # all start now
    for ctx in contexts:
        metrics.wrap(ctx, ctx.message, lambda: clock.advance(250))
    assert sample(registry, "ferrymq_jobs_queue_wait_seconds_sum", job="j") == 1.5 + 2.0
    assert sample(registry, "ferrymq_jobs_queue_wait_seconds_count", job="j") == 2, "a retry's wait is not"
    assert sample(registry, "ferrymq_jobs_duration_seconds_sum", job="j") == 0.75
    assert sample(registry, "ferrymq_jobs_started_total", job="j", queue="q") == 3


def test_an_eager_app_counts_enqueue_failure_retry_success_and_dead_letter():
    registry = CollectorRegistry()
    app = App("eager://", middleware=[MetricsMiddleware(registry)])

    @app.job(name="twice", retries=2)
    def twice(n: int) -> None:
        from ferrymq.jobs import current

        if current.message.attempt == 0:
            raise RuntimeError("first run fails")

    @app.job(name="never", queue="bulk", retries=0)
    def never() -> None:
        raise RuntimeError("always")

    twice.send(1)
    never.send()
    counts = {(name, job): sample(registry, f"ferrymq_jobs_{name}_total", job=job,
                                  queue="bulk" if job == "never" else "default")
              for name in ("enqueued", "started", "succeeded", "failed", "retried", "dead")
              for job in ("twice", "never")}
    assert counts == {("enqueued", "twice"): 1, ("started", "twice"): 2, ("succeeded", "twice"): 1,
                      ("failed", "twice"): 1, ("retried", "twice"): 1, ("dead", "twice"): 0,
                      ("enqueued", "never"): 1, ("started", "never"): 1, ("succeeded", "never"): 0,
                      ("failed", "never"): 1, ("retried", "never"): 0, ("dead", "never"): 1}


def test_two_middlewares_on_one_registry_share_its_metrics():
    registry = CollectorRegistry()
    first, second = MetricsMiddleware(registry), MetricsMiddleware(registry)
    message = JobMessage("a", "j", "q")
    first.before_enqueue(None, message)
    second.before_enqueue(None, message)
    assert sample(registry, "ferrymq_jobs_enqueued_total", job="j", queue="q") == 2
