"""Lab scenario files (TOML). Built-ins live in ``ferrymq/lab/scenarios/`` and are found by name;
any other path is a user's own scenario. Everything is checked before anything runs, so a mistake
costs one line naming it, not a half-finished run.

    name = "task-queue"
    summary = "one line for `ferrymq lab --list`"
    description = "what it shows and why"
    driver = "task_queue"              # a module of ferrymq/lab/drivers/
    targets = ["ferrymq"]              # when the command line names none
    duration = 60                      # seconds, the full-size run
    short_duration = 8                 # the test suite's short form (--short)
    faults = ["kill:consumer@20s"]     # the fault grammar of ferrymq/lab/faults.py
    [params]                           # the driver's own parameters (its Params dataclass)
    workers = [1, 2, 4]
"""

from __future__ import annotations

import importlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ferrymq.bench.scenarios import locate
from ferrymq.lab import params as params_mod
from ferrymq.lab.faults import FaultSpec, parse_fault

BUILTIN_DIR = Path(__file__).parent / "scenarios"
KEYS = {"name", "summary", "description", "driver", "targets", "duration", "short_duration", "faults",
        "params"}


class ScenarioError(ValueError):
    """A scenario file or command line that cannot run: the message is the one line a user sees."""


@dataclass
class Scenario:
    name: str
    summary: str
    description: str
    driver: str
    targets: list[str]
    duration: float
    short_duration: float
    faults: list[FaultSpec]
    params: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def module(self) -> ModuleType:
        return driver_module(self.driver)

    def build_params(self, overrides: dict[str, Any] | None = None) -> Any:
        try:
            return params_mod.build(self.module().Params, {**self.params, **(overrides or {})})
        except (ValueError, TypeError) as exc:
            raise ScenarioError(f"{self.source or self.name}: {exc}") from None


def driver_module(name: str) -> ModuleType:
    if not name.isidentifier():
        raise ScenarioError(f"driver {name!r} is not a module name")
    try:
        return importlib.import_module(f"ferrymq.lab.drivers.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"ferrymq.lab.drivers.{name}":
            raise
        raise ScenarioError(f"no driver {name!r}: the drivers are {', '.join(driver_names())}") from None


def driver_names() -> list[str]:
    return sorted(p.stem for p in (Path(__file__).parent / "drivers").glob("*.py") if p.stem != "__init__")


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def _seconds(data: dict[str, Any], key: str, default: float, where: str) -> float:
    v = data.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
        raise ScenarioError(f"{where}: {key} must be a positive number of seconds, got {v!r}")
    return float(v)


def parse(text: str, source: str = "scenario") -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - KEYS)
    if unknown:
        known = ", ".join(sorted(KEYS))
        raise ScenarioError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {known}")
    if not isinstance(data.get("driver"), str):
        raise ScenarioError(f"{source}: `driver` is missing: one of {', '.join(driver_names())}")
    try:
        faults = [parse_fault(f) for f in data.get("faults", [])]
    except ValueError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    scen = Scenario(
        name=str(data.get("name") or Path(source).stem), summary=str(data.get("summary", "")),
        description=" ".join(str(data.get("description", "")).split()), driver=data["driver"],
        targets=[str(t) for t in data.get("targets", ["ferrymq"])],
        duration=_seconds(data, "duration", 60.0, source),
        short_duration=_seconds(data, "short_duration", 8.0, source), faults=faults,
        params=dict(data.get("params", {})), source=source)
    scen.build_params()  # fail now on an unknown driver or a bad parameter
    return scen


def load(name_or_path: str) -> Scenario:
    """A built-in by name, or a TOML file by path."""
    path = locate(name_or_path, BUILTIN_DIR)
    if not path.is_file():
        raise ScenarioError(f"no scenario {name_or_path!r}: the built-ins are {', '.join(builtin_names())}")
    return parse(path.read_text(), str(path) if path.parent != BUILTIN_DIR else path.stem)
