"""The ``load_definitions`` setting, as RabbitMQ's: a definitions JSON file, or a directory whose
``*.json`` files are imported in name order, at every boot, after recovery and before any listener
accepts a connection (so a client never sees the broker without its configured topology).

Files are read and parsed before any store opens; a file that cannot be read or parsed, or that the
import refuses, is a DefinitionsFileError: one line naming the file, and ``ferrymq serve`` exits 2.
What an import drops (ferrymq.core.definitions.Report) is logged, one warning per item.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from ferrymq.core.broker import Broker
from ferrymq.core.definitions import DefinitionsError, import_definitions

log = logging.getLogger("ferrymq.definitions")


class DefinitionsFileError(ValueError):
    """load_definitions names something that cannot be imported; the text names the file."""


def read_definitions(setting: str) -> list[tuple[Path, Any]]:
    """The parsed files the setting names ([] when it is empty)."""
    if not setting:
        return []
    path = Path(setting)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".json" and p.is_file())
    elif path.exists():
        files = [path]
    else:
        raise DefinitionsFileError(f"load_definitions: {path} does not exist")
    out = []
    for file in files:
        try:
            out.append((file, json.loads(file.read_text(encoding="utf-8"))))
        except (OSError, UnicodeDecodeError) as exc:
            raise DefinitionsFileError(f"load_definitions: cannot read {file}: {exc}") from None
        except ValueError as exc:
            raise DefinitionsFileError(f"load_definitions: {file} is not valid JSON: {exc}") from None
    return out


def load_definitions(broker: Broker, files: list[tuple[Path, Any]]) -> None:
    """Import each parsed file into the broker, in order."""
    for file, body in files:
        try:
            report = import_definitions(broker, body)
        except DefinitionsError as exc:
            raise DefinitionsFileError(f"load_definitions: {file}: {exc}") from None
        for line in report.lines():
            log.warning("%s: %s", file, line)
        log.info("imported definitions from %s (%d item(s) dropped)", file, len(report.dropped))
