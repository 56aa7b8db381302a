"""A finished series as the report's JSON: column-form timeline (rates, latency percentiles, gauges),
totals, the ledger's books, and the time to recover after each fault.

Recovery, precisely: before a fault, the baseline is the mean rate of receipts over the buckets in
the ``BASELINE_S`` seconds before it; the series has recovered at the first bucket after the fault
ends (for an instant fault such as kill -9, after it happens) whose receipt rate is at least
``RECOVERED_SHARE`` of that baseline. No baseline (nothing was flowing) means nothing to recover.
"""

from __future__ import annotations

from typing import Any

from ferrymq.lab.recorder import COUNTERS, Event, Series

BASELINE_S = 5.0
RECOVERED_SHARE = 0.5
PERCENTILES = {"p50": 50.0, "p95": 95.0, "p99": 99.0}


def _ms(us: float) -> float:
    return round(us / 1000.0, 3)


def timeline(s: Series) -> dict[str, Any]:
    """Columns, one row per bucket from the first to the last (empty buckets are zeros)."""
    last = max(s.buckets) if s.buckets else -1
    iv = s.interval_ns / 1e9
    cols: dict[str, Any] = {"t": [round((k + 1) * iv, 3) for k in range(last + 1)]}
    for what in COUNTERS:
        cols[f"{what}_per_s"] = [round(s.buckets[k].counts.get(what, 0) / iv, 1) if k in s.buckets else 0.0
                                 for k in range(last + 1)]
    for name, q in (*PERCENTILES.items(), ("max", 100.0)):
        col: list[float | None] = []
        for k in range(last + 1):
            h = s.buckets[k].latency if k in s.buckets else None
            col.append(None if h is None or not h.get_total_count()
                       else _ms(h.get_max_value() if q == 100.0 else h.get_value_at_percentile(q)))
        cols[f"latency_{name}_ms"] = col
    names = sorted({g for b in s.buckets.values() for g in b.gauges})
    cols["gauges"] = {g: [s.buckets[k].gauges.get(g) if k in s.buckets else None for k in range(last + 1)]
                      for g in names}
    return cols


def _rate_between(tl: dict[str, Any], t0: float, t1: float) -> float | None:
    rates = [r for t, r in zip(tl["t"], tl["received_per_s"]) if t0 < t <= t1]
    return sum(rates) / len(rates) if rates else None


def recovery(tl: dict[str, Any], ev: Event) -> float | None:
    """Seconds from the fault's end to the first bucket back at ``RECOVERED_SHARE`` of the baseline."""
    base = _rate_between(tl, ev.t - BASELINE_S, ev.t)
    if not base:
        return None
    end = ev.until if ev.until is not None else ev.t
    for t, r in zip(tl["t"], tl["received_per_s"]):
        if t > end and r >= RECOVERED_SHARE * base:
            return round(max(0.0, t - end), 3)
    return None


def latency(s: Series) -> dict[str, float | None]:
    h = s.latency
    if not h.get_total_count():
        return {**dict.fromkeys(PERCENTILES), "max": None}
    out: dict[str, float | None] = {k: _ms(h.get_value_at_percentile(q)) for k, q in PERCENTILES.items()}
    out["max"] = _ms(h.get_max_value())
    return out


def summarize(s: Series) -> dict[str, Any]:
    tl = timeline(s)
    seconds = ((s.ended_ns or s.now_ns()) - s.origin_ns) / 1e9
    faults = [{**ev.to_dict(), "recover_s": recovery(tl, ev)} for ev in s.events if ev.kind == "fault"]
    return {
        "name": s.name, "target": s.target, "variant": s.variant, "seconds": round(seconds, 3),
        "totals": dict(s.totals), "books": s.ledger.books(), "latency_ms": latency(s),
        "rates": {"in_per_s": round(s.totals["sent"] / seconds, 1) if seconds else 0.0,
                  "out_per_s": round(s.totals["received"] / seconds, 1) if seconds else 0.0},
        "faults": faults, "events": [ev.to_dict() for ev in s.events],
        "figures": s.figures, "tables": s.tables, "timeline": tl,
    }
