"""What one generator process counts: messages and calls as plain integers, per-action latency
histograms (recorded only inside the measured window), the first few failures verbatim, and
snapshots of the counters and of its own CPU at the window's two edges."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hdrh.histogram import HdrHistogram

from ferrymq.bench.histogram import new_histogram
from ferrymq.bench.sqs.http11 import HttpError
from ferrymq.bench.sqs.transport import Client

COUNTERS = ("sent", "received", "deleted", "calls", "empty_receives", "errors")
ERRORS_KEPT = 5


class Tally:
    __slots__ = ("counts", "failures", "hist", "marks", "measuring", "received_ids")

    def __init__(self, verify: bool) -> None:
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.hist: dict[str, HdrHistogram] = {}
        self.measuring = False
        self.marks: dict[str, dict[str, float]] = {}
        self.failures: list[dict[str, Any]] = []
        self.received_ids: list[str] | None = [] if verify else None

    def took(self, action: str, start_ns: int) -> None:
        self.counts["calls"] += 1
        if self.measuring:
            h = self.hist.get(action)
            if h is None:
                h = self.hist[action] = new_histogram()
            h.record_value(max(1, (time.perf_counter_ns() - start_ns) // 1000))

    def failed(self, action: str, status: int, request: bytes, reply: bytes | str) -> None:
        self.counts["errors"] += 1
        if len(self.failures) < ERRORS_KEPT:
            text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
            self.failures.append({"action": action, "status": status,
                                  "request": request[:400].decode("utf-8", "replace"), "reply": text[:600]})

    def ok(self) -> bool:
        return self.counts["errors"] < ERRORS_MAX

    def mark(self, edge: str) -> None:
        """Counters and this process's CPU seconds now; the window starts measuring at 'start'."""
        self.marks[edge] = {**self.counts, "cpu_s": time.process_time(), "t": time.monotonic()}
        self.measuring = edge == "start"

    def result(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "marks": self.marks, "failures": self.failures,
                "hist": {k: h.encode() for k, h in self.hist.items()}, "received_ids": self.received_ids}


ERRORS_MAX = 200  # loops stop once this many calls failed: the run is broken, not slow


async def counted_call(client: Client, tally: Tally, action: str, body: bytes) -> bytes | None:
    """One call, timed; the reply body on 200, else None with the failure recorded."""
    start = time.perf_counter_ns()
    try:
        r = await client.call(action, body)
    except (OSError, HttpError) as exc:
        tally.failed(action, 0, body, f"{type(exc).__name__}: {exc}")
        await asyncio.sleep(0.05)  # a refused connection must not spin the loop
        return None
    tally.took(action, start)
    if r.status != 200:
        tally.failed(action, r.status, body, r.body)
        return None
    return r.body
