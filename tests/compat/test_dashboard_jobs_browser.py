"""The dashboard's Jobs page in a real browser (Debian's headless Chromium through Selenium), fed by
a real ``ferrymq worker`` process: job queues and states, the retry schedule, a DLQ peeked and
replayed with the button (the counts change), a cron entry's next runs and the worker's row with
its heartbeat. The screenshot goes to the test's tmp dir; with SCREENSHOTS_TO_DOCS=1 also to
docs/dashboard-jobs.png."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from ferrymq import EmbeddedBroker
from ferrymq.jobs.app import App
from ferrymq.jobs.cron import CronSchedule

# its module-level check skips this module too when chromium / chromedriver are missing
from tests.compat.test_dashboard_browser import chromium, click, confirm, login, save_for_readme, text_of
from tests.support import jobsdash_app
from tests.support.jobs import WorkerProcess, wait_until

pytestmark = pytest.mark.timeout(180)


class Jobs:
    def __init__(self, broker: EmbeddedBroker, worker: WorkerProcess, sender: App) -> None:
        self.broker, self.worker, self.sender = broker, worker, sender

    def get(self, path: str) -> object:
        return requests.get(self.broker.http_url + path, auth=("guest", "guest"), timeout=10).json()


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jobs]:
    with jobsdash_app.running(tmp_path_factory.mktemp("jobsdash-browser"), concurrency=4) as running:
        setup = Jobs(*running)
        for n in range(5):
            setup.sender.jobs["hello"].send(n)
        for order in ("o-17", "o-18"):
            setup.sender.jobs["flaky"].send(order)
        setup.sender.jobs["doomed"].send("o-404")
        wait_until(lambda: [len(setup.get("/api/jobs/retries")["jobs"]),  # type: ignore[index]
                            setup.get("/api/jobs/dlq")[0]["messages"]] == [2, 1],  # type: ignore[index]
                   30, "two retries waiting and one dead letter")
        yield setup


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    yield from chromium(tmp_path_factory, size="1400,1500")  # tall enough for the whole page


def until(driver: WebDriver, what: str, check, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    try:
        WebDriverWait(driver, timeout).until(lambda d: check(d))
    except Exception:
        raise AssertionError(f"the page never showed {what}: {text_of(driver, '#main')[:2000]}") from None


def test_jobs_page_shows_states_retries_dead_letters_crons_and_the_worker(
        jobs: Jobs, browser: WebDriver, tmp_path: Path) -> None:
    login(browser, jobs.broker)
    browser.get(jobs.broker.http_url + "/dashboard/jobs")
    until(browser, "the billing queue's retries and dead letter", lambda d: (
        text_of(d, '#job-queues tr[data-queue="billing"] .retrying'),
        text_of(d, '#job-queues tr[data-queue="billing"] .dead')) == ("2", "1"))
    assert "active" in browser.execute_script("return document.querySelector('[data-nav=jobs]').className")
    until(browser, "states per job", lambda d: (
        text_of(d, '#job-states tr[data-job="hello"] .st-succeeded'),
        text_of(d, '#job-states tr[data-job="flaky"] .st-retrying'),
        text_of(d, '#job-states tr[data-job="doomed"] .st-dead')) == ("5", "2", "1"))
    retries = text_of(browser, "#job-retries tbody")
    assert retries.count("flaky") == 2 and "card declined for o-17" in retries and "in 60 min" in retries
    next_run = CronSchedule("0 9 * * *", "Europe/Paris").next_fire(jobs.sender.clock.now_ms())
    shown = datetime.fromtimestamp(next_run / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    until(browser, "the cron entry's next run and its leader", lambda d: shown in text_of(
        d, '#job-crons tr[data-cron="daily_report"] .next-runs') and "leader" in text_of(d, "#job-crons"))
    worker_row = '#job-workers tr td:nth-child(3)'
    until(browser, "the worker's row", lambda d: text_of(d, worker_row) == str(jobs.worker.proc.pid))
    assert text_of(browser, "#job-workers .heartbeat").startswith("alive")
    shot = tmp_path / "dashboard-jobs.png"
    browser.save_screenshot(str(shot))
    save_for_readme(shot, "dashboard-jobs.png")

    click(browser, '#job-dlqs tr[data-dlq="billing.dlq"] button[data-action="peek"]')
    until(browser, "the peeked dead letter",
          lambda d: "order o-404 does not exist" in text_of(d, "#job-letters"))

    # stop the worker so the replayed job stays queued where the page can see it
    jobs.worker.signal(signal.SIGTERM)
    jobs.worker.wait(30)
    until(browser, "the stopped worker leave", lambda d: "no worker connected" in text_of(d, "#job-workers"))
    click(browser, '#job-dlqs tr[data-dlq="billing.dlq"] button[data-action="replay-all"]')
    confirm(browser)
    until(browser, "the replay's counts", lambda d: "replayed 1 · before: billing.dlq 1" in text_of(
        d, "#jobs-replayed") and "after: billing.dlq 0 (billing: 1)" in text_of(d, "#jobs-replayed"))
    until(browser, "the counts change", lambda d: (
        text_of(d, '#job-queues tr[data-queue="billing"] .dead'),
        text_of(d, '#job-queues tr[data-queue="billing"] .queued')) == ("0", "1"))
