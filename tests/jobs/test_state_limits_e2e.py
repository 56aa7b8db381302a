"""Job state, results and rate limits end to end: real workers (in threads of this process) on a
real EmbeddedBroker over sockets, sharing one SQLite store file."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from ferrymq.clock import SystemClock
from ferrymq.jobs import App, current
from ferrymq.jobs.db import Database
from ferrymq.jobs.ratelimit import ConcurrencyLimit, RateLimitMiddleware
from ferrymq.jobs.results import ResultsMiddleware
from ferrymq.jobs.state import StateMiddleware
from ferrymq.jobs.testing import worker_thread
from tests.support.jobs import wait_until

pytestmark = pytest.mark.timeout(120)


def make_app(url: str, store: Path) -> tuple[App, StateMiddleware, ResultsMiddleware]:
    db = Database(f"sqlite:///{store}", durable=False)
    state, results = StateMiddleware(db), ResultsMiddleware(db)
    app = App(url, store=db, middleware=[state, results, RateLimitMiddleware(db)])
    return app, state, results


def test_audit_trail_of_a_job_that_retries_once_then_succeeds_on_a_real_worker(amqp_url, tmp_path):
    app, state, results = make_app(amqp_url, tmp_path / "jobs.db")
    queue = f"trail-{uuid.uuid4().hex[:8]}"

    @app.job(name="flaky", queue=queue, retries=2, backoff=["50ms"], store_result=True)
    def flaky(n: int) -> int:
        if current.message.attempt == 0:
            raise RuntimeError(f"first run of {n} fails")
        return n * 2

    with worker_thread(app, concurrency=2) as worker:
        sent = flaky.send(21)
        assert results.store.wait(sent.id, timeout_ms=30_000, clock=SystemClock()) == 42
        wait_until(lambda: state_of(state, sent.id) == "succeeded", 30, "the final state")
    trail = [(e.state, e.attempt) for e in state.store.history(sent.id)]
    assert trail == [("enqueued", 0), ("started", 0), ("failed", 0), ("retried", 0), ("started", 1),
                     ("succeeded", 1)]
    events = state.store.history(sent.id)
    assert {e.worker_id for e in events[1:]} == {worker.worker_id}
    assert events[2].detail == "RuntimeError: first run of 21 fails"
    assert events[3].delay_ms == 50
    assert events[4].at_ms - events[2].at_ms >= 50, "the second attempt waited out its backoff"


def state_of(state: StateMiddleware, job_id: str) -> str | None:
    found = state.store.state(job_id)
    return None if found is None else found.state


def test_a_concurrency_limit_holds_across_two_workers_sharing_the_store(amqp_url, tmp_path):
    store, queue = tmp_path / "jobs.db", f"solo-{uuid.uuid4().hex[:8]}"
    limit = ConcurrencyLimit(f"solo-{queue}", limit=1, lease="30s", retry="20ms")
    running, peak, done, lock = [0], [0], [], threading.Lock()

    def solo(n: int) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.03)  # long enough that two workers would overlap without the limit
        with lock:
            running[0] -= 1
            done.append(n)

    apps = []
    for _ in range(2):  # two apps, two databases on one file: as two worker processes would be
        app, _, _ = make_app(amqp_url, store)
        app.job(name="solo", queue=queue, rate_limit=limit)(solo)
        apps.append(app)
    counter = _DeferCounter(apps)
    with worker_thread(apps[0], concurrency=2), worker_thread(apps[1], concurrency=2):
        for n in range(8):
            apps[0].jobs["solo"].send(n)
        wait_until(lambda: len(done) == 8, 60, "all eight jobs")
    assert sorted(done) == list(range(8))
    assert peak[0] == 1
    assert counter.deferred > 0, "the limit held jobs back (else this test proves nothing)"


class _DeferCounter:
    """Counts the deferrals the rate-limit middleware of each app raises."""

    def __init__(self, apps: list[App]) -> None:
        self.deferred = 0
        for app in apps:
            limits = next(m for m in app.middleware if isinstance(m, RateLimitMiddleware))
            before = limits.before_process

            def counting(ctx, message, _before=before):
                try:
                    _before(ctx, message)
                except Exception:
                    self.deferred += 1
                    raise

            limits.before_process = counting  # type: ignore[method-assign]
