"""The report of one run against one target (JSON-able), its accounting check, and the
side-by-side comparison of several targets.

Accounting, in every report: ``expected`` deliveries (publishes x the copies each takes: one per
queue a fanout reaches, one per stream reader) = ``completed`` (acked, or dead-lettered after
its retries) + ``left`` (still queued after the drain) + ``lost``. Lost must be 0 whenever the
publishes were confirmed.
"""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from typing import Any

from ferrymq.bench import histogram as hist
from ferrymq.bench.monitor import Monitor, Sample
from ferrymq.bench.targets import Target
from ferrymq.bench.workloads import Topology, Workload


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "platform": platform.platform(), "host": platform.node()}


def _timeline(producers: list[dict[str, Any]], consumers: list[dict[str, Any]],
              latency_by_k: dict[int, Any], interval_s: float) -> dict[str, Any]:
    ks: set[int] = set()
    for item in (*producers, *consumers):
        ks.update(item["timeline"])
    if not ks:
        return {"t": []}
    span = range(min(ks), max(ks) + 1)

    def per_s(items: list[dict[str, Any]]) -> list[float]:
        return [round(sum(i["timeline"].get(k, 0) for i in items) / interval_s, 1) for k in span]

    def pct(k: int, q: float) -> float | None:
        h = latency_by_k.get(k)
        return h.get_value_at_percentile(q) / 1000 if h is not None and h.get_total_count() else None

    return {
        "t": [round(k * interval_s, 3) for k in span],
        "published_per_s": per_s(producers),
        "consumed_per_s": per_s(consumers),
        "latency_p50_ms": [pct(k, 50) for k in span],
        "latency_p99_ms": [pct(k, 99) for k in span],
        "latency_max_ms": [pct(k, 100) for k in span],
    }


def _rate(items: list[dict[str, Any]], key: str) -> float:
    return sum(item[key] / item["window_seconds"] for item in items)


def _cpu(producers: list[dict[str, Any]], consumers: list[dict[str, Any]], broker_cpu: float | None,
         machine_cpu: float) -> dict[str, Any]:
    gen_cpu = sum(p["cpu_fraction"] for p in producers) + sum(c["cpu_fraction"] for c in consumers)
    return {
        "producers": [round(p["cpu_fraction"], 3) for p in producers],
        "consumers": [round(c["cpu_fraction"], 3) for c in consumers],
        "broker": round(broker_cpu, 3) if broker_cpu is not None else None,
        # every core's busy time over the window: minus broker and generators = the rest
        "machine": round(machine_cpu, 3),
        "others": round(machine_cpu - (broker_cpu or 0.0) - gen_cpu, 3),
    }


def _totals(workload: Workload, topology: Topology, producers: list[dict[str, Any]],
            consumers: list[dict[str, Any]], left: dict[str, int]) -> dict[str, Any]:
    """Counts over the whole run and the drain; ``lost`` is what neither completed nor is left."""
    window = workload.confirm_window if workload.confirm else 0
    expected = sum(p["published"] * topology.copies(i, workload.kind == "stream")
                   for i, p in enumerate(producers))
    completed = sum(c["completed"] for c in consumers)
    # a stream keeps what was read: its depth is retention, not a backlog
    left_total = 0 if workload.kind == "stream" else sum(
        v for q, v in left.items() if q != topology.dlq and v > 0)
    return {
        "published": sum(p["published"] for p in producers),
        "confirmed": sum(p["confirmed"] for p in producers) if window else None,
        "nacked": sum(p["nacked"] for p in producers) if window else None,
        "expected": expected if consumers else None,
        "consumed": sum(c["consumed"] for c in consumers) if consumers else None,
        "completed": completed if consumers else None,
        "retried": sum(c["retried"] for c in consumers),
        "dead_lettered": sum(c["dead_lettered"] for c in consumers),
        "dlq_depth": left.get(topology.dlq) if topology.dlq else None,
        "left": left_total if consumers else None,
        "lost": (expected - completed - left_total) if consumers else None,
    }


