"""What a worker tells the broker about itself: one table in its connection's client properties.

A worker's AMQP connection carries, under ``ferrymq.jobs``, its id, host and pid, the queues it
consumes, its concurrency, whether it runs a scheduler, and the app's cron schedules. The broker
then knows every live worker without a store or an extra message: the connection is the worker's
presence (it ends when the worker does), and the broker's own record of what it last heard on it
is the worker's heartbeat. The dashboard's Jobs page reads it; RabbitMQ shows the same table in
its management UI and ignores it otherwise.

The table goes in connection.start-ok, which RabbitMQ reads before frame sizes are negotiated
(at its 4 KiB minimum), so it is kept under ``ANNOUNCE_BYTES_MAX``: schedules past that are
left out and counted in ``schedules_total``.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ferrymq.jobs.app import App

KEY = "ferrymq.jobs"  # the client-properties entry
FORMAT = 1
ANNOUNCE_BYTES_MAX = 2_048  # of the table, measured as JSON (its AMQP encoding is about as long)


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    cron: str
    tz: str
    job: str
    missed: str


@dataclass(frozen=True, slots=True)
class Presence:
    worker_id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    scheduler: bool
    schedules: tuple[Schedule, ...]
    schedules_total: int


def announcement(app: App, worker_id: str, queues: list[str], concurrency: int,
                 scheduler: bool) -> dict[str, Any]:
    """The table a worker connects with."""
    schedules = [{"name": s.name, "cron": s.cron, "tz": s.tz, "job": getattr(s.job, "name", ""),
                  "missed": s.missed} for s in app.schedules]
    doc: dict[str, Any] = {"v": FORMAT, "worker_id": worker_id, "host": socket.gethostname(),
                           "pid": os.getpid(), "queues": list(queues), "concurrency": concurrency,
                           "scheduler": scheduler, "schedules": [], "schedules_total": len(schedules)}
    for entry in schedules:
        doc["schedules"].append(entry)
        if len(json.dumps(doc)) > ANNOUNCE_BYTES_MAX:
            doc["schedules"].pop()
            break
    return doc


def parse(client_properties: dict[str, Any]) -> Presence | None:
    """A worker's presence from its connection's client properties; None for any other client
    (or a table this version cannot read)."""
    doc = client_properties.get(KEY)
    if not isinstance(doc, dict):
        return None
    try:
        schedules = tuple(Schedule(_text(s["name"]), _text(s["cron"]), _text(s["tz"]), _text(s["job"]),
                                   _text(s["missed"])) for s in doc.get("schedules") or ())
        return Presence(_text(doc["worker_id"]), _text(doc["host"]), int(doc["pid"]),
                        tuple(_text(q) for q in doc.get("queues") or ()), int(doc["concurrency"]),
                        bool(doc["scheduler"]), schedules, int(doc.get("schedules_total", len(schedules))))
    except (KeyError, TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    """Table strings arrive as bytes (long strings) or str, depending on the decoder."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value
