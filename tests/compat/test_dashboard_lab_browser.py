"""The dashboard's lab page in headless Chromium: empty until a snapshot arrives, then one card per
series fed live by `ferrymq lab`'s progress snapshots (published here with pika to amq.topic, key
ferrymq.lab.progress, as the lab does) through browser push (/sse): numbers, progress, faults,
the done state and the report path; kept across a reload; and the snapshots the lab's own code
(ferrymq.lab.live) makes. The screenshot goes to /tmp/lab-dashboard.png. Skipped like the other
browser tests where chromium is absent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pika
import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from ferrymq import EmbeddedBroker
from ferrymq.lab.live import PROGRESS_KEY
from ferrymq.lab.live import snapshot as lab_snapshot
from ferrymq.lab.recorder import Series
from tests.compat.test_dashboard_browser import browser, login, text_of  # noqa: F401  (skips without chromium)

RUN = "r-1203-1125"
SHOT = "/tmp/lab-dashboard.png"
KILL = {"t": 2.0, "kind": "fault", "label": "kill -9 broker"}
UNKNOWN = "\u2013"  # what the page shows for a null (en dash)
BACK = {"t": 3.5, "kind": "restart", "label": "broker back"}


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def snapshot(series: str, target: str, t: float, **fields: Any) -> dict[str, Any]:
    base = {"run": RUN, "scenario": "orders-kill9", "target": target, "series": series, "t": t,
            "duration": 10.0, "in_per_s": 950.0, "out_per_s": 940.0, "p99_ms": 12.5, "depth": 10,
            "sent": int(950 * t), "received": int(940 * t), "lost": None, "duplicates": 0,
            "events": [], "state": "running", "report": ""}
    return base | fields


def timeline() -> list[dict[str, Any]]:
    """Two series of one run: the queue one with a broker kill (events sent cumulatively, as a
    series' snapshot carries them), the log one finishing with its report."""
    out = []
    for t in (1.0, 2.0, 3.0, 4.0):
        events = [e for e in (KILL, BACK) if e["t"] <= t]
        rates = {"in_per_s": 0.0, "out_per_s": 0.0, "p99_ms": None} if t == 3.0 else {}
        out.append(snapshot("queue", "ferrymq (queue mode)", t, events=events, **rates))
        out.append(snapshot("log", "ferrymq (log mode)", t * 2.5, depth=None, in_per_s=1200.0))
    done = snapshot("log", "ferrymq (log mode)", 10.0, state="done", sent=12000, received=12002,
                    duplicates=2, lost=0, in_per_s=0.0, out_per_s=0.0, depth=None,
                    report="/tmp/lab/orders-kill9/report.html")
    last = snapshot("queue", "ferrymq (queue mode)", 5.0, events=[KILL, BACK])
    again = done | {"t": 11.0}  # a done series goes on being published (its t running on)
    return [*out, done, again, last]


def publish(url: str, bodies: list[bytes]) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    for body in bodies:
        ch.basic_publish("amq.topic", PROGRESS_KEY, body,
                         pika.BasicProperties(content_type="application/json"))
    conn.close()


def card(series: str, run: str = RUN) -> str:
    return f"[data-lab='{run}/{series}']"


def cards(driver: WebDriver) -> list[str]:
    return list(driver.execute_script(
        "return [...document.querySelectorAll('[data-lab]')].map((e) => e.dataset.lab);"))


def open_lab(driver: WebDriver, broker: EmbeddedBroker) -> None:
    driver.get(broker.http_url + "/dashboard/lab")
    WebDriverWait(driver, 10).until(lambda d: text_of(d, "#lab-status").startswith("listening"))


def test_lab_page_shows_each_series_live_with_faults_and_the_done_state(
    broker: EmbeddedBroker, browser: WebDriver,  # noqa: F811
) -> None:
    login(browser, broker)
    open_lab(browser, broker)
    assert text_of(browser, "#lab-empty") == "No lab run yet — start one with ferrymq lab <scenario>"
    assert text_of(browser, "[data-nav='lab'].active") == "Lab"
    publish(broker.amqp_url, [b"not json", b'{"hello": 1}'] +
            [json.dumps(s).encode() for s in timeline()])
    WebDriverWait(browser, 10).until(lambda d: text_of(d, card("log") + " .lab-state") == "done")
    WebDriverWait(browser, 10).until(lambda d: text_of(d, card("queue") + " .lab-progress") == "5 / 10 s")
    assert cards(browser) == [f"{RUN}/queue", f"{RUN}/log"]  # the junk made no card
    assert text_of(browser, "#lab-empty") == ""
    queue = {k: text_of(browser, f"{card('queue')} .lab-{k}") for k in
             ("scenario", "target", "state", "in", "out", "p99", "depth", "sent", "received", "dup", "lost")}
    assert queue == {"scenario": "orders-kill9", "target": "ferrymq (queue mode)", "state": "running",
                     "in": "950", "out": "940", "p99": "12.5 ms", "depth": "10", "sent": "4750",
                     "received": "4700", "dup": "0", "lost": UNKNOWN}
    events = browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent);",
        card("queue") + " .lab-events li")
    assert events == ["2.0 s fault kill -9 broker", "3.5 s restart broker back"]  # each once
    log = {k: text_of(browser, f"{card('log')} .lab-{k}") for k in
           ("target", "depth", "sent", "received", "dup", "lost", "report", "progress")}
    assert log == {"target": "ferrymq (log mode)", "depth": UNKNOWN, "sent": "12000", "received": "12002",
                   "dup": "2", "lost": "0", "report": "report: /tmp/lab/orders-kill9/report.html",
                   "progress": "10 / 10 s"}
    points = browser.execute_script(
        "return [...document.querySelectorAll('canvas.lab-chart')].map((c) => c.dataset.points);")
    assert points == ["5", "4"]  # one per snapshot time; the done series stays at t=10
    assert browser.execute_script(  # the rate chart has ink on it
        "const c = document.querySelector(arguments[0]); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; return d.some((v, i) => i % 4 === 3 && v > 0);",
        card("queue") + " canvas")
    browser.save_screenshot(SHOT)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def test_lab_cards_survive_a_reload(broker: EmbeddedBroker, browser: WebDriver) -> None:  # noqa: F811
    """A push subscription sees only what is published while it is open: the page keeps what it
    saw, so coming back to it mid-run does not start from nothing."""
    open_lab(browser, broker)
    assert cards(browser) == [f"{RUN}/queue", f"{RUN}/log"]
    assert text_of(browser, card("log") + " .lab-state") == "done"
    assert text_of(browser, "#lab-empty") == ""


