"""The state, results and rate-limit middlewares through the real job processor (eager mode: the
processor a worker uses, with no broker), on a real SQLite file and a real PostgreSQL server,
with a ManualClock."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ferrymq.clock import ManualClock
from ferrymq.jobs import App, Defer, current
from ferrymq.jobs.context import JobContext
from ferrymq.jobs.db import Database
from ferrymq.jobs.ratelimit import ConcurrencyLimit, RateLimitMiddleware, TokenBucket
from ferrymq.jobs.results import ResultFailed, ResultsMiddleware
from ferrymq.jobs.state import StateMiddleware, StateStore
from tests.support.jobs import wait_until
from tests.support.postgres import any_db_url, postgres_server  # noqa: F401

NOW = 1_700_000_000_000


class Stack:
    def __init__(self, url: str) -> None:
        self.clock = ManualClock(NOW)
        self.db = Database(url, durable=False)
        self.state = StateMiddleware(self.db)
        self.results = ResultsMiddleware(self.db)
        self.limits = RateLimitMiddleware(self.db)
        self.app = App("eager://", store=self.db, clock=self.clock, seed=7,
                       middleware=[self.state, self.results, self.limits])
        self.app.report_progress = self.state.report_progress  # type: ignore[attr-defined]

    def trail(self, job_id: str) -> list[tuple[str, int, str]]:
        return [(e.state, e.attempt, e.worker_id) for e in self.state.store.history(job_id)]


@pytest.fixture
def stack(any_db_url: str) -> Stack:  # noqa: F811
    return Stack(any_db_url)


def test_audit_trail_of_a_job_that_fails_once_then_succeeds(stack: Stack) -> None:
    @stack.app.job(name="flaky", retries=2, backoff=["2s"])
    def flaky() -> None:
        if current.message.attempt == 0:
            raise RuntimeError("first run fails")

    sent = flaky.send()
    assert stack.trail(sent.id) == [("enqueued", 0, ""), ("started", 0, "eager"), ("failed", 0, "eager"),
                                    ("retried", 0, "eager"), ("started", 1, "eager"),
                                    ("succeeded", 1, "eager")]
    events = stack.state.store.history(sent.id)
    assert events[2].detail == "RuntimeError: first run fails"
    assert events[3].delay_ms == 2_000 and "first run fails" in events[3].detail
    state = stack.state.store.state(sent.id)
    assert state is not None and (state.state, state.job, state.queue) == ("succeeded", "flaky", "default")


def test_a_job_out_of_attempts_ends_dead_and_its_stored_result_is_the_error(stack: Stack) -> None:
    @stack.app.job(name="doomed", retries=1, backoff=["1s"], store_result=True)
    def doomed() -> None:
        raise ValueError("never works")

    sent = doomed.send()
    assert [s for s, _, _ in stack.trail(sent.id)] == ["enqueued", "started", "failed", "retried", "started",
                                                      "failed", "dead"]
    assert "retries exhausted" in stack.state.store.history(sent.id)[-1].detail
    with pytest.raises(ResultFailed, match="never works"):
        stack.results.store.get(sent.id, stack.clock.now_ms())


def test_a_stored_result_is_the_return_value_and_jobs_without_store_result_keep_none(stack: Stack) -> None:
    @stack.app.job(name="add", store_result=True, result_ttl="1h")
    def add(a: int, b: int) -> dict[str, int]:
        return {"sum": a + b}

    @stack.app.job(name="quiet")
    def quiet() -> int:
        return 1

    sent, other = add.send(2, 3), quiet.send()
    assert stack.results.store.get(sent.id, stack.clock.now_ms()) == {"sum": 5}
    assert stack.results.store.peek(sent.id, NOW + 3_600_000) is None  # its ttl ran out
    assert stack.results.store.peek(other.id, NOW) is None


def test_a_result_json_cannot_carry_is_stored_as_an_error_saying_so(stack: Stack) -> None:
    @stack.app.job(name="odd", store_result=True)
    def odd() -> Any:
        return {1, 2}

    sent = odd.send()
    with pytest.raises(ResultFailed, match="not JSON-serialisable"):
        stack.results.store.get(sent.id, NOW)


def test_a_job_cancelled_while_queued_is_skipped_and_never_runs(stack: Stack) -> None:
    runs: list[int] = []

    @stack.app.job(name="work")
    def work(n: int) -> None:
        runs.append(n)

    message = work.message((1,))
    assert stack.state.store.cancel(message.id, NOW, reason="operator")
    stack.app.enqueue(message)
    assert runs == []
    assert [s for s, _, _ in stack.trail(message.id)] == ["cancelled", "enqueued", "cancelled"]
    assert stack.state.store.history(message.id)[-1].detail == "skipped: cancelled before it ran"
    state = stack.state.store.state(message.id)
    assert state is not None and state.state == "cancelled"


def test_a_running_job_sees_its_cancellation_and_ends_cancelled(stack: Stack) -> None:
    seen: list[bool] = []

    @stack.app.job(name="long")
    def long() -> None:
        ctx = current.message
        stack.state.store.cancel(ctx.id, NOW, reason="stop")
        assert stack.state.mark_cancelled([_running_context()]) == 1  # what a worker's poll does
        seen.append(current.cancelled)

    sent = long.send()
    assert seen == [True]
    state = stack.state.store.state(sent.id)
    assert state is not None and state.state == "cancelled"
    assert stack.state.store.history(sent.id)[-1].detail == "cancelled while running; the job returned"


def _running_context() -> JobContext:
    from ferrymq.jobs.context import _current

    return _current.get()


def test_progress_reported_by_a_job_is_on_its_state(stack: Stack) -> None:
    @stack.app.job(name="pages")
    def pages() -> None:
        current.progress(0.5, "page 2 of 4")

    sent = pages.send()
    state = stack.state.store.state(sent.id)
    assert state is not None
    assert (state.state, state.progress, state.note) == ("succeeded", 0.5, "page 2 of 4")


def test_rate_limit_middleware_defers_a_job_over_its_limit_by_the_limiter_wait(stack: Stack) -> None:
    @stack.app.job(name="api", rate_limit=TokenBucket("api", rate=2, per="1s", burst=1))
    def api() -> None: ...

    first, second = api.message(), api.message()
    stack.limits.before_process(JobContext(stack.app, "w1", stack.clock, stack.db, first), first)
    with pytest.raises(Defer) as deferred:
        stack.limits.before_process(JobContext(stack.app, "w1", stack.clock, stack.db, second), second)
    assert deferred.value.after_ms == 500 and "api" in deferred.value.reason
    stack.clock.advance(500)
    stack.limits.before_process(JobContext(stack.app, "w1", stack.clock, stack.db, second), second)


def test_rate_limit_middleware_frees_a_concurrency_slot_after_the_job_runs(stack: Stack) -> None:
    limit, held_while_running = ConcurrencyLimit("solo", limit=1), []

    @stack.app.job(name="solo", rate_limit=limit)
    def solo() -> None:
        held_while_running.append(limit.held(stack.db, stack.clock.now_ms()))

    for _ in range(3):
        solo.send()
    assert held_while_running == [1, 1, 1] and limit.held(stack.db, NOW) == 0
    assert stack.app.eager_reruns == []  # none was deferred: each run gave its slot back


def test_a_rate_limit_that_is_not_a_limiter_fails_the_send_and_the_worker_boot_with_a_clear_error(
        stack: Stack) -> None:
    @stack.app.job(name="bad", rate_limit="10/s")
    def bad() -> None: ...

    with pytest.raises(TypeError, match="job 'bad': rate_limit must be a TokenBucket"):
        bad.send()
    with pytest.raises(TypeError, match="job 'bad': rate_limit must be a TokenBucket"):
        stack.limits.after_worker_boot(type("W", (), {"app": stack.app})())


def test_a_worker_reads_cancellations_once_per_poll_interval_and_a_replay_lifts_one(stack: Stack) -> None:
    runs: list[str] = []

    @stack.app.job(name="work")
    def work(tag: str) -> None:
        runs.append(tag)

    work.send("first")  # the first job polls: no cancellation yet
    early, later = work.message(("early",)), work.message(("later",))
    stack.state.store.cancel(early.id, stack.clock.now_ms())
    stack.app.enqueue(early)  # within the poll interval: this process has not seen the cancel yet
    stack.clock.advance(1_000)
    stack.state.store.cancel(later.id, stack.clock.now_ms())
    stack.app.enqueue(later)  # the interval passed: polled, seen, skipped
    assert runs == ["first", "early"]
    stack.state.store.record(later.id, "work", "default", "replayed", stack.clock.now_ms() + 1)
    stack.app.enqueue(later)  # the process still remembers the cancel; the store says it was lifted
    assert runs == ["first", "early", "later"]


def test_a_started_event_is_written_without_waiting_for_the_job_to_end(stack: Stack) -> None:
    release, started = threading.Event(), threading.Event()
    reader = StateStore(Database(stack.db.url, durable=False))  # as another process sees it

    @stack.app.job(name="long")
    def long() -> None:
        started.set()
        release.wait(30)

    message = long.message()
    runner = threading.Thread(target=stack.app.enqueue, args=(message,))
    runner.start()
    try:
        assert started.wait(30)
        wait_until(lambda: getattr(reader.state(message.id), "state", None) == "started", 30, "'started'")
    finally:
        release.set()
        runner.join(30)


def test_progress_and_sends_from_inside_an_exactly_once_transaction_do_not_write_there(stack: Stack) -> None:
    """An idempotent job runs inside IdempotencyMiddleware's write transaction (App adds it with a
    store): progress and a send's 'enqueued' from inside it must wait for another writer."""
    child = stack.app.job(name="child")(lambda: None).message()

    @stack.app.job(name="once", idempotent=True)
    def once() -> None:
        assert current.tx is not None
        current.progress(0.5, "half")
        stack.state.before_enqueue(stack.app, child)

    sent = once.send()
    state = stack.state.store.state(sent.id)
    assert state is not None and (state.state, state.progress) == ("succeeded", 0.5)
    assert [e.state for e in stack.state.store.history(child.id)] == ["enqueued"]


def test_a_run_an_inner_wrap_skips_ends_skipped_and_gives_its_slot_back(stack: Stack) -> None:
    from ferrymq.jobs import Middleware, Skip

    class LateSkip(Middleware):
        def wrap(self, ctx: Any, message: Any, call: Any) -> Any:
            raise Skip("decided late")

    stack.app.middleware.append(LateSkip())
    limit = ConcurrencyLimit("solo", limit=1)
    sent = stack.app.job(name="solo", rate_limit=limit)(lambda: None).send()
    state = stack.state.store.state(sent.id)
    assert state is not None and (state.state, state.detail) == ("skipped", "decided late")
    assert limit.held(stack.db, NOW) == 0
