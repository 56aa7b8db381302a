"""The HTML page of a run: inline SVG line charts (no scripts, no CDN: it must open on a machine
without network) and the side-by-side table. Charts: throughput, latency p50/p99 and queue
depth / consumer lag over time, the latency distribution (percentile spectrum), CPU over time."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from ferrymq.bench.report import check, compare

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 640, 260, 64, 150, 24, 40

Series = tuple[str, Sequence[float], Sequence[float | None], str, bool]  # label, xs, ys, color, dashed


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e3:
        return f"{v / 1e3:.3g}k"
    return f"{v:.3g}"


class _Frame:
    """The plot area of one chart: data ranges and the scaling of data to SVG coordinates."""

    def __init__(self, pts: list[tuple[float, float]], fx: Callable[[float], float], log_y: bool,
                 height: int = H) -> None:
        self.fx, self.log_y = fx, log_y
        x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
        ys = [p[1] for p in pts]
        if log_y:
            y0, y1 = math.log10(min(ys)), math.log10(max(ys))
            y0, y1 = math.floor(y0), math.ceil(y1) if math.ceil(y1) > math.floor(y0) else math.floor(y0) + 1
        else:
            y0, y1 = min(0.0, min(ys)), max(ys) * 1.08 or 1.0
        self.x0, self.x1, self.y0, self.y1 = x0, (x1 if x1 > x0 else x0 + 1), y0, y1
        self.pw, self.ph = W - PAD_L - PAD_R, height - PAD_T - PAD_B

    def sx(self, x: float) -> float:
        return PAD_L + (self.fx(x) - self.x0) / (self.x1 - self.x0) * self.pw

    def sy(self, y: float) -> float:
        v = math.log10(y) if self.log_y else y
        return PAD_T + self.ph - (v - self.y0) / (self.y1 - self.y0) * self.ph


def _y_axis(f: _Frame) -> list[str]:
    y0, y1 = f.y0, f.y1
    ticks = ([(10.0 ** e, _fmt(10.0 ** e)) for e in range(int(y0), int(y1) + 1)] if f.log_y
             else [(y0 + (y1 - y0) * i / 4, _fmt(y0 + (y1 - y0) * i / 4)) for i in range(5)])
    out = []
    for v, label in ticks:
        y = f.sy(v)
        out.append(f'<line x1="{PAD_L}" x2="{PAD_L + f.pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    return out


def _x_axis(f: _Frame, x_ticks: list[tuple[float, str]] | None, lowest_x: float) -> list[str]:
    """Ticks at given (unmapped) values, or six evenly over the mapped range."""
    mapped = x_ticks is not None
    if x_ticks is None:
        x_ticks = [(x, _fmt(x)) for x in (lowest_x + (f.x1 - f.x0) * i / 5 for i in range(6))]
    out = []
    for x, label in x_ticks:
        px = f.sx(x) if mapped else PAD_L + (x - f.x0) / (f.x1 - f.x0) * f.pw
        if PAD_L - 1 <= px <= PAD_L + f.pw + 1:
            out.append(f'<text x="{px:.1f}" y="{PAD_T + f.ph + 14}" text-anchor="middle">{label}</text>')
    return out


def _lines(f: _Frame, series: list[Series]) -> list[str]:
    """One polyline per series, and its legend entry."""
    out = []
    for i, (label, xs, ys_, color, dashed) in enumerate(series):
        path = " ".join(f"{f.sx(x):.1f},{f.sy(y):.1f}" for x, y in zip(xs, ys_)
                        if y is not None and (y > 0 or not f.log_y))
        dash = ' stroke-dasharray="5,3"' if dashed else ""
        if path:
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.6"{dash} points="{path}"/>')
        ly = PAD_T + 12 + i * 15
        out.append(f'<line x1="{W - PAD_R + 8}" x2="{W - PAD_R + 26}" y1="{ly - 4}" y2="{ly - 4}" '
                   f'stroke="{color}" stroke-width="2"{dash}/><text x="{W - PAD_R + 30}" y="{ly}">'
                   f'{html.escape(label)}</text>')
    return out


def _markers(f: _Frame, markers: Sequence[tuple[float, str, str]]) -> list[str]:
    """A dashed line per marker; each distinct label is written once (series share fault plans)."""
    out, labelled = [], []
    for x, label, color in markers:
        px = f.sx(x)
        if not PAD_L <= px <= PAD_L + f.pw:
            continue
        out.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{PAD_T}" y2="{PAD_T + f.ph}" stroke="{color}" '
                   f'stroke-dasharray="2,2"/>')
        if label not in labelled:
            y = PAD_T + 10 + (len(labelled) % 6) * 11
            labelled.append(label)
            out.append(f'<text x="{px + 2:.1f}" y="{y}" fill="{color}">{html.escape(label)}</text>')
    return out


def line_chart(title: str, series: list[Series], x_label: str, y_label: str, *, log_y: bool = False,
               x_map: Callable[[float], float] | None = None,
               x_ticks: list[tuple[float, str]] | None = None,
               markers: Sequence[tuple[float, str, str]] = (), legend_px: int = PAD_R) -> str:
    """One SVG chart; ``x_map`` transforms x before scaling (e.g. the percentile axis); ``markers``
    are (x, label, color) vertical lines, such as the faults on a lab report's timeline. A wider
    ``legend_px`` leaves room for long labels; the chart grows taller to fit a long legend."""
    fx = x_map or (lambda x: x)
    pts = [(fx(x), y) for _, xs, ys, _, _ in series for x, y in zip(xs, ys) if y is not None]
    if log_y:
        pts = [(x, y) for x, y in pts if y > 0]
    if not pts:
        return f'<figure><figcaption>{html.escape(title)}: no data</figcaption></figure>'
    height = max(H, PAD_T + 24 + 15 * len(series))
    f = _Frame(pts, fx, log_y, height)
    pw, ph = f.pw, f.ph
    width = W - PAD_R + legend_px
    out = [f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<text x="{PAD_L}" y="14" font-weight="bold">{html.escape(title)}</text>',
           f'<rect x="{PAD_L}" y="{PAD_T}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    out += _y_axis(f)
    out += _x_axis(f, x_ticks, min(p[0] for p in pts))
    out.append(f'<text x="{PAD_L + pw / 2}" y="{height - 6}" text-anchor="middle">'
               f'{html.escape(x_label)}</text>'
               f'<text x="12" y="{PAD_T + ph / 2}" transform="rotate(-90 12 {PAD_T + ph / 2})" '
               f'text-anchor="middle">{html.escape(y_label)}</text>')
    out += _lines(f, series)
    out += _markers(f, markers)
    out.append("</svg></figure>")
    return "".join(out)


def _pct_x(q: float) -> float:
    return math.log10(1.0 / max(1e-6, 1.0 - min(q, 99.9999) / 100.0))


def charts(reports: list[dict[str, Any]]) -> list[str]:
    def color(i: int) -> str:
        return COLORS[i % len(COLORS)]

    thr, lat, dist, depth, cpu = [], [], [], [], []
    for i, r in enumerate(reports):
        name, tl, sm = r["target"]["name"], r["timeline"], r["samples"]
        if tl.get("t"):
            thr.append((f"{name} published", tl["t"], tl["published_per_s"], color(i), True))
            thr.append((f"{name} consumed", tl["t"], tl["consumed_per_s"], color(i), False))
            lat.append((f"{name} p50", tl["t"], tl["latency_p50_ms"], color(i), True))
            lat.append((f"{name} p99", tl["t"], tl["latency_p99_ms"], color(i), False))
        spec = r.get("latency_spectrum_ms") or []
        if spec:
            dist.append((name, [q for q, _ in spec], [v for _, v in spec], color(i), False))
        if sm.get("t"):
            if any(d is not None for d in sm["depth"]):
                depth.append((f"{name} depth", sm["t"], sm["depth"], color(i), False))
            depth.append((f"{name} lag", sm["t"], sm["lag"], color(i), True))
            if "broker" in sm["cpu"]:
                cpu.append((f"{name} broker", sm["t"], sm["cpu"]["broker"], color(i), False))
            gen = [sum(v[j] for k, v in sm["cpu"].items() if k.startswith(("producer", "consumer")))
                   for j in range(len(sm["t"]))]
            cpu.append((f"{name} generator", sm["t"], gen, color(i), True))
    pct_ticks = [(q, label) for q, label in ((0, "0"), (90, "90"), (99, "99"), (99.9, "99.9"),
                                             (99.99, "99.99"), (99.999, "99.999"))]
    return [
        line_chart("Throughput over time", thr, "seconds from the measured window's start", "msgs/s"),
        line_chart("Latency over time (by intended send time)", lat, "seconds", "ms", log_y=True),
        line_chart("Latency distribution", dist, "percentile", "ms", log_y=True, x_map=_pct_x,
                   x_ticks=pct_ticks),
        line_chart("Queue depth (ready) and consumer lag", depth, "seconds", "messages"),
        line_chart("CPU", cpu, "seconds", "cores"),
    ]


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            text = "-" if v is None else (f"{v:,.3f}".rstrip("0").rstrip(".") if isinstance(v, float)
                                          else f"{v:,}" if isinstance(v, int) else str(v))
            cells.append(f"<td>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render(run: dict[str, Any]) -> str:
    """The whole page for a run report (``api.bench``'s result)."""
    reports = run["reports"]
    rows = compare(reports)
    totals = [{"target": r["target"]["name"], **r["totals"], "check": "; ".join(check(r)) or "ok"}
              for r in reports]
    scen = run.get("scenario", {})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ferrymq bench: "
        f"{html.escape(scen.get('name', ''))}</title><style>"
        "body{font-family:sans-serif;margin:24px;max-width:1000px}"
        "table{border-collapse:collapse;margin:8px 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right} th{background:#f4f4f4}"
        "figure{margin:12px 0} pre{background:#f6f6f6;padding:8px;overflow-x:auto}</style></head><body>",
        f"<h1>ferrymq bench: {html.escape(scen.get('name', 'run'))}</h1>",
        f"<p>{html.escape(scen.get('description', ''))}</p>",
        f"<p>Date {html.escape(run.get('date', ''))}; machine "
        f"{html.escape(json.dumps(run.get('machine', {})))}</p>",
        f"<pre>{html.escape(run.get('command', ''))}</pre>",
        "<h2>Side by side</h2>",
        _table(rows, ["target", "msgs_per_s", "ratio", "published_per_s", "p50_ms", "p90_ms", "p99_ms",
                      "p999_ms", "max_ms", "broker_cores", "generator_cores", "others_cores", "lost"]),
        "<h2>Accounting</h2>",
        _table(totals, ["target", "published", "confirmed", "nacked", "expected", "consumed", "completed",
                        "retried", "dead_lettered", "dlq_depth", "left", "lost", "check"]),
        "<h2>Charts</h2>", *charts(reports),
        "<h2>Workload</h2>", f"<pre>{html.escape(json.dumps(reports[0]['workload'], indent=1))}</pre>"
        if reports else "",
        "</body></html>",
    ]
    return "\n".join(parts)
