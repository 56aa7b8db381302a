"""Pass/fail/skip counts of one JUnit XML file, by test module, and the ids of what failed."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter


def main(name: str, path: str) -> None:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        print(f"{name}: no results ({exc})")
        return
    by_module: dict[str, Counter[str]] = {}
    failed = []
    for case in root.iter("testcase"):
        module = case.get("classname", "").rsplit(".", 1)[0] if "." in case.get("classname", "") else "?"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
                why = child.get("message", "")[:140]
                failed.append(f"{case.get('classname')}::{case.get('name')}: {why}")
            elif child.tag == "skipped":
                outcome = "skipped"
        by_module.setdefault(module, Counter())[outcome] += 1
    total: Counter[str] = sum(by_module.values(), Counter())
    print(f"{name}: {total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    for module, c in sorted(by_module.items()):
        print(f"  {module}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped")
    for line in failed:
        print(f"  FAILED {line}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
