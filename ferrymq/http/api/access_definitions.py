"""The access part of a definitions export: permissions and topic permissions as RabbitMQ 3.10
writes them (the import is ferrymq.core.definitions, one path for HTTP, the CLI and boot)."""

from __future__ import annotations

from typing import Any

from ferrymq.core.broker import Broker
from ferrymq.core.permissions import KINDS
from ferrymq.http.api.topic_permissions import topic_permissions


def export_permissions(broker: Broker) -> list[dict[str, Any]]:
    return [{"user": u, "vhost": v, **{k: p.get(k, "") for k in KINDS}}
            for (v, u), p in sorted(broker.permissions.items())]


def export_topic_permissions(broker: Broker) -> list[dict[str, Any]]:
    return topic_permissions(broker)
