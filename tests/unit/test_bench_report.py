"""Report accounting checks and the HTML page (inline SVG, no external resources)."""

from __future__ import annotations

import copy

from ferrymq.bench.html_report import render
from ferrymq.bench.report import check, compare, markdown_table


def fake_report(name: str, rate: float, lost: int = 0) -> dict:
    t = [0.0, 0.5, 1.0]
    return {
        "target": {"name": name},
        "workload": {"kind": "max"},
        "published_per_s": rate, "consumed_per_s": rate, "confirmed_per_s": rate,
        "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 3.0, "p999": 4.0, "max": 5.0, "samples": 10},
        "latency_spectrum_ms": [[0.0, 0.5], [50.0, 1.0], [99.0, 3.0], [100.0, 5.0]],
        "cpu": {"producers": [0.1], "consumers": [0.2], "broker": 0.9, "machine": 1.3, "others": 0.1},
        "totals": {"published": 100, "confirmed": 100, "nacked": 0, "expected": 100, "consumed": 100,
                   "completed": 100 - lost, "retried": 0, "dead_lettered": 0, "dlq_depth": None,
                   "left": 0, "lost": lost},
        "timeline": {"t": t, "published_per_s": [rate] * 3, "consumed_per_s": [rate] * 3,
                     "latency_p50_ms": [1.0, 1.1, None], "latency_p99_ms": [3.0, 2.0, None]},
        "samples": {"t": t, "depth": [0, 5, 0], "lag": [1, 2, 0],
                    "cpu": {"broker": [0.9] * 3, "producer-0": [0.1] * 3, "consumer-0": [0.2] * 3}},
        "producers": [{"unconfirmed": 0}], "consumers": [{}], "errors": [],
    }


def test_check_finds_loss_and_bad_sums():
    ok = fake_report("a", 1000.0)
    assert check(ok) == []
    lost = fake_report("a", 1000.0, lost=3)
    assert any("lost" in p for p in check(lost))
    bad = copy.deepcopy(ok)
    bad["totals"]["confirmed"] = 90
    assert any("unconfirmed" in p for p in check(bad))


def test_side_by_side_ratio_and_page():
    reports = [fake_report("ferrymq", 2000.0), fake_report("rabbitmq", 1000.0)]
    rows = compare(reports)
    assert [r["ratio"] for r in rows] == [1.0, 0.5]
    assert "| rabbitmq | 1,000 | 0.50x |" in markdown_table(rows)
    page = render({"reports": reports, "scenario": {"name": "demo", "description": "d"}, "date": "now",
                   "command": "ferrymq bench --target ferrymq --target rabbitmq", "machine": {}})
    assert page.count("<svg") == 5 and "polyline" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing to fetch
    assert "rabbitmq" in page and "ferrymq bench --target" in page