def lab_run(run: str) -> list[bytes]:
    """What `ferrymq lab` itself publishes for a 4 s series with a fault (its own snapshot code, on
    a stepped clock): one snapshot a second, then the done one, twice."""
    now = [0]
    series = Series("queue", "ferrymq (queue mode)", now_ns=lambda: now[0])
    series.begin()
    out = []
    for step in range(8):
        for _ in range(100):
            msg = series.next_id()
            series.sent()
            series.confirmed(msg)
            series.received(msg, now[0] - 2_000_000)
        if step == 3:
            series.event("fault", "SIGSTOP consumer")
        now[0] += 500_000_000
        if step % 2:
            out.append(lab_snapshot(series, run, "stall", 4.0))
    series.end()
    out += [lab_snapshot(series, run, "stall", 4.0, "done", "/tmp/lab/stall/report.html")] * 2
    return [json.dumps(o).encode() for o in out]


def test_lab_page_reads_what_the_lab_itself_publishes(broker: EmbeddedBroker, browser: WebDriver) -> None:  # noqa: F811
    open_lab(browser, broker)
    publish(broker.amqp_url, lab_run("r-lab-own"))
    mine = card("queue", "r-lab-own")
    WebDriverWait(browser, 10).until(lambda d: text_of(d, mine + " .lab-state") == "done")
    shown = {k: text_of(browser, f"{mine} .lab-{k}") for k in
             ("scenario", "sent", "received", "lost", "dup", "p99")}
    assert shown == {"scenario": "stall", "sent": "800", "received": "800", "lost": "0", "dup": "0",
                     "p99": "2.0 ms"}
    assert text_of(browser, mine + " .lab-events") == "1.5 s fault SIGSTOP consumer"
    assert text_of(browser, mine + " .lab-progress") == "4 / 4 s"
