"""Measure: a live-comments page kept busy does not grow the broker's memory.

    python scripts/push_busy_page_memory.py [--messages 20000] [--size 4096] [--busy-s 20]

Starts a private ``ferrymq serve`` and the example's server.py, opens the page in headless
Chromium (Debian's chromium + chromedriver), then blocks the page's main thread (a busy loop in
the page) while a publisher floods the post's comments over AMQP. Chromium stops reading the
socket when its renderer does not take the frames, the relay stops reading the broker, and the
broker's private queue for the page stays at its bound, dropping the oldest. Samples the broker's
RSS and the queue's depth every 0.25 s; prints JSON: flood bytes, RSS before / peak / after, the
deepest the queue got, and what the page said once it could run again (its ``lagged`` notices).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from ferrymq.bench.procstat import rss_kib
from ferrymq.bench.push_fanout import private_broker
from ferrymq.client.connection import Client
from ferrymq.protocols.amqp.client import encode_publish

SERVER = Path(__file__).resolve().parents[1] / "examples" / "live-comments" / "server.py"
AUTH = ("guest", "guest")


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def flood(amqp_url: str, n: int, size: int) -> None:
    client = Client(amqp_url).open()
    body = json.dumps({"author": "flood", "text": "x" * size}).encode()
    frame = encode_publish(1, "comments", "post.42.comment", body)
    for _ in range(n // 100):
        client.sock.sendall(frame * 100)
    client.close()


def sample(http: str, pid: int, stop: threading.Event, out: dict[str, Any]) -> None:
    while not stop.is_set():
        out["rss_peak_kib"] = max(out["rss_peak_kib"], rss_kib(pid)[0])
        queues = requests.get(f"{http}/api/queues/%2F", auth=AUTH).json()
        depth = max((q["messages_ready"] for q in queues if q["name"].startswith("amq.gen-")), default=0)
        out["queue_depth_max"] = max(out["queue_depth_max"], depth)
        time.sleep(0.25)


def page_notices(driver: webdriver.Chrome) -> list[str]:
    return list(driver.execute_script(
        "return [...document.querySelectorAll('#comments li.notice')].map(li => li.textContent)"))


def measure(args: argparse.Namespace, http: str, amqp_url: str, pid: int, page: str) -> dict[str, Any]:
    driver = chromium()
    try:
        driver.get(page)
        WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "status").text == "live")
        flood(amqp_url, 1000, args.size)  # warm up: the page reads these
        time.sleep(2)
        before = rss_kib(pid)[0]
        out: dict[str, Any] = {"rss_peak_kib": before, "queue_depth_max": 0}
        stop = threading.Event()
        sampler = threading.Thread(target=sample, args=(http, pid, stop, out))
        sampler.start()
        driver.execute_script(f"setTimeout(() => {{ const end = Date.now() + {args.busy_s * 1000};"
                              " while (Date.now() < end) {} }, 0)")
        flood(amqp_url, args.messages, args.size)
        time.sleep(args.busy_s + 3)  # the page runs again and takes what was left
        stop.set()
        sampler.join()
        notices = page_notices(driver)
        shown = len(driver.execute_script("return document.querySelectorAll('#comments li.comment')"))
        return {"flood_messages": args.messages, "flood_mib": round(args.messages * args.size / 2**20, 1),
                "rss_before_mib": round(before / 1024, 1),
                "rss_peak_mib": round(out["rss_peak_kib"] / 1024, 1),
                "rss_after_mib": round(rss_kib(pid)[0] / 1024, 1), "queue_depth_max": out["queue_depth_max"],
                "page_lagged_notices": len(notices),
                "page_skipped": sum(int(n.split()[0]) for n in notices),
                "page_comments_shown": shown, "published_with_warmup": args.messages + 1000}
    finally:
        driver.quit()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--busy-s", type=int, default=20)
    args = p.parse_args()
    with private_broker() as (http, amqp_url, pid):
        server = subprocess.Popen([sys.executable, str(SERVER), "--broker", http, "--port", "0"],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            page = server.stdout.readline().split()[-1]
            print(json.dumps(measure(args, http, amqp_url, pid, page), indent=2))
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
