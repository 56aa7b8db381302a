"""The live-comments example in headless Chromium (Debian's chromium through Selenium, the driver
of the dashboard's browser tests; skipped where it is absent): two pages open on a post, comments
posted through the broker's HTTP API, over AMQP and with the page's own form appear on both, a
comment for another post on neither; an EventSource page gets them too. Waits are bounded
(WebDriverWait), never timed. Screenshots go to /tmp/live-comments-*.png."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from ferrymq import EmbeddedBroker
from tests.compat.test_dashboard_browser import browser  # noqa: F401  (skips here too without chromium)

SERVER = Path(__file__).resolve().parents[2] / "examples" / "live-comments" / "server.py"
AUTH = ("guest", "guest")
ARRIVAL_BOUND_S = 5.0  # a functional bound: a comment not shown by then counts as not delivered


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture(scope="module")
def example(broker: EmbeddedBroker) -> Iterator[str]:
    """The example's server.py as a user runs it, on a free port; its base URL."""
    proc = subprocess.Popen([sys.executable, str(SERVER), "--broker", broker.http_url, "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("live comments on "), line
        yield line.split()[-1].split("/?")[0]
    finally:
        proc.terminate()
        proc.wait(10)


def open_tab(driver: WebDriver, address: str) -> str:
    driver.switch_to.new_window("tab")
    driver.get(address)
    WebDriverWait(driver, ARRIVAL_BOUND_S).until(
        lambda d: d.find_element(By.ID, "status").text == "live")
    return driver.current_window_handle


def comments(driver: WebDriver) -> list[str]:
    return list(driver.execute_script(
        "return [...document.querySelectorAll('#comments li.comment')].map("
        "li => li.querySelector('.author').textContent + ': ' + li.querySelector('.text').textContent)"))


def shown_everywhere(driver: WebDriver, tabs: list[str], expected: list[str]) -> None:
    for tab in tabs:
        driver.switch_to.window(tab)
        WebDriverWait(driver, ARRIVAL_BOUND_S).until(lambda d: set(expected) <= set(comments(d)))


def publish_http(broker: EmbeddedBroker, key: str, comment: dict[str, str]) -> bool:
    """Whether the broker routed it anywhere (a page's private queue)."""
    data = {"routing_key": key, "properties": {}, "payload": json.dumps(comment),
            "payload_encoding": "string"}
    r = requests.post(f"{broker.http_url}/api/exchanges/%2F/comments/publish", json=data, auth=AUTH)
    return bool(r.json()["routed"])


def publish_amqp(broker: EmbeddedBroker, key: str, comment: dict[str, str]) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    try:
        conn.channel().basic_publish("comments", key, json.dumps(comment).encode())
    finally:
        conn.close()


def test_a_comment_posted_by_http_api_amqp_or_the_form_appears_on_every_open_page(
        broker: EmbeddedBroker, example: str, browser: WebDriver) -> None:  # noqa: F811
    tabs = [open_tab(browser, f"{example}/?post=42") for _ in range(2)]
    assert not publish_http(broker, "post.7.comment", {"author": "elsewhere", "text": "another post"})
    assert publish_http(broker, "post.42.comment", {"author": "http", "text": "via the HTTP API"})
    publish_amqp(broker, "post.42.comment", {"author": "amqp", "text": "via AMQP"})
    shown_everywhere(browser, tabs, ["http: via the HTTP API", "amqp: via AMQP"])
    browser.switch_to.window(tabs[0])
    browser.find_element(By.ID, "author").send_keys("form")
    browser.find_element(By.ID, "text").send_keys("typed into page one")
    browser.find_element(By.ID, "send").click()
    shown_everywhere(browser, tabs, ["form: typed into page one"])
    for tab in tabs:  # published before the others, so it would have arrived first
        browser.switch_to.window(tab)
        assert [c for c in comments(browser) if c.startswith("elsewhere")] == []
        assert len(comments(browser)) == 3
    browser.switch_to.window(tabs[1])
    browser.save_screenshot("/tmp/live-comments-page-two.png")


def test_an_event_source_page_gets_comments_too(broker: EmbeddedBroker, example: str,
                                                browser: WebDriver) -> None:  # noqa: F811
    tab = open_tab(browser, f"{example}/?post=9&transport=sse")
    assert "server-sent events" in browser.find_element(By.ID, "transport").text
    publish_amqp(broker, "post.9.comment", {"author": "amqp", "text": "to an EventSource"})
    shown_everywhere(browser, [tab], ["amqp: to an EventSource"])
    browser.save_screenshot("/tmp/live-comments-sse.png")
