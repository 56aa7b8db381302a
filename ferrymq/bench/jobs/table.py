"""The run as Markdown tables (one per workload), in the shape BENCHMARKS.md uses."""

from __future__ import annotations

from typing import Any


def _fmt(v: Any) -> str:
    return f"{v:,}" if isinstance(v, int) else str(v)


def _drain(r: dict[str, Any]) -> list[Any]:
    return [r["enqueue_jobs_per_s"], r["drain_jobs_per_s"], r["worker_cpu_us_per_job"], r["drain_s"],
            r["worker_start_s"],
            f"{r['done']}/{r['jobs']}", r["left"], r["broker_cores"], r["machine_cores"],
            r["enqueue_load"], r["drain_load"]]


def _latency(r: dict[str, Any]) -> list[Any]:
    lat, sched = r["latency_ms"], r["schedule_latency_ms"]
    return [r["sent"], r["sent_per_s"], lat.get("p50"), lat.get("p99"), lat.get("max"), sched.get("p50"),
            sched.get("p99"), r["load"]]


def _backlog(r: dict[str, Any]) -> list[Any]:
    return [r["jobs"], r["enqueue_jobs_per_s"], r["rss_before_mib"], r["rss_mib"], r["peak_rss_mib"],
            r["load"]]


HEADS = {
    "drain": (["enqueue jobs/s", "drain jobs/s", "worker CPU µs/job", "drain s", "workers' start s", "done",
               "left", "broker cores", "machine cores", "load (enqueue)", "load (drain)"], _drain),
    "latency": (["jobs", "sent/s", "send->start p50 ms", "p99 ms", "max ms", "schedule->start p50 ms",
                 "p99 ms", "load"], _latency),
    "backlog": (["jobs waiting", "enqueue jobs/s", "broker RSS before MiB", "RSS MiB", "peak RSS MiB",
                 "load"], _backlog),
}


def table(rows: list[dict[str, Any]]) -> str:
    parts = []
    for workload, (heads, cells) in HEADS.items():
        mine = [r for r in rows if r["workload"] == workload]
        if not mine:
            continue
        lines = [f"{workload}:", "", "| broker | library | " + " | ".join(heads) + " |",
                 "|---|---|" + "---|" * len(heads)]
        for r in mine:
            body = ([f"error: {r['error']}"] + [""] * (len(heads) - 1) if "error" in r
                    else [_fmt(c) for c in cells(r)])
            lines.append(f"| {r['broker']} | {r['lib']} | " + " | ".join(body) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def profile_text(row: dict[str, Any]) -> str:
    """A drain's profile: share of the samples (py-spy) or of the workers' CPU (sampler) with each
    frame as leaf / on the stack."""
    prof = row["profile"]
    if "error" in prof:
        return f"profile {row['broker']}/{row['lib']}: {prof['error']}"
    n = prof.get("cpu_us") or prof["samples"] or 1
    what = "py-spy samples" if prof.get("tool") == "py-spy" else "worker CPU"
    lines = [f"profile {row['broker']}/{row['lib']} drain ({prof['samples']} samples):",
             f"  % of {what} with the frame as leaf (self)"]
    lines += [f"  {100 * c / n:5.1f}  {name}" for name, c in prof["self"]]
    lines.append(f"  % of {what} with the frame on the stack (total)")
    lines += [f"  {100 * c / n:5.1f}  {name}" for name, c in prof["total"]]
    return "\n".join(lines)
