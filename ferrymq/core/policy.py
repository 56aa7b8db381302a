"""Policies: a vhost's named rules that set queue and exchange arguments by name pattern.

As RabbitMQ 3.10: a policy has a regex ``pattern`` matched against the object's name, an ``apply-to``
(queues, exchanges or all), a ``priority`` and a ``definition``. An object's effective policy is the
matching one with the highest priority (RabbitMQ leaves ties unordered; FerryMQ takes the first by
name, so the answer is deterministic). Policies apply live: setting, changing or clearing one
re-derives the arguments of every matching queue and exchange.

Queue arguments and the policy combine as rabbit_amqqueue_process does: for message-ttl, expires,
max-length, max-length-bytes and delivery-limit the smaller value wins; for the others (overflow,
dead-letter-exchange, dead-letter-routing-key, queue-mode) the queue's own argument wins.
``delivery-lease`` (FerryMQ extension, x-delivery-lease) combines like delivery-limit: the smaller wins.

Operator policies (RabbitMQ 3.10's, asked of the real node): the same object shape and validation,
but only the keys in OPERATOR_KEYS; whatever their apply-to, they act on queues only. A queue's
effective definition merges its policy with its operator policy: a key in both takes the smaller
value (every operator key is numeric), a key in one is taken as it is.

Validation texts are RabbitMQ's (the management API HTML-escapes the Erlang terms it prints).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ferrymq.core.args import OVERFLOW_MODES
from ferrymq.limits import DELIVERY_LEASE_MAX_MS

APPLY_TO = ("queues", "exchanges", "all")
# key -> the x-argument it stands for on a queue; the smaller value wins for MIN_KEYS.
QUEUE_KEYS = {
    "message-ttl": "x-message-ttl", "expires": "x-expires", "max-length": "x-max-length",
    "max-length-bytes": "x-max-length-bytes", "overflow": "x-overflow",
    "dead-letter-exchange": "x-dead-letter-exchange",
    "dead-letter-routing-key": "x-dead-letter-routing-key", "delivery-limit": "x-delivery-limit",
    "queue-mode": "x-queue-mode",
    "delivery-lease": "x-delivery-lease",  # FerryMQ extension (ferrymq.core.lease)
}
MIN_KEYS = frozenset({"message-ttl", "expires", "max-length", "max-length-bytes", "delivery-limit",
                      "delivery-lease"})
OPERATOR_KEYS = frozenset({"expires", "message-ttl", "max-length", "max-length-bytes", "max-in-memory-length",
                           "max-in-memory-bytes", "delivery-limit"})
EXCHANGE_KEYS = {"alternate-exchange": "alternate-exchange"}
# Recognised by RabbitMQ (so a definitions file carrying them imports) but not acted on here.
INERT_KEYS = frozenset({
    "ha-mode", "ha-params", "ha-sync-mode", "ha-promote-on-shutdown", "ha-promote-on-failure",
    "queue-master-locator", "queue-version", "federation-upstream", "federation-upstream-set",
    "max-age", "stream-max-segment-size-bytes", "initial-cluster-size", "max-in-memory-length",
    "max-in-memory-bytes", "consumer-timeout",
})


class PolicyError(ValueError):
    """A definition RabbitMQ would refuse; the text is RabbitMQ's reason."""


def _erl(value: Any) -> str:
    """A value as RabbitMQ's validation errors print it (Erlang terms, HTML-escaped)."""
    if isinstance(value, str):
        return f'&lt;&lt;"{value}"&gt;&gt;'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join(_erl(v) for v in value) + "]"
    return repr(value)


