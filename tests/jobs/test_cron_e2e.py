"""A cron job end to end: the scheduler (on a ManualClock) enqueues it over AMQP to an
EmbeddedBroker, a real worker consumes and runs it, and a second send of the same fire is
dropped by its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferrymq.clock import ManualClock, SystemClock
from ferrymq.jobs import App, current
from ferrymq.jobs.scheduler import Scheduler
from ferrymq.jobs.testing import worker_thread
from tests.support.jobs import wait_until

pytestmark = pytest.mark.timeout(120)
MINUTE = 60_000
# near the real time: the worker (system clock) expires idempotency keys older than its window
START = SystemClock().now_ms() // MINUTE * MINUTE + 5_000


Runs = list[tuple[str, str | None]]


def cron_app(url: str, store: str, ran: Runs, clock: ManualClock | None = None) -> App:
    app = App(url, store=store, clock=clock)

    @app.schedule("e2e-minutely", "* * * * *", queue="cron-e2e", args=("report",))
    def minutely(kind: str) -> None:
        ran.append((kind, current.message.key))

    return app


def test_cron_job_is_enqueued_over_amqp_and_run_once_by_a_real_worker(amqp_url: str, tmp_path: Path) -> None:
    store, ran = f"sqlite:///{tmp_path / 'jobs.db'}", []
    clock = ManualClock(START)
    scheduling = cron_app(amqp_url, store, ran, clock)
    working = cron_app(amqp_url, store, ran)  # the worker's own app, on the system clock
    scheduler = Scheduler(scheduling, holder="e2e")
    try:
        assert scheduler.tick() == []  # first sight: the schedule starts now
        clock.advance(MINUTE)
        fired = scheduler.tick()
        assert [f.fire_ms for f in fired] == [START - START % MINUTE + MINUTE]
        with worker_thread(working, concurrency=2, queues=["cron-e2e"]):
            wait_until(lambda: len(ran) >= 1, 30, "the cron job to run")
            again = scheduling.schedules[0].job.send_with_options(args=("report",), key=fired[0].key)
        assert again.skipped, "a second send of the same fire is dropped by its key"
        assert ran == [("report", fired[0].key)]
    finally:
        scheduler.close()
        scheduling.close()
        working.close()
