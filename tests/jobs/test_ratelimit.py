"""Rate limits on a real SQLite file and a real PostgreSQL server: exact grant counts under many
threads and two processes.

No test here times anything: time is a ManualClock (or a fixed ``now_ms`` handed to each process),
and the checks count grants against what the limit allows."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from ferrymq.clock import ManualClock
from ferrymq.jobs.db import Database
from ferrymq.jobs.ratelimit import ConcurrencyLimit, Limiter, SlidingWindow, TokenBucket
from tests.support.postgres import any_db_url, postgres_server  # noqa: F401

THREADS = 8
NOW = 1_700_000_000_000


@pytest.fixture
def db(any_db_url: str) -> Database:  # noqa: F811
    return Database(any_db_url, durable=False)


def hammer(threads: int, attempts: int, try_once: Callable[[int], bool]) -> int:
    """Run ``try_once(i)`` ``attempts`` times on each of ``threads`` threads; count the True answers."""
    granted = [0] * threads
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def run(t: int) -> None:
        start.wait()
        try:
            granted[t] = sum(try_once(t * attempts + i) for i in range(attempts))
        except BaseException as exc:  # re-raised below: a thread's error fails the test
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return sum(granted)


def test_token_bucket_grants_exactly_its_burst_then_its_rate_per_period_across_threads(db: Database) -> None:
    bucket, clock = TokenBucket("api", rate=5, per="1s", burst=10), ManualClock(NOW)
    assert hammer(THREADS, 6, lambda _: bucket.acquire(db, clock.now_ms()) == 0) == 10
    clock.advance(1_000)
    assert hammer(THREADS, 6, lambda _: bucket.acquire(db, clock.now_ms()) == 0) == 5
    clock.advance(200)  # one token every 200 ms
    assert hammer(THREADS, 6, lambda _: bucket.acquire(db, clock.now_ms()) == 0) == 1


def test_token_bucket_says_how_long_to_wait_and_grants_after_that_wait(db: Database) -> None:
    bucket = TokenBucket("api", rate=3, per="1s", burst=1)
    assert bucket.acquire(db, NOW) == 0
    wait = bucket.acquire(db, NOW)
    assert wait == 334  # 1000/3 ms, rounded up
    assert bucket.acquire(db, NOW + wait - 1) > 0
    assert bucket.acquire(db, NOW + wait) == 0


def test_sliding_window_never_grants_more_than_its_limit_in_a_window_across_threads(db: Database) -> None:
    window, clock = SlidingWindow("mail", limit=7, window="1m"), ManualClock(NOW)
    assert hammer(THREADS, 4, lambda _: window.acquire(db, clock.now_ms()) == 0) == 7
    clock.advance(59_999)
    assert hammer(THREADS, 4, lambda _: window.acquire(db, clock.now_ms()) == 0) == 0
    clock.advance(1)  # the first seven leave the window together
    assert hammer(THREADS, 4, lambda _: window.acquire(db, clock.now_ms()) == 0) == 7


def test_sliding_window_wait_is_until_the_oldest_grant_leaves_the_window(db: Database) -> None:
    window = SlidingWindow("mail", limit=2, window="10s")
    assert window.acquire(db, NOW) == 0
    assert window.acquire(db, NOW + 3_000) == 0
    assert window.acquire(db, NOW + 4_000) == 6_000
    assert window.acquire(db, NOW + 10_000) == 0
    assert window.acquire(db, NOW + 10_001) == 2_999


def test_sliding_window_counts_a_lagging_clock_as_the_newest_time_seen(db: Database) -> None:
    window = SlidingWindow("mail", limit=1, window="10s")
    assert window.acquire(db, NOW + 10_000) == 0
    assert window.acquire(db, NOW) > 0  # a process whose clock lags cannot slip a grant in


def test_concurrency_limit_holds_at_most_limit_slots_across_threads(db: Database) -> None:
    limit, clock = ConcurrencyLimit("gpu", limit=3, lease="60s"), ManualClock(NOW)
    in_flight, peak, lock = [0], [0], threading.Lock()

    def run_once(i: int) -> bool:
        if limit.acquire(db, clock.now_ms(), holder=f"job-{i}"):
            return False
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        with lock:
            in_flight[0] -= 1
        limit.release(db, holder=f"job-{i}")
        return True

    assert hammer(THREADS, 25, run_once) > 3
    assert 1 <= peak[0] <= 3
    assert limit.held(db, clock.now_ms()) == 0


def test_concurrency_slot_of_a_dead_worker_frees_when_its_lease_runs_out(db: Database) -> None:
    limit = ConcurrencyLimit("gpu", limit=2, lease="30s")
    assert limit.acquire(db, NOW, holder="a") == 0
    assert limit.acquire(db, NOW, holder="b") == 0
    assert limit.acquire(db, NOW + 10_000, holder="c") == 1_000  # come back soon: a slot may free early
    assert limit.acquire(db, NOW + 29_500, holder="c") == 500
    assert limit.acquire(db, NOW + 30_000, holder="c") == 0  # a and b never released: their leases ran out
    assert limit.held(db, NOW + 30_000) == 1


def test_concurrency_renew_keeps_a_long_job_slot_and_a_redelivered_job_reuses_its_own(db: Database) -> None:
    limit = ConcurrencyLimit("gpu", limit=1, lease="30s")
    assert limit.acquire(db, NOW, holder="a") == 0
    assert limit.renew(db, "a", NOW + 25_000)
    assert limit.acquire(db, NOW + 40_000, holder="b") > 0
    assert limit.acquire(db, NOW + 40_000, holder="a") == 0  # the same job again: its own slot
    limit.release(db, holder="a")
    assert not limit.renew(db, "a", NOW + 41_000)
    assert limit.acquire(db, NOW + 41_000, holder="b") == 0


def test_a_name_belongs_to_one_kind_of_limiter(db: Database) -> None:
    TokenBucket("shared", rate=1).acquire(db, NOW)
    with pytest.raises(ValueError, match="already used by a token_bucket limiter"):
        SlidingWindow("shared", limit=1).acquire(db, NOW)


@pytest.mark.parametrize("make", [
    lambda: TokenBucket("x", rate=0), lambda: TokenBucket("x", rate=1.5),  # type: ignore[arg-type]
    lambda: TokenBucket("x", rate=1, per="soon"), lambda: TokenBucket("x", rate=1, burst=0),
    lambda: ConcurrencyLimit("x", limit=0), lambda: SlidingWindow("x", limit=1, window=0),
    lambda: SlidingWindow("", limit=1)])
def test_bad_limiter_options_fail_with_one_clear_error(make: Callable[[], Limiter]) -> None:
    with pytest.raises(ValueError):
        make()


def test_concurrency_acquire_without_a_holder_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="needs a holder"):
        ConcurrencyLimit("gpu", limit=1).acquire(db, NOW)


def test_stores_created_by_many_connections_at_once_on_an_empty_database(any_db_url: str) -> None:  # noqa: F811
    """Worker processes starting together each create the tables: PostgreSQL fails racing
    CREATE TABLE IF NOT EXISTS unless they are serialised."""
    from ferrymq.jobs.ratelimit import TABLES
    from ferrymq.jobs.results import TABLES as RESULT_TABLES

    dbs = [Database(any_db_url, durable=False) for _ in range(THREADS)]
    hammer(THREADS, 1, lambda i: dbs[i].create(TABLES + RESULT_TABLES) is None)
    assert TokenBucket("after", rate=1).acquire(dbs[0], NOW) == 0


# --- two processes --------------------------------------------------------------------------------

KINDS = ("bucket", "window", "concurrency")


def _limiter(kind: str) -> Limiter:
    if kind == "bucket":
        return TokenBucket("shared-bucket", rate=20, per="1s", burst=20)
    if kind == "concurrency":
        return ConcurrencyLimit("shared-slots", limit=5, lease="60s")  # never released in the race
    return SlidingWindow("shared-window", limit=20, window="1s")


def _process_hammer(url: str, times: list[int], start: Any,
                    out: multiprocessing.Queue[tuple[str, int]]) -> None:
    """One process: for each kind of limiter, two threads, each asking at every time in ``times``
    (a clock both processes sweep at once, from a shared barrier, so their requests interleave);
    report each kind's grant count."""
    db = Database(url, durable=False)
    for kind in KINDS:
        limiter = _limiter(kind)
        limiter.acquire(db, times[0] - 60_000, "warm-up")  # tables made before the race; outside every window
        limiter.release(db, "warm-up")
        start.wait()
        out.put((kind, _two_threads(db, limiter, times)))