def _nonneg(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


# key -> (check, what RabbitMQ calls a bad value)
_CHECKS: dict[str, tuple[Any, str]] = {
    "message-ttl": (_nonneg, "a valid message TTL"),
    "expires": (lambda v: _nonneg(v) and v >= 1, "a valid queue expiry"),
    "max-length": (_nonneg, "a valid maximum length"),
    "max-length-bytes": (_nonneg, "a valid maximum length in bytes"),
    "delivery-limit": (_nonneg, "a valid delivery limit"),
    "delivery-lease": (lambda v: _nonneg(v) and 1 <= v <= DELIVERY_LEASE_MAX_MS, "a valid delivery lease"),
    "overflow": (lambda v: v in OVERFLOW_MODES, "a valid overflow value"),
    "dead-letter-exchange": (lambda v: isinstance(v, str), "a valid dead letter exchange name"),
    "dead-letter-routing-key": (lambda v: isinstance(v, str), "a valid dead letter routing key"),
    "queue-mode": (lambda v: v in ("default", "lazy"), "a valid queue-mode value"),
    "alternate-exchange": (lambda v: isinstance(v, str), "a valid alternate exchange name"),
}


def validate_definition(definition: Any, operator: bool = False) -> dict[str, Any]:
    """The definition if RabbitMQ would accept it (as an operator policy's: ``operator``), else
    PolicyError with RabbitMQ's reason."""
    if not isinstance(definition, dict) or not definition:
        raise PolicyError("Validation failed\n\nno policy provided\n")
    known = OPERATOR_KEYS if operator else _CHECKS.keys() | INERT_KEYS
    unknown = [(k, v) for k, v in definition.items() if k not in known]
    if unknown:
        terms = ",".join(f"{{{_erl(k)},{_erl(v)}}}" for k, v in unknown)
        raise PolicyError(f"Validation failed\n\n[{terms}] are not recognised policy settings\n")
    for key, value in definition.items():
        check = _CHECKS.get(key)
        if check is not None and not check[0](value):
            raise PolicyError(f"Validation failed\n\n{_erl(value)} is not {check[1]}\n")
    return dict(definition)


@dataclass(slots=True)
class Policy:
    name: str
    vhost: str
    pattern: str
    definition: dict[str, Any]
    priority: int = 0
    apply_to: str = "all"
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.regex = re.compile(self.pattern)

    def applies(self, kind: str, name: str) -> bool:
        """Does this policy match a queue or exchange (``kind``) of this name?"""
        if self.apply_to != "all" and self.apply_to != kind + "s":
            return False
        return self.regex.search(name) is not None

    def as_json(self) -> dict[str, Any]:
        """RabbitMQ's policy object, field order as its API sends it."""
        return {"vhost": self.vhost, "name": self.name, "pattern": self.pattern,
                "apply-to": self.apply_to, "definition": dict(self.definition),
                "priority": self.priority}


def make_policy(vhost: str, name: str, body: Any, operator: bool = False) -> Policy:
    """A policy (an operator policy: ``operator``) from a management-API body ({pattern, definition,
    priority, apply-to}), validated."""
    if not isinstance(body, dict) or "pattern" not in body:
        raise PolicyError("[{key_missing,pattern}]")
    if "definition" not in body:
        raise PolicyError("[{key_missing,definition}]")
    pattern, priority = body["pattern"], body.get("priority", 0)
    apply_to = body.get("apply-to", "all")
    if not isinstance(pattern, str):
        raise PolicyError(f"Validation failed\n\npattern should be a string, actually was {_erl(pattern)}\n")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise PolicyError(
            f"Validation failed\n\npattern should be regular expression but is invalid: {exc}\n") from None
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise PolicyError(
            f"Validation failed\n\npriority should be a number, actually was {_erl(priority)}\n")
    if apply_to not in APPLY_TO:
        raise PolicyError(f"Validation failed\n\napply-to '{apply_to}' unrecognised; "
                          "should be 'queues', 'exchanges' or 'all'\n")
    return Policy(name, vhost, pattern, validate_definition(body["definition"], operator), priority, apply_to)


def effective(policies: dict[str, Policy], kind: str, name: str) -> Policy | None:
    """The policy in force for a queue or exchange: highest priority, then first by name."""
    best: Policy | None = None
    for pname in sorted(policies):
        p = policies[pname]
        if p.applies(kind, name) and (best is None or p.priority > best.priority):
            best = p
    return best


def effective_definition(policy: Policy | None, operator: Policy | None) -> dict[str, Any]:
    """What /api/queues shows as effective_policy_definition: the policy's definition merged with
    the operator policy's (a key in both: the smaller value)."""
    merged = dict(policy.definition) if policy is not None else {}
    for key, value in (operator.definition if operator is not None else {}).items():
        own = merged.get(key)
        merged[key] = value if not isinstance(own, int) or isinstance(own, bool) else min(own, value)
    return merged


def queue_arguments(arguments: dict[str, Any], policy: Policy | None,
                    operator: Policy | None = None) -> dict[str, Any]:
    """The x-arguments a queue acts on: its own, combined with its policies' as RabbitMQ does."""
    if policy is None and operator is None:
        return arguments
    merged = dict(arguments)
    for key, value in effective_definition(policy, operator).items():
        arg = QUEUE_KEYS.get(key)
        if arg is None:
            continue
        own = merged.get(arg)
        if own is None:
            merged[arg] = value
        elif key in MIN_KEYS and isinstance(own, int) and not isinstance(own, bool):
            merged[arg] = min(own, value)
    if "x-dead-letter-exchange" not in merged:  # a policy's routing key alone does nothing
        merged.pop("x-dead-letter-routing-key", None)
    return merged


def alternate_exchange(arguments: dict[str, Any], policy: Policy | None) -> str | None:
    """An exchange's alternate: its own argument wins over its policy's."""
    own = arguments.get("alternate-exchange")
    if isinstance(own, bytes | bytearray):
        return bytes(own).decode("utf-8", "replace")
    if isinstance(own, str):
        return own
    if policy is not None:
        value = policy.definition.get("alternate-exchange")
        return value if isinstance(value, str) else None
    return None
