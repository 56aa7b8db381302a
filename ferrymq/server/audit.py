"""The audit log: every admin action (who, what, when, from where, with what result) as one JSON line
appended to ``<data_dir>/audit.log`` (the ``audit_log`` setting; "" keeps none).

Why one ``os.write`` on an O_APPEND descriptor per action: the line lands whole even beside another
writer, and the event loop pays one small syscall, never an fsync or a buffered flush it cannot see.
The time comes from the broker's clock, so a test with a ManualClock reads the time it set.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ferrymq.config import Settings
from ferrymq.core.clock import Clock

log = logging.getLogger("ferrymq.audit")


class AuditLog:
    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = path
        self.clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.failed = False  # a write failed once: logged once, the broker goes on

    @classmethod
    def open(cls, settings: Settings, clock: Clock) -> AuditLog | None:
        """The configured log, or None when off ("" or no data directory for a relative path)."""
        if not settings.audit_log:
            return None
        path = Path(settings.audit_log)
        if not path.is_absolute():
            if not settings.data_dir:
                return None
            path = Path(settings.data_dir) / path
        try:
            return cls(path, clock)
        except OSError as exc:
            log.error("audit log %s cannot be opened (%s): admin actions are not recorded", path, exc)
            return None

    def record(self, entry: dict[str, Any]) -> None:
        if self._fd is None:
            return
        stamp = datetime.fromtimestamp(self.clock.now_ms() / 1000, UTC).isoformat(timespec="milliseconds")
        line = json.dumps({"time": stamp, **entry}, separators=(",", ":"), ensure_ascii=False) + "\n"
        try:
            os.write(self._fd, line.encode())
        except OSError as exc:
            if not self.failed:
                log.error("audit log %s: write failed (%s)", self.path, exc)
            self.failed = True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
