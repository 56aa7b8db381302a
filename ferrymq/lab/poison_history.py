"""One message's life as the lab saw it: each delivery of the poison message (when, to which
consumer, the redelivered flag), its dead-lettering with the ``x-death`` header the broker added,
and, where the broker keeps traces (FerryMQ's ``/api/ferrymq/traces``), the broker's own account."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ferrymq.lab.recorder import Series

HEAD_ROWS, TAIL_ROWS = 10, 5  # a storm delivers thousands of times: the table keeps both ends
TRACE_ROWS = 25


def _plain(v: Any) -> Any:
    """An AMQP table value as JSON holds it (timestamps and byte strings as text)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    return v if isinstance(v, int | float | str | bool) or v is None else str(v)


@dataclass
class History:
    poison_id: int = -1
    published_t: float | None = None
    deliveries: list[tuple[float, str, bool]] = field(default_factory=list)
    death: tuple[float, Any] | None = None

    def observer(self, series: Series, consumer: str, failed: int,
                 failed_again: int) -> Callable[[int, int, int], None]:
        def observe(kind: int, a: int, b: int) -> None:
            if kind in (failed, failed_again) and a == self.poison_id:
                self.deliveries.append((series.t(), consumer, kind == failed_again))
        return observe

    def dead_lettered(self, t: float, x_death: Any) -> None:
        self.death = (t, _plain(x_death))

    def rows(self) -> list[dict[str, Any]]:
        indexed = list(enumerate(self.deliveries, 1))
        if len(indexed) > HEAD_ROWS + TAIL_ROWS:
            indexed = indexed[:HEAD_ROWS] + indexed[-TAIL_ROWS:]
        rows: list[dict[str, Any]] = [
            {"delivery": i, "t_s": t, "consumer": c, "redelivered": r, "x-death": None}
            for i, (t, c, r) in indexed]
        if self.death is not None:
            rows.append({"delivery": "dead-lettered", "t_s": self.death[0], "consumer": "dlq",
                         "redelivered": None, "x-death": self.death[1]})
        return rows

    def record(self, series: Series) -> None:
        d = self.deliveries
        span = d[-1][0] - d[0][0] if len(d) > 1 else 0.0
        series.figure("poison_deliveries", len(d))
        series.figure("poison_redeliveries_per_s", round((len(d) - 1) / span, 1) if span else 0.0)
        series.figure("poison_redelivered_flags", sum(1 for _, _, r in d if r))
        death = self.death
        first = death[1][0] if death and isinstance(death[1], list) and death[1] else {}
        series.figure("poison_dead_lettered_after_s",
                      round(death[0] - (self.published_t or 0.0), 3) if death else None)
        series.figure("poison_x_death_count", first.get("count"))
        series.figure("poison_x_death_reason", first.get("reason"))
        series.table("the poison message's deliveries", self.rows())


async def broker_trace(http_url: str, queue: str) -> list[dict[str, Any]]:
    """FerryMQ's trace of the message published to ``queue`` (it carried ``x-ferrymq-trace``):
    its lifecycle events, time relative to the first; empty when the plane has none."""
    import aiohttp

    with contextlib.suppress(Exception):
        auth = {"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()}
        async with aiohttp.ClientSession(headers=auth) as http, \
                http.get(f"{http_url}/api/ferrymq/traces", timeout=aiohttp.ClientTimeout(total=5)) as resp:
            data = await resp.json()
        for trace in data.get("traces", []):
            if trace.get("routing_key") == queue and trace.get("events"):
                t0 = trace["events"][0]["at_ms"]
                return [{"ms": e["at_ms"] - t0, "event": e["event"], "queue": e["queue"],
                         "detail": e["detail"]} for e in trace["events"][:TRACE_ROWS]]
    return []
