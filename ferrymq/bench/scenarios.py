"""Scenario files (TOML): a named, described workload, optionally with the targets to run it
against. Built-ins ship in ``ferrymq/bench/scenarios/`` and are found by name.

    name = "burst"
    description = "..."
    targets = ["ferrymq", "rabbitmq"]   # optional
    [workload]
    kind = "bursty"
    rate = 20000
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferrymq.bench.workloads import Workload

BUILTIN_DIR = Path(__file__).parent / "scenarios"


@dataclass
class Scenario:
    name: str
    description: str
    workload: dict[str, Any]
    targets: list[str] = field(default_factory=list)
    source: str = ""

    def build(self, overrides: dict[str, Any] | None = None) -> Workload:
        """The workload with command-line overrides applied (validated)."""
        return Workload.from_dict({**self.workload, **(overrides or {})})


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def parse(text: str, source: str = "") -> Scenario:
    data = tomllib.loads(text)
    unknown = set(data) - {"name", "description", "targets", "workload"}
    if unknown:
        raise ValueError(f"{source or 'scenario'}: unknown keys {', '.join(sorted(unknown))}")
    workload = dict(data.get("workload", {}))
    Workload.from_dict(workload)  # fail early on unknown or invalid parameters
    name = data.get("name") or Path(source).stem or "scenario"
    return Scenario(name, data.get("description", ""), workload, list(data.get("targets", [])), source)


def locate(name_or_path: str, builtin_dir: Path) -> Path:
    """A built-in scenario's file by name (no suffix, found in ``builtin_dir``), else the path as given."""
    path = Path(name_or_path)
    if not path.suffix and (builtin_dir / f"{name_or_path}.toml").exists():
        return builtin_dir / f"{name_or_path}.toml"
    return path


def load(name_or_path: str) -> Scenario:
    """A built-in by name, or a TOML file by path."""
    path = locate(name_or_path, BUILTIN_DIR)
    if not path.exists():
        raise FileNotFoundError(f"no scenario {name_or_path!r}: built-ins are {', '.join(builtin_names())}")
    return parse(path.read_text(), str(path))
