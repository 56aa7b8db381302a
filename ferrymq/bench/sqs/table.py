"""The run as a Markdown table in the shape BENCHMARKS.md uses, with the first target's rate as
a multiple of each other's below it."""

from __future__ import annotations

import re
from typing import Any

NONE = "-"


def _fmt(v: Any) -> str:
    if v is None:
        return NONE
    return f"{v:,}" if isinstance(v, int) else str(v)


def _load(text: str) -> str:
    m = re.search(r"load average: (.*)$", text or "")
    return m.group(1) if m else "?"


def _lat(r: dict[str, Any], action: str) -> str:
    lat = r["latency_ms"].get(action) or {}
    return f"{lat.get('p50', NONE)} / {lat.get('p99', NONE)}"


def _pipeline(r: dict[str, Any]) -> list[Any]:
    t, p = r["totals"], r["per_s"]
    return [p["deleted"], p["sent"], p["received"], p["calls"], _lat(r, "SendMessageBatch"),
            _lat(r, "ReceiveMessage"), _lat(r, "DeleteMessageBatch"), r["broker_cores"],
            r["broker_us_per_msg"],
            f"{r['generator_cores']} ({r['generator_processes']})", r["machine_cores"],
            f"{r['connections']} ({r['reconnects']})", f"{t['sent']}/{t['received']}/{t['deleted']}",
            r["left"], t["errors"]]


def _idle(r: dict[str, Any]) -> list[Any]:
    t, bc = r["totals"], r["broker_cores"]
    return [r["connections"], r["window"]["calls"], t["empty_receives"],
            NONE if bc is None else f"{100 * bc:.2f} %",
            f"{r['generator_cores']} ({r['generator_processes']})",
            r["machine_cores"], t["errors"]]


HEADS = {
    "pipeline": (["msg/s (deleted)", "sent/s", "received/s", "calls/s", "send p50/p99 ms",
                  "receive p50/p99 ms", "delete p50/p99 ms", "broker cores", "broker CPU µs/msg",
                  "generator cores (procs)", "machine cores", "connections (reopened)",
                  "sent/received/deleted", "left", "errors"], _pipeline),
    "idle-pollers": (["connections", "polls returned in window", "empty replies",
                      "broker CPU (% of one core)", "generator cores (procs)", "machine cores", "errors"],
                     _idle),
}


def _row(r: dict[str, Any], workload: str) -> str:
    heads, cells = HEADS[workload]
    name = r.get("target", {}).get("name", r["spec"])
    load = f"{_load(r['uptime_before'])} → {_load(r['uptime_after'])}"
    if "totals" not in r:
        return f"| {name} | " + " | ".join([f"failed: {'; '.join(r['problems'])}"] + [""] * len(heads)) + " |"
    return f"| {name} | " + " | ".join([_fmt(c) for c in cells(r)] + [load]) + " |"


def _ratios(rows: list[dict[str, Any]]) -> list[str]:
    ok = [r for r in rows if "per_s" in r and r["per_s"]["deleted"]]
    if len(ok) < 2:
        return []
    first = ok[0]
    name, rate = first["target"]["name"], first["per_s"]["deleted"]
    return ["", "; ".join(f"{name} = {rate / r['per_s']['deleted']:.1f} x {r['target']['name']}"
                          for r in ok[1:])]


def table(rows: list[dict[str, Any]], workload: str) -> str:
    heads, _ = HEADS[workload]
    lines = ["| target | " + " | ".join(heads) + " | load (uptime before → after) |",
             "|---|" + "---|" * (len(heads) + 1)]
    lines += [_row(r, workload) for r in rows]
    if workload == "pipeline":
        lines += _ratios(rows)
    problems = [f"{r['spec']}: {p}" for r in rows for p in r.get("problems", [])]
    if problems:
        lines += ["", "Problems: " + " | ".join(problems)]
    return "\n".join(lines)
