"""The dashboard in a real browser (Debian's headless Chromium through Selenium): log in, load
every page, watch a queue's depth rise and fall live, ask the routing explainer, replay a dead
letter with the button, close a connection with a reason (the pages reading the management API),
see a topic's offsets and a group's lag, read a trace's event times relative to its first event.
Screenshots go to the test's tmp dir; with SCREENSHOTS_TO_DOCS=1 the overview and queues ones are
also written to docs/ for the README (opt-in: a test run never changes tracked files by itself)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
import requests

from ferrymq import EmbeddedBroker

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip("chromium / chromedriver not installed", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "docs"


def save_for_readme(shot: Path, name: str) -> None:
    """Refresh docs/<name> from a screenshot, only when asked (SCREENSHOTS_TO_DOCS=1)."""
    if os.environ.get("SCREENSHOTS_TO_DOCS") == "1":
        DOCS.mkdir(exist_ok=True)
        shutil.copy(shot, DOCS / name)
PAGES = ("", "queues", "routing", "traces", "dlq", "streams", "connections", "lab", "jobs")


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def chromium(tmp_path_factory: pytest.TempPathFactory, size: str = "1400,900") -> Iterator[WebDriver]:
    """Headless Chromium with a profile of its own, quit at the end (the browser fixtures' body)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", f"--window-size={size}",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    yield from chromium(tmp_path_factory)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def wait_for(driver: WebDriver, css: str, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    return WebDriverWait(driver, timeout).until(lambda d: d.find_element(By.CSS_SELECTOR, css))


def text_of(driver: WebDriver, css: str) -> str:
    """Read in one step in the page: live tables are redrawn every second, so an element found
    by one WebDriver call may be gone by the next."""
    return str(driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : '';", css))


def click(driver: WebDriver, css: str) -> None:
    """Click in one step (see text_of); fails if nothing matches."""
    assert driver.execute_script(
        "const e = document.querySelector(arguments[0]); if (e) e.click(); return !!e;", css)


def confirm(driver: WebDriver) -> None:
    WebDriverWait(driver, 5).until(lambda d: d.find_element(By.ID, "confirm-dialog").is_displayed())
    driver.find_element(By.ID, "confirm-ok").click()


def login(driver: WebDriver, broker: EmbeddedBroker) -> None:
    driver.get(broker.http_url + "/")
    wait_for(driver, "#login-form").is_displayed()
    driver.find_element(By.ID, "login-user").send_keys("guest")
    driver.find_element(By.ID, "login-password").send_keys("guest")
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, 10).until(lambda d: "guest" in text_of(d, "#whoami"))  # redrawn: read in one step


def test_1_login_then_every_page_loads(broker: EmbeddedBroker, browser: WebDriver, shots: Path) -> None:
    browser.get(broker.http_url + "/dashboard/queues")
    assert wait_for(browser, "#login-form").is_displayed()
    assert not browser.find_element(By.ID, "main").is_displayed()
    login(browser, broker)
    for page in PAGES:
        browser.get(f"{broker.http_url}/dashboard/{page}")
        WebDriverWait(browser, 10).until(lambda d: d.find_element(By.TAG_NAME, "h1").text)
        assert browser.find_element(By.ID, "main").is_displayed()
        # a request cut short by leaving the page (the live stream, a fetch in flight) is not an error
        errors = [e for e in browser.get_log("browser")
                  if e["level"] == "SEVERE" and "ERR_ABORTED" not in e["message"]
                  and "Failed to fetch" not in e["message"]]
        assert errors == [], errors
        browser.save_screenshot(str(shots / f"{page or 'overview'}.png"))


def _producer_then_consumer(url: str, queue: str, count: int, pause: threading.Event) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare(queue)
    for i in range(count):
        ch.basic_publish("", queue, f"m{i}".encode())
        if i % 10 == 0:
            conn.process_data_events(time_limit=0.1)
    pause.wait(15)
    ch.basic_qos(prefetch_count=5)
    for method, _p, _b in ch.consume(queue, inactivity_timeout=2):
        if method is None:
            break
        ch.basic_ack(method.delivery_tag)
        conn.sleep(0.01)  # a slow consumer: the page sees the queue drain over seconds
    conn.close()


def _neighbours(url: str) -> None:
    """A few other queues with backlogs, so the queues screenshot shows a table, not one row."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    for name, depth in (("orders", 120), ("emails", 40), ("invoices.retry", 7), ("audit", 0)):
        ch.queue_declare(name, durable=True)
        for _ in range(depth):
            ch.basic_publish("", name, b"x", pika.BasicProperties(delivery_mode=2))
    conn.close()


def test_2_queue_depth_rises_and_falls_live(broker: EmbeddedBroker, browser: WebDriver, shots: Path) -> None:
    _neighbours(broker.amqp_url)
    browser.get(broker.http_url + "/dashboard/queues")
    go = threading.Event()
    worker = threading.Thread(target=_producer_then_consumer, args=(broker.amqp_url, "live-depth", 300, go))
    worker.start()
    seen: list[int] = []
    cell = "tr[data-queue='live-depth'] td.ready"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        value = text_of(browser, cell)
        if value.isdigit():
            seen.append(int(value))
        if seen and max(seen) == 300 and not go.is_set():
            browser.save_screenshot(str(shots / "queues-full.png"))
            go.set()
        if go.is_set() and 0 < seen[-1] < 300 and not (shots / "queues-live.png").exists():
            browser.save_screenshot(str(shots / "queues-live.png"))  # draining: consumers in flight
        if go.is_set() and seen[-1] == 0:
            break
        time.sleep(0.25)
    worker.join(20)
    assert max(seen) == 300, seen
    assert seen[-1] == 0, seen
    peak = seen.index(300)
    assert seen[0] < 300 or any(0 < v < 300 for v in seen[:peak])  # seen rising, then
    assert any(0 < v < 300 for v in seen[peak:])  # seen falling, not jumping to 0
    best = shots / "queues-live.png"
    save_for_readme(best if best.exists() else shots / "queues-full.png", "dashboard-queues.png")


def test_3_overview_shows_rates_and_is_saved_for_the_readme(
    broker: EmbeddedBroker, browser: WebDriver, shots: Path,
) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.queue_declare("overview-q", durable=True)
    persistent = pika.BasicProperties(delivery_mode=2)  # so the storage counters move too
    browser.get(broker.http_url + "/dashboard/")
    for i in range(8):
        for _ in range(40 + 30 * (i % 3)):
            ch.basic_publish("", "overview-q", b"x", persistent)
        conn.process_data_events(time_limit=0.5)
        time.sleep(0.5)
    WebDriverWait(browser, 10).until(lambda d: text_of(d, "#c-depth") not in ("\u2013", "0"))
    assert int(text_of(browser, "#c-conn")) >= 1
    browser.save_screenshot(str(shots / "overview.png"))
    save_for_readme(shots / "overview.png", "dashboard-overview.png")
    ch.queue_delete("overview-q")
    conn.close()


def test_4_routing_explainer_answers_a_topic_question(broker: EmbeddedBroker, browser: WebDriver,
                                                      shots: Path) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.exchange_declare("logs", "topic")
    for queue, key in (("errors-eu", "*.error.eu"), ("everything", "#"), ("warnings", "*.warning.*")):
        ch.queue_declare(queue)
        ch.queue_bind(queue, "logs", key)
    conn.close()
    browser.get(broker.http_url + "/dashboard/routing")
    wait_for(browser, "#route-exchange").send_keys("logs")
    browser.find_element(By.ID, "route-key").send_keys("app.error.eu")
    browser.find_element(By.ID, "route-submit").click()
    verdict = wait_for(browser, "#route-verdict").text
    assert "errors-eu" in verdict and "everything" in verdict and "warnings" not in verdict
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.binding")
    why = {r.find_elements(By.TAG_NAME, "td")[1].text.split()[0]: r.find_element(By.CSS_SELECTOR, ".why").text
           for r in rows}
    assert "'*' took 'app'" in why["errors-eu"]
    assert "word 2 is 'error' where the pattern wants 'warning'" in why["warnings"]
    browser.save_screenshot(str(shots / "routing.png"))


def test_5_dead_letter_then_replay_with_the_button(broker: EmbeddedBroker, browser: WebDriver,
                                                   shots: Path) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.queue_declare("pay-dlq")
    ch.queue_declare("pay", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "pay-dlq"})
    ch.basic_publish("", "pay", b"invoice-7")
    method, _, _ = ch.basic_get("pay")
    ch.basic_reject(method.delivery_tag, requeue=False)
    browser.get(broker.http_url + "/dashboard/dlq")
    row = "tr[data-dlq='pay-dlq']"
    WebDriverWait(browser, 10).until(lambda d: text_of(d, row + " .dlq-count") == "1")
    click(browser, row + " button[data-action='peek']")
    WebDriverWait(browser, 5).until(lambda d: "invoice-7" in d.find_element(By.ID, "dlq-peek").text)
    assert "rejected" in browser.find_element(By.ID, "dlq-peek").text
    click(browser, row + " button[data-action='replay']")
    confirm(browser)
    flash = WebDriverWait(browser, 5).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#dlq-flash .flash")).text
    assert "replayed 1" in flash and "before: dlq 1 (pay: 0)" in flash and "after: dlq 0 (pay: 1)" in flash
    WebDriverWait(browser, 10).until(lambda d: text_of(d, row + " .dlq-count") == "0")
    browser.save_screenshot(str(shots / "dlq.png"))
    _, _, body = ch.basic_get("pay", auto_ack=True)
    assert body == b"invoice-7"
    conn.close()


def test_6_close_a_connection_with_a_reason(broker: EmbeddedBroker, browser: WebDriver, shots: Path) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    conn.channel().basic_qos(prefetch_count=5)
    port = conn._impl._transport._sock.getsockname()[1]
    browser.get(broker.http_url + "/dashboard/connections")
    row = f"tr[data-connection^='127.0.0.1:{port} ']"
    WebDriverWait(browser, 10).until(lambda d: text_of(d, row + " button"))
    cells = browser.execute_script(
        "return [...document.querySelectorAll(arguments[0] + ' td')].map((td) => td.textContent);", row)
    assert cells[1:6] == ["guest", "/", f"Pika Python Client Library {pika.__version__}", "AMQP 0-9-1",
                          "#1 (5 · 0)"]  # user, vhost, client, protocol, channels (prefetch · unacked)
    click(browser, row + " button")
    WebDriverWait(browser, 5).until(lambda d: d.find_element(By.ID, "close-reason").is_displayed())
    reason = browser.find_element(By.ID, "close-reason")
    reason.clear()
    reason.send_keys("rolling restart")
    confirm(browser)
    WebDriverWait(browser, 5).until(lambda d: "rolling restart" in d.find_element(By.ID, "conn-flash").text)
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        conn.process_data_events(time_limit=2)
        conn.channel()
    assert info.value.reply_code == 320 and "rolling restart" in info.value.reply_text
    browser.save_screenshot(str(shots / "connections.png"))


def test_7_trace_page_shows_a_sampled_message(broker: EmbeddedBroker, browser: WebDriver,
                                              shots: Path) -> None:
    """Runs once the traces API (another branch) is merged; skipped while it answers 404."""
    if requests.get(broker.http_url + "/api/ferrymq/traces", auth=("guest", "guest")).status_code == 404:
        pytest.skip("the traces API is not on this branch yet")
    browser.get(broker.http_url + "/dashboard/traces")
    every = wait_for(browser, "#trace-every")
    WebDriverWait(browser, 5).until(lambda d: d.find_element(By.ID, "trace-info").text)
    every.clear()
    every.send_keys("1")
    browser.find_element(By.CSS_SELECTOR, "#trace-form button").click()
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.queue_declare("traced")
    ch.basic_publish("", "traced", b"follow me")
    conn.close()
    WebDriverWait(browser, 10).until(lambda d: "traced" in d.find_element(By.ID, "trace-list").text)
    offsets, walls = browser.execute_script(
        "const t = document.querySelector('.trace'); const all = (css) => [...t.querySelectorAll(css)]"
        ".map((e) => e.textContent); return [all('.events li .offset'), all('.events .wall')];")
    assert offsets[0] == "+0 ms" and all(o.startswith("+") and int(o[1:-3]) < 60_000 for o in offsets)
    assert len(walls) == 1 and walls[0].startswith("at ")  # the first event's wall-clock time, once
    browser.save_screenshot(str(shots / "traces.png"))


def test_8_streams_page_shows_topic_offsets(broker: EmbeddedBroker, browser: WebDriver, shots: Path) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    producer = KafkaProducer(bootstrap_servers=broker.kafka_bootstrap)
    for _ in range(7):
        producer.send("browser-topic", value=b"r", partition=0)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.kafka_bootstrap, group_id="browser-group",
                             enable_auto_commit=False)
    consumer.assign([TopicPartition("browser-topic", 0)])
    consumer.commit({TopicPartition("browser-topic", 0): OffsetAndMetadata(3, "", -1)})
    consumer.close()
    browser.get(broker.http_url + "/dashboard/streams")
    card, group = "[data-topic='browser-topic'] tbody tr", "[data-group='browser-group'] td"
    WebDriverWait(browser, 10).until(lambda d: text_of(d, card) and text_of(d, group))
    cells_js = "return [...document.querySelectorAll(arguments[0] + ' td')].map((td) => td.textContent);"
    cells = browser.execute_script(cells_js, card)
    assert cells == ["0", "0", "7", "7"]  # partition, start offset, end offset, records
    assert "cleanup delete" in text_of(browser, "[data-topic='browser-topic']")
    lag = browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((td) => td.textContent);", group)
    assert lag == ["browser-topic", "0", "3", "7", "4"]  # topic, partition, committed, end, lag
    browser.save_screenshot(str(shots / "streams.png"))


def test_9_queue_buttons_publish_then_purge_after_confirming(
    broker: EmbeddedBroker, browser: WebDriver,
) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    conn.channel().queue_declare("ui-actions")
    conn.close()
    browser.get(broker.http_url + "/dashboard/queues")
    row = "tr[data-queue='ui-actions']"
    WebDriverWait(browser, 10).until(lambda d: text_of(d, row + " td.ready") == "0")
    click(browser, row + " button[data-action='publish']")
    confirm(browser)
    WebDriverWait(browser, 10).until(lambda d: text_of(d, row + " td.ready") == "1")
    click(browser, row + " button[data-action='purge']")
    WebDriverWait(browser, 5).until(lambda d: d.find_element(By.ID, "confirm-dialog").is_displayed())
    browser.find_element(By.ID, "confirm-cancel").click()  # cancelling does nothing
    time.sleep(1.5)
    assert text_of(browser, row + " td.ready") == "1"
    click(browser, row + " button[data-action='purge']")
    confirm(browser)
    WebDriverWait(browser, 10).until(lambda d: text_of(d, row + " td.ready") == "0")
    assert '"messages_before":1' in text_of(browser, "#queue-flash")
