"""Importing a definitions file in RabbitMQ 3.10's JSON format into a broker, with a report of what
was dropped: the one import path for POST /api/definitions, ``ferrymq definitions import`` and the
``load_definitions`` setting (imported at boot).

Why a report: a RabbitMQ file may hold things FerryMQ cannot act on (plugin parameters, user and
vhost limits). RabbitMQ would refuse a component it lacks; FerryMQ imports the rest and says, item
by item, what it left out and why, so a round trip RabbitMQ -> FerryMQ -> RabbitMQ loses nothing
silently. What FerryMQ keeps without acting on it (user tags, vhost metadata, topic permissions,
global parameters, inert policy keys) is kept as data (ferrymq.core.parameters) and exported again.

A file of the wrong shape, or an object the broker refuses (an unknown exchange type, a bad policy),
is a DefinitionsError with one clear line; objects imported before it stay, as with RabbitMQ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ferrymq.core.broker import Broker
from ferrymq.core.parameters import GLOBAL, OPERATOR_POLICY, TOPIC_PERMISSION, USER_TAGS, VHOST_METADATA
from ferrymq.core.passwords import ALGORITHMS, DEFAULT_ALGORITHM
from ferrymq.core.policy import PolicyError, make_policy
from ferrymq.core.vhost import VHost
from ferrymq.errors import FerryMQError

SECTIONS = ("users", "vhosts", "permissions", "topic_permissions", "parameters", "global_parameters",
            "policies", "queues", "exchanges", "bindings")
PERMISSION_KEYS = ("configure", "write", "read")
# Parameter components FerryMQ does not act on, and why (anything else: an unknown component).
DROPPED_COMPONENTS = {
    "vhost-limits": "vhost limits are not enforced by this FerryMQ",
    "shovel": "FerryMQ has no shovel plugin",
    "federation-upstream": "FerryMQ has no federation plugin",
    "federation-upstream-set": "FerryMQ has no federation plugin",
}
VHOST_METADATA_KEYS = ("description", "tags", "default_queue_type")


class DefinitionsError(ValueError):
    """A definitions file FerryMQ cannot import: one line saying which object and why."""


@dataclass
class Report:
    """What an import left out: one entry per item (or per field of an item that was kept)."""

    dropped: list[dict[str, Any]] = field(default_factory=list)

    def drop(self, section: str, name: str, reason: str, *, vhost: str | None = None,
             field_name: str | None = None) -> None:
        entry: dict[str, Any] = {"section": section, "name": name}
        if vhost is not None:
            entry["vhost"] = vhost
        if field_name is not None:
            entry["field"] = field_name
        entry["reason"] = reason
        self.dropped.append(entry)

    def lines(self) -> list[str]:
        """One line per dropped item, for a log or a terminal."""
        out = []
        for d in self.dropped:
            where = f" in vhost {d['vhost']!r}" if "vhost" in d else ""
            what = f"{d['field']} of " if "field" in d else ""
            out.append(f"dropped {what}{d['section']} {d['name']!r}{where}: {d['reason']}")
        return out


def _list(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = body.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise DefinitionsError(f"'{key}' must be a list of objects")
    return items


def _name(item: dict[str, Any], what: str, key: str = "name") -> str:
    value = item.get(key)
    if not isinstance(value, str) or (not value and key == "name"):
        raise DefinitionsError(f"{what} needs a '{key}' string, got {json.dumps(value)}")
    return value


def import_definitions(broker: Broker, body: Any, only: str | None = None) -> Report:
    """Import ``body`` (the whole broker's definitions, or one vhost's when ``only`` names it)."""
    if not isinstance(body, dict):
        raise DefinitionsError("definitions must be a JSON object")
    report = Report()
    if only is None:
        _users(broker, _list(body, "users"), report)
        _vhosts(broker, _list(body, "vhosts"), report)
        _permissions(broker, _list(body, "permissions"))
        _topic_permissions(broker, _list(body, "topic_permissions"))
        _global_parameters(broker, _list(body, "global_parameters"))
    elif only not in broker.vhosts:
        raise DefinitionsError(f"no vhost {only!r}")
    try:
        _objects(broker, body, only, report)
    except DefinitionsError:
        raise
    except FerryMQError as exc:
        raise DefinitionsError(str(exc)) from None
    except (TypeError, ValueError, AttributeError) as exc:  # a field of the wrong shape
        raise DefinitionsError(f"invalid definitions: {exc}") from None
    return report


# --- users, vhosts, permissions ----------------------------------------------------------------

def _tags(value: Any) -> list[str]:
    """RabbitMQ writes tags as a list (3.9+) or a comma-separated string (older files)."""
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return list(value)
    raise DefinitionsError(f"user tags must be a list or a comma-separated string, got {json.dumps(value)}")


def _users(broker: Broker, users: list[dict[str, Any]], report: Report) -> None:
    for user in users:
        name = _name(user, "a user")
        if isinstance(user.get("password"), str):
            broker.put_user(name, user["password"])  # stored as a salted hash
        else:
            algorithm = user.get("hashing_algorithm", DEFAULT_ALGORITHM)
            if algorithm not in ALGORITHMS:
                raise DefinitionsError(f"user {name!r}: unsupported hashing algorithm {algorithm!r}")
            broker.put_user(name, password_hash=str(user.get("password_hash", "")), algorithm=algorithm)
        broker.parameters.set(USER_TAGS, "", name, _tags(user.get("tags", [])))
        if user.get("limits"):
            report.drop("users", name, "user limits are not enforced by this FerryMQ", field_name="limits")


def _vhosts(broker: Broker, vhosts: list[dict[str, Any]], report: Report) -> None:
    for v in vhosts:
        name = _name(v, "a vhost")
        broker.create_vhost(name)
        given: dict[str, Any] = v["metadata"] if isinstance(v.get("metadata"), dict) else v
        metadata = {k: given[k] for k in VHOST_METADATA_KEYS if given.get(k) not in (None, "", [])}
        if metadata:
            broker.parameters.set(VHOST_METADATA, name, "", metadata)
        if v.get("limits"):
            report.drop("vhosts", name, "vhost limits are not enforced by this FerryMQ", field_name="limits")


def _known(broker: Broker, item: dict[str, Any], what: str) -> tuple[str, str]:
    user, vhost = _name(item, what, "user"), _name(item, what, "vhost")
    if user not in broker.users:
        raise DefinitionsError(f"{what} for unknown user {user!r}")
    if vhost not in broker.vhosts:
        raise DefinitionsError(f"{what} for unknown vhost {vhost!r}")
    return user, vhost


def _permissions(broker: Broker, items: list[dict[str, Any]]) -> None:
    for p in items:
        user, vhost = _known(broker, p, "a permission")
        broker.set_permission(vhost, user, {k: str(p.get(k, "")) for k in PERMISSION_KEYS})


def _topic_permissions(broker: Broker, items: list[dict[str, Any]]) -> None:
    for p in items:
        user, vhost = _known(broker, p, "a topic permission")
        exchange = _name(p, "a topic permission", "exchange")
        broker.parameters.set(TOPIC_PERMISSION, vhost, f"{user}\x00{exchange}",
                              {"write": str(p.get("write", "")), "read": str(p.get("read", ""))})


def _global_parameters(broker: Broker, items: list[dict[str, Any]]) -> None:
    for p in items:
        broker.parameters.set(GLOBAL, "", _name(p, "a global parameter"), p.get("value"))


# --- vhost objects -----------------------------------------------------------------------------

def _objects(broker: Broker, body: dict[str, Any], only: str | None, report: Report) -> None:
    """Parameters, policies, exchanges, queues, bindings, in that order (bindings need both ends)."""
    def vhost_of(item: dict[str, Any]) -> VHost:
        name = only if only is not None else item.get("vhost", "/")
        return broker.add_vhost(str(name))

    for p in _list(body, "parameters"):
        _parameter(vhost_of(p), p, report)
    for p in _list(body, "policies"):
        vhost = vhost_of(p)
        vhost.set_policy(_policy(vhost, p, operator=False))
    for e in _list(body, "exchanges"):
        if str(e.get("name", "")).startswith("amq.") or not e.get("name"):
            continue  # RabbitMQ's built-ins exist everywhere already
        vhost_of(e).declare_exchange(
            str(e["name"]), str(e.get("type", "direct")), durable=bool(e.get("durable", True)),
            auto_delete=bool(e.get("auto_delete", False)), internal=bool(e.get("internal", False)),
            arguments=dict(e.get("arguments") or {}))
    for q in _list(body, "queues"):
        vhost_of(q).declare_queue(
            _name(q, "a queue"), connection=None, durable=bool(q.get("durable", True)),
            auto_delete=bool(q.get("auto_delete", False)), arguments=dict(q.get("arguments") or {}))
    for b in _list(body, "bindings"):
        vhost_of(b).bind(str(b.get("destination", "")), str(b.get("source", "")),
                         str(b.get("routing_key", "")), dict(b.get("arguments") or {}),
                         to_exchange=b.get("destination_type") == "exchange", connection=None)


def _policy(vhost: VHost, body: dict[str, Any], operator: bool) -> Any:
    name = _name(body, "an operator policy" if operator else "a policy")
    try:
        return make_policy(vhost.name, name, body, operator=operator)
    except PolicyError as exc:
        kind = "operator policy" if operator else "policy"
        raise DefinitionsError(f"{kind} {name!r} in vhost {vhost.name!r}: {exc}".strip()) from None


def _parameter(vhost: VHost, p: dict[str, Any], report: Report) -> None:
    component, name = _name(p, "a parameter", "component"), _name(p, "a parameter")
    if component == OPERATOR_POLICY:
        value = p.get("value")
        if not isinstance(value, dict):
            raise DefinitionsError(f"operator policy {name!r}: its value must be an object")
        vhost.set_operator_policy(_policy(vhost, {"name": name, **value}, operator=True))
        return
    reason = DROPPED_COMPONENTS.get(component, f"FerryMQ does not know the component {component!r}")
    report.drop("parameters", f"{component}/{name}", reason, vhost=vhost.name)
