"""SNS subscription filter policies: validated when set, evaluated per message, as AWS documents them.

A policy is a JSON object. Each key names a message attribute (scope ``MessageAttributes``) or a
field of the JSON body (scope ``MessageBody``, where objects nest); its value is a list of
conditions, any one of which may match (OR); every key must match (AND); ``"$or": [policy, ...]``
matches when one of its policies does. Conditions: a string or number (exact; numbers compare as
numbers), ``true``/``false`` and ``null`` (body scope), ``{"prefix"}``, ``{"suffix"}``,
``{"equals-ignore-case"}``, ``{"anything-but": value | [values] | {"prefix"} | {"suffix"}}``,
``{"numeric": [op, n, ...]}``, ``{"exists": bool}`` and ``{"cidr"}``. A key absent from the message
matches only ``exists: false``.

Attribute types: String values match string conditions, Number values numeric ones, String.Array
values (a JSON array) match when one element does; Binary attributes are never matched (absent).
"""

from __future__ import annotations

import ipaddress
import json
import math
from typing import Any

from ferrymq import limits
from ferrymq.protocols.aws.attributes import Attribute

ATTRIBUTES, BODY = "MessageAttributes", "MessageBody"
SCOPES = (ATTRIBUTES, BODY)
OR = "$or"
_NUMERIC_OPS = ("=", "<", "<=", ">", ">=")
_OPERATORS = ("prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists", "cidr")
Policy = dict[str, Any]


class PolicyError(ValueError):
    """A policy AWS refuses; the text is what follows ``Invalid parameter: FilterPolicy: ``."""


# --- validation --------------------------------------------------------------------------------------


def parse(text: str, scope: str) -> Policy:
    """The policy ``text`` holds, validated for ``scope``; PolicyError says what is wrong."""
    try:
        policy = json.loads(text)
    except ValueError:
        raise PolicyError("failed to parse JSON") from None
    if not isinstance(policy, dict):
        raise PolicyError("Filter policy must be a JSON object")
    _check_policy(policy, scope, 0)
    if _key_count(policy) > limits.SNS_FILTER_KEYS_MAX:
        raise PolicyError(f"Filter policy can not have more than {limits.SNS_FILTER_KEYS_MAX} keys")
    if _combinations(policy) > limits.SNS_FILTER_COMBINATIONS_MAX:
        raise PolicyError("Filter policy is too complex: more than "
                          f"{limits.SNS_FILTER_COMBINATIONS_MAX} combinations")
    return policy


def _check_policy(policy: Policy, scope: str, depth: int) -> None:
    for key, value in policy.items():
        if key == OR:
            if not isinstance(value, list) or len(value) < 2 or not all(isinstance(p, dict) for p in value):
                raise PolicyError("$or must be a list of at least two filter policies")
            for sub in value:
                _check_policy(sub, scope, depth)
        elif isinstance(value, dict):
            if scope != BODY:
                raise PolicyError(f"Filter policy scope {ATTRIBUTES} does not support nested filter policy")
            _check_policy(value, scope, depth + 1)
        elif isinstance(value, list):
            if not value:
                raise PolicyError(f"Empty arrays are not allowed (key {key})")
            for condition in value:
                _check_condition(condition, scope)
        else:
            raise PolicyError(f"Match value for key {key} must be an array")


def _check_condition(condition: Any, scope: str) -> None:
    if condition is None:
        if scope != BODY:
            raise PolicyError("null is a match value of the MessageBody scope only")
        return
    if not isinstance(condition, str | int | float | dict):  # bool is an int: true and false pass
        raise PolicyError(f"Match value must be String, number, true, false, or null: {condition!r}")
    if not isinstance(condition, dict):
        return
    if len(condition) != 1:
        raise PolicyError("Only one key allowed in match expression")
    ((operator, operand),) = condition.items()
    if operator not in _OPERATORS:
        raise PolicyError(f"Unrecognized match type {operator}")
    _check_operand(operator, operand)


def _check_operand(operator: str, operand: Any) -> None:
    if operator in ("prefix", "suffix", "equals-ignore-case"):
        if not isinstance(operand, str):
            raise PolicyError(f"{operator} match pattern must be a string")
    elif operator == "exists":
        if not isinstance(operand, bool):
            raise PolicyError("exists match pattern must be either true or false.")
    elif operator == "numeric":
        _numeric_ranges(operand)
    elif operator == "cidr":
        try:
            ipaddress.ip_network(operand, strict=False)
        except (TypeError, ValueError):
            raise PolicyError(f"Malformed CIDR, one '/' required: {operand!r}") from None
    else:
        _check_anything_but(operand)


def _check_anything_but(operand: Any) -> None:
    if isinstance(operand, dict):
        if len(operand) != 1 or next(iter(operand)) not in ("prefix", "suffix") or \
                not isinstance(next(iter(operand.values())), str):
            raise PolicyError("Unsupported anything-but pattern: only prefix and suffix may nest")
        return
    values = operand if isinstance(operand, list) else [operand]
    if not values or not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
        raise PolicyError("anything-but list must hold only strings or only numbers")
    if len({isinstance(v, str) for v in values}) > 1:
        raise PolicyError("Inside anything but list, mixed types are not allowed")


