"""LAB.md from docs/lab/NN-name.md: one section per scenario (its full-size run, command, machine
load, screenshot of the report's main chart and what it shows), in the issue's order, with an index.

    python scripts/lab_md.py            # writes LAB.md at the repository's root
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = ROOT / "docs" / "lab"

HEADER = """# QueueLab, run at full size on this machine

Each section is one built-in scenario (`ferrymq lab --list`) run at full size with the command shown,
the machine's load at the time, a screenshot of the report's main chart, the report's own "what
happened" paragraph and what the run shows. Reproduce one with its command, or all of them with
`make lab` (bounded at 45 minutes; reports in `lab-results/`). The machine has 2 cores shared with other
work: compare variants within one run, not figures across runs. Sections are written from
`docs/lab/`; `python scripts/lab_md.py` rebuilds this file.
"""


def sections() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted(PARTS.glob("[0-9][0-9]-*.md")):
        text = path.read_text()
        heads = [line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")]
        title = heads[0] if heads else path.stem
        body = re.sub(r"\]\((img/[^)]+)\)", r"](docs/lab/\1)", text)
        out.append((path.stem, title, body.strip()))
    return out


def main() -> None:
    parts = sections()
    index = "\n".join(f"- [{title}](#{re.sub(r'[^a-z0-9 -]', '', title.lower()).replace(' ', '-')})"
                      for _, title, _ in parts)
    body = "\n\n".join(re.sub(r"^# ", "## ", b, count=1, flags=re.M) for _, _, b in parts)
    (ROOT / "LAB.md").write_text(f"{HEADER}\n{index}\n\n{body}\n")


if __name__ == "__main__":
    main()