def _two_threads(db: Database, limiter: Limiter, times: list[int]) -> int:
    """Two threads each asking three times at every time in ``times``, in order."""
    attempts = 3 * len(times)
    pid = os.getpid()
    return hammer(2, attempts, lambda i: limiter.acquire(db, times[(i % attempts) // 3], f"{pid}-{i}") == 0)


def test_two_processes_share_one_limit(any_db_url: str) -> None:  # noqa: F811
    url = any_db_url
    times = [NOW + 100 * step for step in range(30)]  # 3 s of limiter time, 10 requests per 100 ms each
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[tuple[str, int]] = ctx.Queue()
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=_process_hammer, args=(url, times, start, out)) for _ in range(2)]
    for p in procs:
        p.start()
    totals = dict.fromkeys(KINDS, 0)
    for _ in range(len(KINDS) * len(procs)):
        kind, granted = out.get(timeout=60)
        totals[kind] += granted
    for p in procs:
        p.join(timeout=60)
    # requests (2 processes x 2 threads x 3 per step = 12 per 100 ms) far exceed the limit, so the
    # limit decides. Over the 2.9 s of limiter time spanned: the bucket's burst of 20 plus 20 per
    # second; the window's 20 in each of the three 1 s windows the span touches.
    span_ms = times[-1] - times[0]
    assert 20 <= totals["bucket"] <= 20 + 20 * span_ms // 1_000
    assert 20 <= totals["window"] <= 20 * (span_ms // 1_000 + 1)
    assert totals["concurrency"] == 5  # slots held for the whole race: exactly the limit, no more