def build_report(*, target: Target, workload: Workload, topology: Topology, producers: list[dict[str, Any]],
                 consumers: list[dict[str, Any]], samples: list[Sample], broker_cpu: float | None,
                 machine_cpu: float, errors: list[str], left: dict[str, int],
                 load_before: tuple[float, float, float], interval_s: float) -> dict[str, Any]:
    window = workload.confirm_window if workload.confirm else 0
    n_windows = round(workload.seconds / interval_s)
    lat_parts = [hist.decode(c.pop("latency")) for c in consumers]
    conf_parts = [hist.decode(p.pop("confirm_latency")) for p in producers]
    latency = hist.merge(lat_parts, 0, n_windows)
    confirm_latency = hist.merge(conf_parts, 0, n_windows)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": target.describe(),
        "workload": workload.to_dict(),
        "topology": {"queues": list(topology.queues), "exchange": topology.exchange,
                     "dlq": topology.dlq, "producers": topology.producers, "consumers": topology.consumers},
        "seconds": workload.seconds,
        "published_per_s": _rate(producers, "window_published"),
        "confirmed_per_s": _rate(producers, "window_confirmed") if window else None,
        "consumed_per_s": _rate(consumers, "window_consumed") if consumers else None,
        "latency_ms": hist.summary_ms(latency) if consumers else None,
        "confirm_latency_ms": hist.summary_ms(confirm_latency) if window else None,
        "latency_spectrum_ms": hist.spectrum_ms(latency),
        "cpu": _cpu(producers, consumers, broker_cpu, machine_cpu),
        "totals": _totals(workload, topology, producers, consumers, left),
        "timeline": _timeline(producers, consumers, hist.by_interval(lat_parts), interval_s),
        "samples": Monitor.as_dict(samples),
        "producers": producers,
        "consumers": consumers,
        "machine": {**machine_info(), "loadavg_before": list(load_before),
                    "loadavg_after": list(os.getloadavg())},
        "errors": errors,
    }


def check(report: dict[str, Any]) -> list[str]:
    """What is inconsistent in a report (empty when all adds up)."""
    problems = list(report.get("errors") or [])
    t = report["totals"]
    if t["confirmed"] is not None and t["confirmed"] + t["nacked"] + (
            sum(p["unconfirmed"] or 0 for p in report["producers"])) != t["published"]:
        problems.append("confirmed + nacked + unconfirmed != published")
    if t["completed"] is not None:
        if t["expected"] != t["completed"] + t["left"] + t["lost"]:
            problems.append("expected != completed + left + lost")
        if t["lost"] and t["confirmed"] is not None:
            problems.append(f"{t['lost']} confirmed messages lost")
        if t["dlq_depth"] is not None and t["dlq_depth"] != t["dead_lettered"]:
            problems.append(f"dead-letter queue holds {t['dlq_depth']}, "
                            f"consumers rejected {t['dead_lettered']}")
    return problems


def compare(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per target with the headline figures and the ratio to the first target."""
    rows = []
    base = reports[0] if reports else None
    for r in reports:
        lat = r.get("latency_ms") or r.get("confirm_latency_ms") or {}
        rate = r["consumed_per_s"] if r["consumed_per_s"] is not None else r["published_per_s"]
        base_rate = (base["consumed_per_s"] if base and base["consumed_per_s"] is not None
                     else (base or r)["published_per_s"])
        rows.append({
            "target": r["target"]["name"],
            "msgs_per_s": round(rate, 1),
            "ratio": round(rate / base_rate, 3) if base_rate else None,
            "published_per_s": round(r["published_per_s"], 1),
            "p50_ms": lat.get("p50"), "p90_ms": lat.get("p90"), "p99_ms": lat.get("p99"),
            "p999_ms": lat.get("p999"), "max_ms": lat.get("max"),
            "broker_cores": r["cpu"]["broker"],
            "generator_cores": round(sum(r["cpu"]["producers"]) + sum(r["cpu"]["consumers"]), 3),
            "others_cores": r["cpu"]["others"],
            "lost": r["totals"]["lost"],
        })
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    lines = ["| target | msgs/s | ratio | p50 ms | p99 ms | p99.9 ms | max ms | broker cores "
             "| generator cores | lost |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['target']} | {f(r['msgs_per_s'], ',.0f')} | {f(r['ratio'], '.2f')}x | "
                     f"{f(r['p50_ms'], '.2f')} | {f(r['p99_ms'], '.2f')} | {f(r['p999_ms'], '.2f')} | "
                     f"{f(r['max_ms'], '.2f')} | {f(r['broker_cores'], '.2f')} | "
                     f"{f(r['generator_cores'], '.2f')} | {f(r['lost'], 'd')} |")
    return "\n".join(lines)
