"""A picture of a lab report's charts for LAB.md: the saved JSON rendered with the report's own
chart code (so the picture is the report's), without the text sections, and photographed by
headless Chromium.

    python scripts/lab_screenshot.py lab-results/task-queue-20261203-115024.json docs/lab/img/task-queue.png
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from ferrymq.lab.report import CSS, charts

CHROMIUM = "chromium"


def page(run: dict) -> str:
    title = html.escape(run["scenario"]["name"])
    return (f"<!doctype html><html><head><meta charset='utf-8'><style>{CSS}</style></head><body>"
            f"<h1>ferrymq lab: {title}</h1><div class='grid'>{''.join(charts(run))}</div></body></html>")


def main(src: str, dst: str, height: int = 1400) -> None:
    run = json.loads(Path(src).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "charts.html"
        path.write_text(page(run))
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size=1100,{height}", f"--screenshot={Path(dst).resolve()}",
                        path.as_uri()], check=True, capture_output=True, timeout=120)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
