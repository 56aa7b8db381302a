"""The access part of a definitions file: user tags, permissions and topic permissions, exported
as RabbitMQ 3.10 writes them and imported from RabbitMQ's files (so its users keep their rights)."""

from __future__ import annotations

from typing import Any

from ferrymq.core.broker import Broker
from ferrymq.core.permissions import KINDS, invalid_pattern, parse_tags
from ferrymq.http.api.topic_permissions import topic_permissions
from ferrymq.http.responses import bad_request


def export_permissions(broker: Broker) -> list[dict[str, Any]]:
    return [{"user": u, "vhost": v, **{k: p.get(k, "") for k in KINDS}}
            for (v, u), p in sorted(broker.permissions.items())]


def export_topic_permissions(broker: Broker) -> list[dict[str, Any]]:
    return topic_permissions(broker)


def import_tags(broker: Broker, user: dict[str, Any]) -> None:
    if "tags" in user:
        broker.set_user_tags(str(user["name"]), parse_tags(user["tags"]))


def import_access(broker: Broker, body: dict[str, Any]) -> None:
    """Permissions and topic permissions of users and vhosts that exist (others are skipped, as
    RabbitMQ skips them with a warning)."""
    for p in body.get("permissions") or []:
        vhost, user = str(p.get("vhost", "/")), str(p.get("user", ""))
        if vhost in broker.vhosts and user in broker.users:
            broker.set_permission(vhost, user, {k: _pattern(p, k) for k in KINDS})
    for t in body.get("topic_permissions") or []:
        vhost, user = str(t.get("vhost", "/")), str(t.get("user", ""))
        if vhost in broker.vhosts and user in broker.users:
            broker.set_topic_permission(vhost, user, str(t.get("exchange", "")), _pattern(t, "write"),
                                        _pattern(t, "read"))


def _pattern(item: dict[str, Any], key: str) -> str:
    value = str(item.get(key, ""))
    if (invalid := invalid_pattern(value)) is not None:
        raise bad_request(invalid)
    return value
