"""BENCHMARKS.md sections are generated from saved runs: command, machine, date, table with ratios."""

from __future__ import annotations

import json

from ferrymq.bench.markdown import main, section

RUN = {
    "date": "2026-11-23T03:10:32+00:00",
    "command": "ferrymq bench --target ferrymq --target rabbitmq",
    "scenario": {"name": "confirm-100b", "description": "100 B confirmed"},
    "machine": {"nproc": 2, "cpu": "x", "python": "3.11.7", "platform": "Linux",
                "loadavg_before_first": [1.5, 1.0, 0.5]},
    "reports": [{"problems": []}, {"problems": ["lost 3"]}],
    "table": "| target | msgs/s | ratio |\n|---|---|---|\n| ferrymq | 100 | 1.00x |",
}


def test_section_carries_command_date_machine_load_table_and_problems():
    text = section(RUN)
    for expected in ("### confirm-100b (2026-11-23T03:10:32+00:00)", "```sh\nferrymq bench --target ferrymq",
                     "load average before the first target: 1.50, 1.00, 0.50", "| ferrymq | 100 | 1.00x |",
                     "lost 3"):
        assert expected in text


def test_main_reads_run_folders(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "report.json").write_text(json.dumps(RUN))
    assert main([str(tmp_path / "run")]) == 0
    assert "### confirm-100b" in capsys.readouterr().out
    assert main([]) == 2
