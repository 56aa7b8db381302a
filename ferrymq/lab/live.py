"""Progress while a scenario runs: a live table in the terminal (rich, on stderr) and, on a FerryMQ
broker, one JSON snapshot per series a second on ``amq.topic`` with the key ``ferrymq.lab.progress``
— the dashboard's Lab page subscribes to it over server-sent events. Publishing to a built-in
exchange needs no declaration, so the page works before the first run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Any

from ferrymq.lab.recorder import Series
from ferrymq.lab.targets import LabTarget

TICK_S = 1.0
PROGRESS_KEY = "ferrymq.lab.progress"
RATE_WINDOW_S = 2.0


def snapshot(s: Series, run_id: str, scenario: str, duration: float, state: str = "running",
             report: str = "") -> dict[str, Any]:
    """The dashboard's view of one series (the contract of the Lab page)."""
    now = s.ended_ns or s.now_ns()  # a finished series stays at its end
    k_now = (now - s.origin_ns) // s.interval_ns
    back = max(1, int(RATE_WINDOW_S * 1e9 // s.interval_ns))
    recent = [s.buckets[k] for k in range(k_now - back, k_now) if k in s.buckets]
    span = back * s.interval_ns / 1e9
    last = s.buckets.get(k_now - 1) or s.buckets.get(k_now)
    h = s.latency
    depth = last.gauges.get("depth") if last else None
    books = s.ledger.books() if state == "done" else None
    return {"run": run_id, "scenario": scenario, "target": s.target, "series": s.name, "t": s.t(now),
            "duration": duration,
            "in_per_s": round(sum(b.counts.get("sent", 0) for b in recent) / span, 1),
            "out_per_s": round(sum(b.counts.get("received", 0) for b in recent) / span, 1),
            "p99_ms": round(h.get_value_at_percentile(99.0) / 1000, 3) if h.get_total_count() else None,
            "depth": depth, "sent": s.totals["sent"], "received": s.totals["received"],
            "lost": books["lost"] if books else None,
            "duplicates": books["duplicates"] if books else max(0, s.totals["received"] - s.ledger.sent),
            "events": [{"t": e.t, "kind": e.kind, "label": e.label} for e in s.events],
            "state": state, "report": report}


class Live:
    """Watches the series a run opens; draws and publishes them once a second: to the broker given
    as ``dashboard_url``, else to the lab-started FerryMQ under test."""

    def __init__(self, enabled: bool | None = None, scenario: str = "", duration: float = 0.0,
                 run_id: str = "", dashboard_url: str = "") -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.scenario, self.duration, self.run_id = scenario, duration, run_id
        self.series: list[Series] = []
        self.dashboard_url = dashboard_url  # a FerryMQ the user watches (e.g. `make serve`'s)
        self.amqp_urls: list[str] = [dashboard_url] if dashboard_url else []
        self._task: asyncio.Task[None] | None = None
        self._live: Any = None

    def watch(self, s: Series) -> None:
        if self.series:
            self.series[-1].end()
        self.series.append(s)

    def publish_to(self, target: LabTarget) -> None:
        """Snapshots go to lab-started FerryMQ brokers (their dashboards show the run)."""
        if not self.dashboard_url and target.info.get("started") == "ferrymq serve" and target.amqp_url:
            self.amqp_urls = [target.amqp_url]

    def __enter__(self) -> Live:
        if self.enabled:
            from rich.live import Live as RichLive

            self._live = RichLive(self._table(), refresh_per_second=2, transient=False,
                                  console=_console()).__enter__()
        with contextlib.suppress(RuntimeError):
            self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(None, None, None)

    async def _tick(self) -> None:
        conn: Any = None
        url = ""
        while True:
            await asyncio.sleep(TICK_S)
            if self._live is not None:
                self._live.update(self._table())
            if self.amqp_urls and self.series:
                if url != self.amqp_urls[0]:
                    conn, url = await _reconnect(conn, self.amqp_urls[0])
                await self._publish(conn)

    async def _publish(self, conn: Any) -> None:
        import aio_pika

        if conn is None:
            return
        with contextlib.suppress(Exception):
            channel = await conn.channel()
            exchange = await channel.get_exchange("amq.topic", ensure=False)
            for s in self.series[-4:]:
                snap = snapshot(s, self.run_id, self.scenario, self.duration,
                                "done" if s.ended_ns else "running")
                await exchange.publish(aio_pika.Message(json.dumps(snap).encode(),
                                                        content_type="application/json"), PROGRESS_KEY)
            await channel.close()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=f"ferrymq lab {self.scenario}", expand=False)
        for col in ("series", "t", "in/s", "out/s", "p99 ms", "depth", "sent", "received", "faults"):
            table.add_column(col, justify="left" if col in ("series", "faults") else "right")
        for s in self.series:
            snap = snapshot(s, self.run_id, self.scenario, self.duration)
            faults = ", ".join(e["label"] for e in snap["events"] if e["kind"] == "fault")
            table.add_row(s.name, f"{snap['t']:.0f}/{self.duration:.0f}", f"{snap['in_per_s']:,.0f}",
                          f"{snap['out_per_s']:,.0f}",
                          "-" if snap["p99_ms"] is None else f"{snap['p99_ms']:.1f}",
                          "-" if snap["depth"] is None else f"{snap['depth']:,}", f"{snap['sent']:,}",
                          f"{snap['received']:,}", faults)
        return table


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


async def _reconnect(conn: Any, url: str) -> tuple[Any, str]:
    from ferrymq.lab.amqp import connect

    if conn is not None:
        with contextlib.suppress(Exception):
            await conn.close()
    try:
        return await connect(url), url
    except Exception:
        return None, ""