def _numeric_ranges(operand: Any) -> list[tuple[str, float]]:
    """``[op, n, op, n]`` as pairs; a lower and an upper bound at most, lower below upper."""
    if not isinstance(operand, list) or not operand or len(operand) % 2 or len(operand) > 4:
        raise PolicyError("Value of numeric must be an array of one or two operator/number pairs")
    pairs = list(zip(operand[::2], operand[1::2], strict=True))
    for op, number in pairs:
        if op not in _NUMERIC_OPS or isinstance(number, bool) or not isinstance(number, int | float):
            raise PolicyError(f"Unrecognized numeric range operator or value: {op!r} {number!r}")
    if len(pairs) == 2:
        (op1, low), (op2, high) = pairs
        if op1 not in (">", ">=") or op2 not in ("<", "<=") or low >= high:
            raise PolicyError("Bottom must be less than top, with > or >= before < or <=")
    elif pairs[0][0] == "=" and len(pairs) != 1:
        raise PolicyError("= must stand alone in a numeric range")
    return pairs


def _key_count(policy: Policy) -> int:
    count = 0
    for key, value in policy.items():
        if key == OR:
            count += max(_key_count(p) for p in value)
        elif isinstance(value, dict):
            count += _key_count(value)
        else:
            count += 1
    return count


def _combinations(policy: Policy) -> int:
    total = 1
    for key, value in policy.items():
        if key == OR:
            total *= sum(_combinations(p) for p in value)
        elif isinstance(value, dict):
            total *= _combinations(value)
        else:
            total *= len(value)
    return total


# --- evaluation --------------------------------------------------------------------------------------

_MISSING = object()


def attribute_document(attributes: dict[str, Attribute]) -> dict[str, Any]:
    """Message attributes as the values a policy sees: numbers as floats, arrays as lists; Binary
    attributes and unreadable arrays or numbers are left out (no condition matches them)."""
    doc: dict[str, Any] = {}
    for name, attr in attributes.items():
        if isinstance(attr.value, bytes):
            continue
        base = attr.data_type.split(".", 1)[0]
        if attr.data_type == "String.Array":
            try:
                items = json.loads(attr.value)
            except ValueError:
                continue
            if isinstance(items, list):
                doc[name] = items
        elif base == "Number":
            try:
                doc[name] = float(attr.value)
            except ValueError:
                continue
        else:
            doc[name] = attr.value
    return doc


def body_document(body: str) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one (then no policy key can match)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def matches(policy: Policy, doc: dict[str, Any] | None) -> bool:
    """Whether a message's document (attribute_document or body_document) passes ``policy``."""
    if doc is None:
        return not policy
    for key, value in policy.items():
        if key == OR:
            if not any(matches(sub, doc) for sub in value):
                return False
        elif isinstance(value, dict):
            if not _nested(value, doc.get(key, _MISSING)):
                return False
        elif not any(_condition(c, doc.get(key, _MISSING)) for c in value):
            return False
    return True


def _nested(policy: Policy, found: Any) -> bool:
    if isinstance(found, list):
        return any(isinstance(item, dict) and matches(policy, item) for item in found)
    return matches(policy, found if isinstance(found, dict) else {})


def _condition(condition: Any, found: Any) -> bool:
    if isinstance(condition, dict) and "exists" in condition:
        return (found is not _MISSING) == condition["exists"]
    if found is _MISSING:
        return False
    values = found if isinstance(found, list) else [found]
    return any(_leaf(condition, v) for v in values)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _leaf(condition: Any, value: Any) -> bool:
    if condition is None or isinstance(condition, bool):
        return value is condition
    if isinstance(condition, str):
        return isinstance(value, str) and value == condition
    if _is_number(condition):
        return _is_number(value) and math.isclose(float(value), float(condition), rel_tol=0, abs_tol=1e-9)
    ((operator, operand),) = condition.items()
    if operator == "numeric":
        return _is_number(value) and all(_compare(op, float(value), float(n))
                                         for op, n in _numeric_ranges(operand))
    if operator == "anything-but":
        return _anything_but(operand, value)
    if not isinstance(value, str):
        return False
    if operator == "prefix":
        return value.startswith(operand)
    if operator == "suffix":
        return value.endswith(operand)
    if operator == "equals-ignore-case":
        return value.casefold() == operand.casefold()
    return _in_cidr(operand, value)


def _compare(op: str, value: float, bound: float) -> bool:
    return {"=": value == bound, "<": value < bound, "<=": value <= bound, ">": value > bound,
            ">=": value >= bound}[op]


def _anything_but(operand: Any, value: Any) -> bool:
    if isinstance(operand, dict):
        ((kind, text),) = operand.items()
        if not isinstance(value, str):
            return True
        return not (value.startswith(text) if kind == "prefix" else value.endswith(text))
    refused = operand if isinstance(operand, list) else [operand]
    return not any(_leaf(r, value) for r in refused)


def _in_cidr(network: str, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False
