"""One target's figures from its generator processes' tallies: window rates, per-action latency,
who used the CPU, and every inconsistency as a problem (a run with problems fails loudly).

Rates count what happened inside the window the parent chose (counter snapshots at its edges);
exactness is checked on the totals, after every loop drained the queue."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ferrymq.bench.histogram import decode, merge, summary_ms

MESSAGE_COUNTS = ("sent", "received", "deleted")


def _window(results: list[dict[str, Any]], key: str) -> float:
    return sum(r["marks"]["end"][key] - r["marks"]["start"][key] for r in results if "end" in r["marks"])


def latency(results: list[dict[str, Any]]) -> dict[str, Any]:
    actions = sorted({a for r in results for a in r["hist"]})
    return {a: summary_ms(merge([decode({0: r["hist"][a]}) for r in results if a in r["hist"]]))
            for a in actions}


def verify(results: list[dict[str, Any]]) -> dict[str, int]:
    """Every message sent received exactly once: counts of the ways it was not."""
    expected = {f"{tag}-{n:010d}" for r in results for tag, count in r["sent_by_tag"].items()
                for n in range(count)}
    seen = Counter(i for r in results for i in (r["received_ids"] or ()))
    return {"expected": len(expected), "distinct_received": len(seen),
            "duplicates": sum(c - 1 for c in seen.values() if c > 1),
            "missing": len(expected - seen.keys()), "unexpected": len(seen.keys() - expected)}


def problems(s: dict[str, Any], workload: str) -> list[str]:
    out = []
    t = s["totals"]
    if t["errors"]:
        out.append(f"{t['errors']} calls failed; first: {s['failures'][:1]}")
    if s["late_start"]:
        out.append("a generator process was not ready when the window opened (raise --warmup)")
    if workload == "pipeline" and not t["errors"]:
        if not t["sent"] == t["received"] == t["deleted"]:
            out.append(f"sent {t['sent']}, received {t['received']}, deleted {t['deleted']}: not equal")
        if s.get("left"):
            out.append(f"{s['left']} messages left in the queue after the drain")
        v = s.get("verify") or {}
        if any(v.get(k) for k in ("duplicates", "missing", "unexpected")):
            out.append(f"verification failed: {v}")
    if workload == "idle-pollers" and t["received"]:
        out.append(f"{t['received']} messages received from a queue that should be empty")
    return out


def summarize(results: list[dict[str, Any]], seconds: float, workload: str) -> dict[str, Any]:
    totals = {k: sum(r["counts"][k] for r in results) for k in results[0]["counts"]}
    window = {k: _window(results, k) for k in (*MESSAGE_COUNTS, "calls", "errors")}
    s: dict[str, Any] = {
        "totals": totals, "window": window, "seconds": seconds,
        "per_s": {k: round(window[k] / seconds) for k in (*MESSAGE_COUNTS, "calls")},
        "latency_ms": latency(results), "generator_cores": round(_window(results, "cpu_s") / seconds, 3),
        "generator_processes": len(results), "connections": sum(r["connections"] for r in results),
        "reconnects": sum(r["reconnects"] for r in results),
        "late_start": any(r["late_start"] for r in results),
        "failures": [f for r in results for f in r["failures"]][:5],
    }
    if all(r["received_ids"] is not None for r in results) and workload == "pipeline":
        s["verify"] = verify(results)
    return s
