"""The lab's HTML report: one self-contained page (inline SVG, no scripts, no network) drawn from the
run's JSON. Every chart has every series on it and the faults as marked lines on the same
timeline; the "what happened" paragraph comes first, the numbers it rests on follow."""

from __future__ import annotations

import html
import json
from typing import Any

from ferrymq.bench.html_report import COLORS, Series, line_chart

LEGEND_PX = 300  # series labels name a target and a variant: room for both

CSS = ("body{font-family:sans-serif;margin:24px;max-width:1060px;color:#222}"
       "table{border-collapse:collapse;margin:8px 0;font-size:13px}"
       "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right} th{background:#f4f4f4}"
       "td:first-child{text-align:left} .what{background:#f3f7fb;border-left:4px solid #1f77b4;"
       "padding:8px 14px} .grid{display:flex;flex-wrap:wrap;gap:4px} pre{background:#f6f6f6;padding:8px}")


def _chart(*args: Any, **kwargs: Any) -> str:
    return line_chart(*args, legend_px=LEGEND_PX, **kwargs)


def _color(i: int) -> str:
    return COLORS[i % len(COLORS)]


def short_names(run: dict[str, Any]) -> list[str]:
    """Legend labels: the variant alone when every series ran on one target, else both, short."""
    series = run["series"]
    one_target = len({s["target"] for s in series}) == 1
    out = []
    for s in series:
        target = s["target"].replace(" (queue mode)", " queue").replace(" (log mode)", " log")
        out.append(s["variant"] or target if one_target else f"{target} {s['variant']}".strip())
    return out


def _markers(run: dict[str, Any]) -> list[tuple[float, str, str]]:
    out = []
    for i, s in enumerate(run["series"]):
        for e in s["events"]:
            if e["kind"] in ("fault", "restart", "phase"):
                label = e["label"] if e["kind"] != "restart" else "restart"
                out.append((e["t"], label, _color(i)))
    return out


def _gauge_series(run: dict[str, Any], prefix: str) -> list[Series]:
    out: list[Series] = []
    for i, s in enumerate(run["series"]):
        tl = s["timeline"]
        for name, col in sorted(tl["gauges"].items()):
            if name == prefix or name.startswith(prefix + ":"):
                label = f"{short_names(run)[i]} {name.partition(':')[2] or name}"
                out.append((label, tl["t"], col, _color(i), name != prefix))
    return out


def charts(run: dict[str, Any]) -> list[str]:
    thr: list[Series] = []
    lat: list[Series] = []
    settle: list[Series] = []
    for i, (s, name) in enumerate(zip(run["series"], short_names(run))):
        tl, c = s["timeline"], _color(i)
        thr += [(f"{name} in", tl["t"], tl["sent_per_s"], c, True),
                (f"{name} out", tl["t"], tl["received_per_s"], c, False)]
        lat += [(f"{name} {p}", tl["t"], tl[f"latency_{p}_ms"], c, p != "p99") for p in ("p50", "p99", "max")]
        for what in ("redelivered", "failed", "retried", "dead_lettered", "publish_failed", "dropped"):
            if s["totals"][what]:
                settle.append((f"{name} {what}", tl["t"], tl[f"{what}_per_s"], c, what != "redelivered"))
    marks = _markers(run)
    out = [_chart("Throughput in and out", thr, "seconds", "msgs/s", markers=marks),
           _chart("Latency p50 / p99 / max (send to processing)", lat, "seconds", "ms", log_y=True,
                      markers=marks),
           _chart("Queue depth / consumer lag", _gauge_series(run, "depth") + _gauge_series(run, "lag"),
                      "seconds", "messages", markers=marks)]
    inflight = _gauge_series(run, "in_flight")
    if inflight:
        out.append(_chart("In flight per consumer (prefetched, waiting)", inflight, "seconds", "messages",
                              markers=marks))
    if settle:
        out.append(_chart("Redeliveries, failures, retries, dead letters", settle, "seconds", "per s",
                              markers=marks))
    for g in sorted({g.split(":")[0] for s in run["series"] for g in s["timeline"]["gauges"]}
                    - {"depth", "lag", "in_flight"}):
        out.append(_chart(g.replace("_", " "), _gauge_series(run, g), "seconds", g, markers=marks))
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in cols) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".")
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return v if isinstance(v, str) else json.dumps(v)


def summary_rows(run: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for s in run["series"]:
        b, t, lat = s["books"], s["totals"], s["latency_ms"]
        rows.append({"series": s["name"], "seconds": s["seconds"], "in/s": s["rates"]["in_per_s"],
                     "out/s": s["rates"]["out_per_s"], "p50 ms": lat["p50"], "p95 ms": lat["p95"],
                     "p99 ms": lat["p99"], "max ms": lat["max"], "confirmed": b["confirmed"],
                     "lost": b["lost"],
                     "duplicates": b["duplicates"], "redelivered": t["redelivered"], "failed": t["failed"],
                     "dead-lettered": t["dead_lettered"], "drained after": t.get("drained", 0),
                     "recovery s": ", ".join(f"{f['recover_s']}" for f in s["faults"]) or None})
    return rows


def render(run: dict[str, Any]) -> str:
    scen = run["scenario"]
    what = "".join(f"<p>{html.escape(p)}</p>" for p in run["explanation"])
    extras = []
    for s in run["series"]:
        for title, rows in s["tables"].items():
            extras.append(f"<h3>{html.escape(s['name'])}: {html.escape(title)}</h3>{_table(rows)}")
        if s["figures"]:
            extras.append(f"<h3>{html.escape(s['name'])}: figures</h3>"
                          f"{_table([{'figure': k, 'value': v} for k, v in s['figures'].items()])}")
    faults = ", ".join(run["faults"]) or "none"
    return "\n".join([
        f"<!doctype html><html><head><meta charset='utf-8'><title>ferrymq lab: {html.escape(scen['name'])}"
        f"</title><style>{CSS}</style></head><body>",
        f"<h1>ferrymq lab: {html.escape(scen['name'])}</h1><p>{html.escape(scen['description'])}</p>",
        f"<h2>What happened</h2><div class='what' id='what-happened'>{what}</div>",
        "<h2>Series</h2>", _table(summary_rows(run)),
        f"<p>Faults: {html.escape(faults)}. Duration {run['duration']} s per series; seed {run['seed']}.</p>",
        "<h2>Over time</h2><div class='grid'>", *charts(run), "</div>",
        *(["<h2>Details</h2>", *extras] if extras else []),
        "<h2>Run</h2>", f"<pre>{html.escape(run.get('command') or '')}</pre>",
        f"<p>{html.escape(run['date'])}; machine {html.escape(json.dumps(run['machine']))}</p>",
        f"<pre>{html.escape(json.dumps(run['params'], indent=1))}</pre>",
        "</body></html>"])
