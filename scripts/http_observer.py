"""What an operator's screen costs the broker: the dashboard's live stream held open and /metrics
scraped once a second, for as long as a benchmark runs beside it.

    python scripts/http_observer.py --url http://127.0.0.1:15672 --seconds 60

Prints, at the end, how many live snapshots arrived, how many scrapes were taken, and their median and
worst times. Run it while `ferrymq bench` drives the same broker (BENCHMARKS.md, "HTTP plane").
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import requests

AUTH = ("guest", "guest")


def follow_live(url: str, stop: threading.Event, counts: list[int]) -> None:
    with requests.get(f"{url}/api/ferrymq/live", auth=AUTH, stream=True, timeout=30) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith(b"data:"):
                counts[0] += 1
            if stop.is_set():
                return


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:15672")
    ap.add_argument("--seconds", type=float, default=60)
    args = ap.parse_args()
    stop, counts = threading.Event(), [0]
    live = threading.Thread(target=follow_live, args=(args.url, stop, counts), daemon=True)
    live.start()
    scrapes: list[float] = []
    end = time.monotonic() + args.seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        requests.get(f"{args.url}/metrics", timeout=30).raise_for_status()
        scrapes.append((time.perf_counter() - t0) * 1000)
        time.sleep(max(0.0, 1 - (time.perf_counter() - t0)))
    stop.set()
    print(f"live snapshots {counts[0]}, scrapes {len(scrapes)}: median {statistics.median(scrapes):.1f} ms, "
          f"worst {max(scrapes):.1f} ms")


if __name__ == "__main__":
    main()
