"""The live display while a run goes on (rich): one row per target, updated from the
monitor's samples. Quiet when stderr is not a terminal, so tests and CI logs stay clean."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ferrymq.bench.monitor import Sample


class Progress:
    def __init__(self, total_seconds: float, enabled: bool | None = None) -> None:
        self.console = Console(stderr=True)
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.total = total_seconds
        self.rows: dict[str, dict[str, Any]] = {}
        self.current = ""
        self.live: Live | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.__exit__(None, None, None)

    def start_target(self, name: str) -> None:
        self.current = name
        self.rows[name] = {"t": 0.0, "pub": 0.0, "done": 0.0, "depth": None, "lag": 0, "broker": None,
                           "gen": 0.0, "status": "starting", "_prev": None, "_t0": time.monotonic()}
        self._refresh()

    def finish_target(self, name: str, report: dict[str, Any]) -> None:
        row = self.rows[name]
        lat = report.get("latency_ms") or {}
        row["status"] = f"done: p99 {lat.get('p99', 0):.2f} ms, lost {report['totals']['lost']}"
        self._refresh()

    def on_sample(self, s: Sample) -> None:
        row = self.rows.get(self.current)
        if row is None:
            return
        prev = row["_prev"]
        if prev is not None and s.t > prev.t:
            dt = s.t - prev.t
            row["pub"] = (s.published - prev.published) / dt
            row["done"] = (s.completed - prev.completed) / dt
        row["_prev"] = s
        row.update(t=s.t, depth=s.depth, lag=s.lag, broker=s.cpu.get("broker"),
                   gen=sum(v for k, v in s.cpu.items() if k.startswith(("producer", "consumer"))),
                   status="warm-up" if s.t < 0 else ("measuring" if s.t < self.total else "draining"))
        self._refresh()

    def _table(self) -> Table:
        table = Table(title="ferrymq bench", expand=False)
        for col in ("target", "t (s)", "published/s", "completed/s", "depth", "lag", "broker cores",
                    "generator cores", "status"):
            table.add_column(col, justify="right" if col not in ("target", "status") else "left")
        for name, r in self.rows.items():
            table.add_row(name, f"{r['t']:.1f}/{self.total:.0f}", f"{r['pub']:,.0f}",
                          f"{r['done']:,.0f}",
                          "-" if r["depth"] is None else f"{r['depth']:,}", f"{r['lag']:,}",
                          "-" if r["broker"] is None else f"{r['broker']:.2f}", f"{r['gen']:.2f}",
                          r["status"])
        return table

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._table())
