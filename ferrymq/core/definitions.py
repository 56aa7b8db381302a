"""Importing a definitions file in RabbitMQ 3.10's JSON format into a broker, with a report of what
was dropped: the one import path for POST /api/definitions, ``ferrymq definitions import`` and the
``load_definitions`` setting (imported at boot).

Why a report: a RabbitMQ file may hold things FerryMQ cannot act on (plugin parameters such as
shovels and federation upstreams). RabbitMQ would refuse a component it lacks; FerryMQ imports the
rest and says, item by item, what it left out and why, so a round trip RabbitMQ -> FerryMQ ->
RabbitMQ loses nothing silently. User tags, permissions and topic permissions go to the access
model (ferrymq.core.permissions), user and vhost limits to ferrymq.core.vhost_limits, operator
policies to the vhosts: all enforced. What FerryMQ keeps without acting on it (vhost metadata,
global parameters, inert policy keys) is kept as data (ferrymq.core.parameters) and exported again.

A file of the wrong shape, or an object the broker refuses (an unknown exchange type, a bad policy),
is a DefinitionsError with one clear line; objects imported before it stay, as with RabbitMQ.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

from ferrymq.core.broker import Broker
from ferrymq.core.parameters import GLOBAL, OPERATOR_POLICY, VHOST_METADATA
from ferrymq.core.passwords import ALGORITHMS, DEFAULT_ALGORITHM
from ferrymq.core.permissions import invalid_pattern, parse_tags
from ferrymq.core.policy import PolicyError, make_policy
from ferrymq.core.vhost import VHost
from ferrymq.core.vhost_limits import LimitError, validate
from ferrymq.errors import FerryMQError

SECTIONS = ("users", "vhosts", "permissions", "topic_permissions", "parameters", "global_parameters",
            "policies", "queues", "exchanges", "bindings")
PERMISSION_KEYS = ("configure", "write", "read")
# Parameter components FerryMQ does not act on, and why (anything else: an unknown component).
DROPPED_COMPONENTS = {
    "shovel": "FerryMQ has no shovel plugin",
    "federation-upstream": "FerryMQ has no federation plugin",
    "federation-upstream-set": "FerryMQ has no federation plugin",
}
VHOST_LIMITS = "vhost-limits"  # RabbitMQ 3.10 keeps a vhost's limits as this parameter, name "limits"
VHOST_METADATA_KEYS = ("description", "tags", "default_queue_type")


class DefinitionsError(ValueError):
    """A definitions file FerryMQ cannot import: one line saying which object and why."""


@dataclass
class Report:
    """What an import left out: one entry per item."""

    dropped: list[dict[str, Any]] = field(default_factory=list)

    def drop(self, section: str, name: str, reason: str, *, vhost: str | None = None) -> None:
        entry: dict[str, Any] = {"section": section, "name": name}
        if vhost is not None:
            entry["vhost"] = vhost
        entry["reason"] = reason
        self.dropped.append(entry)

    def lines(self) -> list[str]:
        """One line per dropped item, for a log or a terminal."""
        out = []
        for d in self.dropped:
            where = f" in vhost {d['vhost']!r}" if "vhost" in d else ""
            out.append(f"dropped {d['section']} {d['name']!r}{where}: {d['reason']}")
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
        _vhosts(broker, _list(body, "vhosts"))
        _permissions(broker, _list(body, "permissions"), report)
        _topic_permissions(broker, _list(body, "topic_permissions"), report)
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

def _users(broker: Broker, users: list[dict[str, Any]], report: Report) -> None:
    for user in users:
        name = _name(user, "a user")
        tags = _tags(user["tags"]) if "tags" in user else None
        if isinstance(user.get("password"), str):
            broker.put_user(name, user["password"], tags=tags)  # stored as a salted hash
        else:
            algorithm = user.get("hashing_algorithm", DEFAULT_ALGORITHM)
            if algorithm not in ALGORITHMS:
                raise DefinitionsError(f"user {name!r}: unsupported hashing algorithm {algorithm!r}")
            broker.put_user(name, password_hash=str(user.get("password_hash", "")), algorithm=algorithm,
                            tags=tags)
        if isinstance(user.get("limits"), dict):
            _set_limits(broker, "user", name, user["limits"])


def _vhosts(broker: Broker, vhosts: list[dict[str, Any]]) -> None:
    for v in vhosts:
        name = _name(v, "a vhost")
        broker.create_vhost(name)
        given: dict[str, Any] = v["metadata"] if isinstance(v.get("metadata"), dict) else v
        metadata = {k: given[k] for k in VHOST_METADATA_KEYS if given.get(k) not in (None, "", [])}
        if metadata:
            broker.parameters.set(VHOST_METADATA, name, "", metadata)
        if isinstance(v.get("limits"), dict):  # RabbitMQ 3.11's place for them (3.10: a parameter)
            _set_limits(broker, "vhost", name, v["limits"])


def _tags(value: Any) -> list[str]:
    """RabbitMQ writes tags as a list (3.9+) or a comma-separated string (older files)."""
    if not isinstance(value, str | list | None):
        raise DefinitionsError(f"user tags must be a list or a comma-separated string: {json.dumps(value)}")
    return parse_tags(value)


def _set_limits(broker: Broker, scope: str, name: str, values: dict[str, Any]) -> None:
    """All of a user's or vhost's limits, replaced (as RabbitMQ's import replaces them), stored."""
    try:
        validate(scope, values)
    except LimitError as exc:
        raise DefinitionsError(f"{scope} {name!r}: {' '.join(str(exc).split())}") from None
    broker.limits.clear(scope, name)
    if values:
        broker.limits.put(scope, name, values)
    broker.topology.limits_set(scope, name, broker.limits.of(scope, name))


def _known(broker: Broker, item: dict[str, Any], section: str, report: Report) -> tuple[str, str] | None:
    """(user, vhost) of a permission, or None (reported) when either is missing: RabbitMQ skips
    those with a warning."""
    user, vhost = _name(item, f"an item of {section}", "user"), _name(item, f"an item of {section}", "vhost")
    missing = "user" if user not in broker.users else "vhost" if vhost not in broker.vhosts else None
    if missing is not None:
        report.drop(section, user, f"no such {missing}", vhost=vhost)
        return None
    return user, vhost


def _pattern(item: dict[str, Any], key: str) -> str:
    value = str(item.get(key, ""))
    invalid = invalid_pattern(value)
    if invalid is not None:
        raise DefinitionsError(invalid)
    return value


def _permissions(broker: Broker, items: list[dict[str, Any]], report: Report) -> None:
    for p in items:
        known = _known(broker, p, "permissions", report)
        if known is not None:
            broker.set_permission(known[1], known[0], {k: _pattern(p, k) for k in PERMISSION_KEYS})


def _topic_permissions(broker: Broker, items: list[dict[str, Any]], report: Report) -> None:
    for p in items:
        known = _known(broker, p, "topic_permissions", report)
        if known is not None:
            exchange = _name(p, "a topic permission", "exchange")
            write, read = _pattern(p, "write"), _pattern(p, "read")
            broker.set_topic_permission(known[1], known[0], exchange, write, read)


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
        _parameter(broker, vhost_of(p), p, report)
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
        reason = " ".join(html.unescape(str(exc)).split())  # one line
        raise DefinitionsError(f"{kind} {name!r} in vhost {vhost.name!r}: {reason}") from None


def _parameter(broker: Broker, vhost: VHost, p: dict[str, Any], report: Report) -> None:
    component, name = _name(p, "a parameter", "component"), _name(p, "a parameter")
    if component == VHOST_LIMITS:
        value = p.get("value")
        if not isinstance(value, dict):
            raise DefinitionsError(f"vhost limits of {vhost.name!r}: their value must be an object")
        _set_limits(broker, "vhost", vhost.name, value)
        return
    if component == OPERATOR_POLICY:
        value = p.get("value")
        if not isinstance(value, dict):
            raise DefinitionsError(f"operator policy {name!r}: its value must be an object")
        vhost.set_operator_policy(_policy(vhost, {"name": name, **value}, operator=True))
        return
    reason = DROPPED_COMPONENTS.get(component, f"FerryMQ does not know the component {component!r}")
    report.drop("parameters", f"{component}/{name}", reason, vhost=vhost.name)
