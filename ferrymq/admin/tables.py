"""Rich tables for the admin commands: one function per noun, reading the API's JSON as is."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

Columns = Sequence[tuple[str, str]]  # (heading, JSON field) pairs
WIDTH_OFF_TERMINAL = 200  # piped output: wide enough that names are never cut


def console() -> Console:
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=WIDTH_OFF_TERMINAL)
    return out


def cell(value: Any) -> str:
    """One table cell: "" for an absent field (RabbitMQ fills counters in a few seconds late)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":")) if value else ""
    return str(value)


def table(title: str, columns: Columns, rows: Iterable[dict[str, Any]]) -> Table:
    """``columns`` are (heading, JSON field) pairs."""
    out = Table(title=title, title_justify="left")
    for heading, _ in columns:
        out.add_column(heading, overflow="fold")
    for row in rows:
        out.add_row(*(cell(row.get(field)) for _, field in columns))
    return out


QUEUES = (("name", "name"), ("type", "type"), ("durable", "durable"), ("messages", "messages"),
          ("ready", "messages_ready"), ("unacked", "messages_unacknowledged"), ("consumers", "consumers"),
          ("state", "state"))
EXCHANGES = (("name", "name"), ("type", "type"), ("durable", "durable"), ("auto_delete", "auto_delete"),
             ("internal", "internal"), ("arguments", "arguments"))
BINDINGS = (("source", "source"), ("destination", "destination"), ("type", "destination_type"),
            ("routing_key", "routing_key"), ("arguments", "arguments"))
CONNECTIONS = (("name", "name"), ("user", "user"), ("vhost", "vhost"), ("protocol", "protocol"),
               ("channels", "channels"), ("state", "state"), ("client", "client"))
DLQ = (("vhost", "vhost"), ("name", "name"), ("messages", "messages"), ("sources", "sources"))
LISTENERS = (("protocol", "protocol"), ("ip_address", "ip_address"), ("port", "port"))


def exchange_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The default exchange's name is "": show it as RabbitMQ's UI does."""
    return [{**row, "name": row.get("name") or "(AMQP default)"} for row in rows]


def connection_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The client column: product and version from the client's properties."""
    out = []
    for row in rows:
        props = row.get("client_properties") or {}
        client = " ".join(str(props[k]) for k in ("product", "version") if props.get(k))
        out.append({**row, "client": client})
    return out


def dlq_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**row, "sources": ", ".join(row.get("sources") or [])} for row in rows]


def totals(title: str, values: dict[str, Any]) -> Table:
    """A two-column table of counters (object_totals, queue_totals)."""
    out = Table(title=title, title_justify="left", show_header=False)
    out.add_column("what")
    out.add_column("count", justify="right")
    for key, value in values.items():
        if not isinstance(value, dict):  # *_details rate objects are for the dashboard
            out.add_row(key, cell(value))
    return out
