"""The cron scheduler on a ManualClock: one leader fires each schedule once, a standby takes over
within one lease of the leader's death, stale fencing tokens are refused, DST and missed runs.

Jobs are real: an ``App("eager://")`` runs each fire's job in place when the scheduler sends it
(through ``Job.send_with_options`` and the worker's processor), and the job records the key of the
message it ran. tests/jobs/test_cron_e2e.py does the same over AMQP with a real worker."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from ferrymq.clock import ManualClock
from ferrymq.jobs import App, Middleware, current
from ferrymq.jobs.cron import MISFIRE_GRACE_MS, CronError
from ferrymq.jobs.db import Database
from ferrymq.jobs.scheduler import LEASE_NAME, Fire, Scheduler, StaleToken
from tests.support.postgres import any_db_url, postgres_server  # noqa: F401

MINUTE = 60_000
LEASE = 30_000
START = 1_790_000_000_000 // MINUTE * MINUTE + 5_000  # 5 s after a minute boundary


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def cron_app(url: str, clock: ManualClock, runs: list[str], cron: str = "* * * * *", tz: str = "UTC",
             missed: str = "skip", name: str = "tick") -> App:
    """An eager app with one schedule whose job appends the key of the message it ran."""
    app = App("eager://", store=Database(url, durable=False), clock=clock)
    lock = threading.Lock()

    def record() -> None:
        with lock:
            runs.append(current.message.key)

    app.schedule(name, cron, tz=tz, missed=missed)(record)
    return app


def minute_keys(first_ms: int, count: int, name: str = "tick") -> list[str]:
    first = -(-first_ms // MINUTE) * MINUTE
    return [f"cron:{name}:{first + i * MINUTE}" for i in range(count)]


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jobs.db'}"


def lockstep(clock: ManualClock, schedulers: list[Scheduler], steps: int, step_ms: int,
             alive: list[bool] | None = None) -> list[int | None]:
    """Each step: advance the clock, then every live scheduler ticks at once in its own thread.
    Returns the token each scheduler held at the end of every step (None: standby)."""
    alive = alive or [True] * len(schedulers)
    start, done = threading.Barrier(len(schedulers) + 1), threading.Barrier(len(schedulers) + 1)
    errors: list[BaseException] = []

    def loop(scheduler: Scheduler, index: int) -> None:
        for _ in range(steps):
            start.wait()
            try:
                if alive[index]:
                    scheduler.tick()
            except BaseException as exc:
                errors.append(exc)
            done.wait()

    threads = [threading.Thread(target=loop, args=(s, i)) for i, s in enumerate(schedulers)]
    for t in threads:
        t.start()
    for _ in range(steps):
        clock.advance(step_ms)
        start.wait()
        done.wait()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return [s.token for s in schedulers]


def two_schedulers(url: str, b_lease_ms: int = LEASE) -> tuple[ManualClock, list[str], Scheduler, Scheduler]:
    """Schedulers "a" and "b" over one database and one clock, their jobs recording into one list."""
    clock, runs = ManualClock(START), []
    a = Scheduler(cron_app(url, clock, runs), holder="a", lease_ms=LEASE)
    b = Scheduler(cron_app(url, clock, runs), holder="b", lease_ms=b_lease_ms,
                  grace_ms=max(b_lease_ms, MISFIRE_GRACE_MS))
    return clock, runs, a, b


@pytest.mark.parametrize("lease_ms", [LEASE, 10_000], ids=["steady-leader", "lease-lapses-every-step"])
def test_two_schedulers_in_two_threads_fire_each_minute_of_an_hour_exactly_once(any_db_url, lease_ms):  # noqa: F811
    clock, runs = ManualClock(START), []
    a = Scheduler(cron_app(any_db_url, clock, runs), holder="a", lease_ms=lease_ms)
    b = Scheduler(cron_app(any_db_url, clock, runs), holder="b", lease_ms=lease_ms)
    tokens = lockstep(clock, [a, b], steps=180, step_ms=20_000)  # one simulated hour
    assert sorted(runs) == minute_keys(START, 60)
    assert max(Counter(runs).values()) == 1
    assert sum(t is not None for t in tokens) == 1, "exactly one leader"
    terms = {token for _, token, _ in a.log.fires("tick")}
    assert len(terms) == 1 if lease_ms == LEASE else len(terms) > 30


def test_killed_leader_is_replaced_within_one_lease_and_no_minute_is_lost_or_repeated(any_db_url):  # noqa: F811
    url = any_db_url
    clock, runs, a, b = two_schedulers(url)
    a.tick()
    assert a.is_leader and not b.tick() and not b.is_leader
    lockstep(clock, [a, b], steps=60, step_ms=10_000)
    assert a.is_leader
    expires = a.leases.get(LEASE_NAME).expires_ms
    killed_at = clock.now_ms()  # a stops: no more ticks, no release
    while not b.is_leader:
        clock.advance(1_000)
        b.tick()
    assert clock.now_ms() == expires and expires - killed_at <= LEASE
    lockstep(clock, [a, b], steps=300, step_ms=10_000, alive=[False, True])
    end = clock.now_ms()
    assert sorted(runs) == minute_keys(START, (end - START) // MINUTE)
    assert max(Counter(runs).values()) == 1
    tokens = {token for _, token, _ in b.log.fires("tick")}
    assert tokens == {1, 2}, "fires before the takeover carry a's term, after it b's"


def test_fire_stamped_with_a_stale_token_is_refused_and_changes_nothing(any_db_url):  # noqa: F811
    url = any_db_url
    clock, runs, a, b = two_schedulers(url, b_lease_ms=6 * LEASE)
    a.tick()
    clock.advance(LEASE)  # a pauses (a GC stop) past its lease; b takes over
    b.tick()
    assert (a.token, b.token) == (1, 2)
    clock.advance(50_000)  # a minute boundary has passed: a fire is due
    spec = a.specs[0]
    before = (a.log.cursor("tick"), a.log.fires("tick"))
    with pytest.raises(StaleToken, match="fencing token 1 is older than the latest term 2"):
        a.log.record(spec, 1, clock.now_ms())  # a wakes and fires with the token it still holds
    assert (a.log.cursor("tick"), a.log.fires("tick")) == before
    assert a.tick() == [] and not a.is_leader and runs == []
    assert [f.key for f in b.tick()] == minute_keys(START, 1) and runs == minute_keys(START, 1)


def test_a_newer_term_recorded_with_the_fires_fences_an_older_one_even_without_the_lease_row(url):
    clock, runs = ManualClock(START), []
    a = Scheduler(cron_app(url, clock, runs), holder="a", lease_ms=LEASE)
    a.log.record(a.specs[0], 5, clock.now_ms())  # the cursor was last moved under term 5
    with pytest.raises(StaleToken):
        a.log.record(a.specs[0], 4, clock.now_ms() + MINUTE)


def test_fire_recorded_by_a_leader_that_died_before_sending_is_sent_by_the_next_with_its_key(url):
    clock, runs, a, b = two_schedulers(url)
    a.tick()
    clock.advance(MINUTE)
    recorded = a.log.record(a.specs[0], a.token or 0, clock.now_ms())  # a dies before sending
    assert [f.key for f in recorded] == minute_keys(START, 1) and runs == []
    clock.advance(LEASE)
    assert [f.key for f in b.tick()] == minute_keys(START, 1)
    assert runs == minute_keys(START, 1)
    assert [sent is not None for _, _, sent in b.log.fires("tick")] == [True]


def test_fire_sent_by_a_leader_that_died_before_marking_it_is_resent_but_runs_once(url):
    clock, runs, a, b = two_schedulers(url)
    a.tick()
    clock.advance(MINUTE)
    [fire] = a.log.record(a.specs[0], a.token or 0, clock.now_ms())
    a.log.count_attempt(fire)
    a.specs[0].job.send_with_options(args=(), kwargs={}, key=fire.key)  # a dies before marking it sent
    assert runs == [fire.key]
    clock.advance(LEASE)
    assert [f.key for f in b.tick()] == [fire.key]  # b cannot know it went out: it sends again
    assert runs == [fire.key], "the key keeps the second send from running the job again"


class BrokerAwayOnce(Middleware):
    """Fails the first send after the idempotency middleware claimed its key: a publish that
    died on the way to the broker."""

    def __init__(self) -> None:
        self.failed = 0

    def before_enqueue(self, app: object, message: object) -> None:
        if not self.failed:
            self.failed += 1
            raise ConnectionError("broker away")


def test_a_send_that_failed_after_claiming_its_key_goes_out_on_the_next_tick_and_runs_once(url):
    clock, runs = ManualClock(START), []
    app = cron_app(url, clock, runs)
    away = BrokerAwayOnce()
    app.add_middleware(away)  # after the idempotency middleware: the key is claimed, then the send fails
    scheduler = Scheduler(app, holder="a", lease_ms=LEASE)
    scheduler.tick()
    clock.advance(MINUTE)
    assert scheduler.tick() == [] and away.failed == 1 and runs == []
    clock.advance(1_000)
    assert [f.key for f in scheduler.tick()] == minute_keys(START, 1)
    assert runs == minute_keys(START, 1)
    clock.advance(1_000)
    assert scheduler.tick() == [] and runs == minute_keys(START, 1)


@pytest.mark.parametrize(("missed", "expected_hours"),
                         [("skip", []), ("once", [12]), ("catch_up", [10, 11, 12])])
def test_after_three_hours_down_each_missed_policy_fires_what_it_promises(url, missed, expected_hours):
    clock, runs = ManualClock(ms("2026-06-01T09:30+00:00")), []
    hourly = {"cron": "0 * * * *", "missed": missed}
    Scheduler(cron_app(url, clock, runs, **hourly), holder="a", lease_ms=LEASE).tick()
    clock.advance(3 * 60 * MINUTE)  # every scheduler was down from 09:30 to 12:30
    restarted = Scheduler(cron_app(url, clock, runs, **hourly), holder="b", lease_ms=LEASE)
    restarted.tick()
    assert runs == [f"cron:tick:{ms(f'2026-06-01T{h}:00+00:00')}" for h in expected_hours]
    clock.advance(30 * MINUTE)
    restarted.tick()
    assert runs[-1] == f"cron:tick:{ms('2026-06-01T13:00+00:00')}"


def daily_0230_for_a_day(url: str, tz: str, start: str) -> list[str]:
    """A scheduler ticking every minute for 24 hours over a daily 02:30 schedule in ``tz``."""
    clock, runs = ManualClock(ms(start)), []
    scheduler = Scheduler(cron_app(url, clock, runs, cron="30 2 * * *", tz=tz), lease_ms=LEASE)
    for _ in range(24 * 60):
        scheduler.tick()
        clock.advance(MINUTE)
    return runs


def test_scheduler_ticking_through_paris_fall_back_fires_the_0230_job_once(url):
    runs = daily_0230_for_a_day(url, "Europe/Paris", "2026-10-24T12:00+00:00")
    assert runs == [f"cron:tick:{ms('2026-10-25T02:30+02:00')}"]


def test_scheduler_ticking_through_new_york_spring_forward_fires_the_0230_job_at_0300(url):
    runs = daily_0230_for_a_day(url, "America/New_York", "2026-03-07T12:00+00:00")
    assert runs == [f"cron:tick:{ms('2026-03-08T03:00-04:00')}"]


def test_next_runs_and_the_sleep_until_the_next_fire_or_renewal(url):
    clock, runs = ManualClock(ms("2026-06-01T09:59:58+00:00")), []
    app = cron_app(url, clock, runs, cron="0 * * * *")
    scheduler = Scheduler(app, holder="a", lease_ms=LEASE)
    assert scheduler.next_runs() == {"tick": ms("2026-06-01T10:00+00:00")}
    assert scheduler.sleep_ms() == 2_000  # the fire comes before the renewal
    clock.advance(2_000)
    assert scheduler.next_runs() == {"tick": ms("2026-06-01T11:00+00:00")}
    assert scheduler.sleep_ms() == LEASE // 3  # the renewal comes first


def test_run_ticks_until_stopped_and_then_releases_the_lease(url):
    clock, runs = ManualClock(START), []
    scheduler = Scheduler(cron_app(url, clock, runs), holder="a", lease_ms=300)
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,))
    thread.start()
    try:
        _wait_for(lambda: scheduler.is_leader, "the lease")
        clock.advance(MINUTE)
        _wait_for(lambda: runs == minute_keys(START, 1), "the fire")
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    lease = scheduler.leases.get(LEASE_NAME)
    assert lease is not None and lease.holder is None


def _wait_for(predicate, what: str) -> None:
    done = threading.Event()
    for _ in range(600):
        if predicate():
            return
        done.wait(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_scheduler_without_a_database_is_one_clear_error():
    with pytest.raises(ValueError, match="give the app a store"):
        Scheduler(App("eager://"))


def test_bad_schedule_stops_the_app_definition_with_one_clear_error():
    app = App("eager://")
    with pytest.raises(CronError, match="expected 5 fields"):
        app.schedule("bad-fields", "*/5 * * *")(lambda: None)
    with pytest.raises(CronError, match="use one of skip, once, catch_up"):
        app.schedule("bad-policy", "* * * * *", missed="sometimes")(lambda: None)


def test_fire_key_names_the_schedule_and_the_fire_time():
    assert Fire("report", 1_790_000_040_000, 3).key == "cron:report:1790000040000"
