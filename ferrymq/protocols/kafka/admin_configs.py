"""What AlterConfigs and IncrementalAlterConfigs decide, as Kafka's ConfigAdminManager decides it:
the new override set of a topic from the operations asked, and why a request is refused (with
Kafka's code and message). Pure: the server applies the verdicts.

Why the broker resource refuses every change: FerryMQ reads its settings once, at start-up (file,
environment, flags), so no broker config is dynamic; Kafka answers a change to a non-dynamic
config with INVALID_CONFIG "Cannot update these configs dynamically: Set(...)".
"""

from __future__ import annotations

from collections.abc import Iterable

from ferrymq.core.streams import TOPIC_CONFIG_DEFAULTS
from ferrymq.protocols.kafka import errors

SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
# Topic configs of Kafka's LIST type: the only ones APPEND and SUBTRACT may change.
LIST_CONFIGS = frozenset({"cleanup.policy", "follower.replication.throttled.replicas",
                          "leader.replication.throttled.replicas"})
Op = tuple[str, int, str | None]  # (name, operation, value)


class ConfigRefused(Exception):
    """A resource's change refused: Kafka's error code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def check_names(names: Iterable[str]) -> None:
    """Kafka refuses a resource that names one config twice."""
    seen = list(names)
    if len(seen) != len(set(seen)):
        raise ConfigRefused(errors.INVALID_REQUEST, "Error due to duplicate config keys")


def incremental(current: dict[str, str], ops: list[Op]) -> dict[str, str]:
    """A topic's overrides after IncrementalAlterConfigs' operations (SET, DELETE, APPEND, SUBTRACT)."""
    check_names(name for name, _, _ in ops)
    nulls = [name for name, op, value in ops if op != DELETE and value is None]
    if nulls:
        raise ConfigRefused(errors.INVALID_REQUEST, "Null value not supported for : " + ", ".join(nulls))
    out = dict(current)
    for name, op, value in ops:
        if op == SET:
            out[name] = str(value)
        elif op == DELETE:
            out.pop(name, None)
        elif op in (APPEND, SUBTRACT):
            out[name] = _list_op(name, op, str(value), out)
        else:
            raise ConfigRefused(errors.INVALID_REQUEST, f"Unknown alter configs operation type {op}")
    return out


def _list_op(name: str, op: int, value: str, current: dict[str, str]) -> str:
    word = "append" if op == APPEND else "subtract"
    if name not in LIST_CONFIGS:
        raise ConfigRefused(errors.INVALID_CONFIG,
                            f"Config value {word} is not allowed for config key: {name}")
    old = [v for v in current.get(name, TOPIC_CONFIG_DEFAULTS.get(name, "")).split(",") if v]
    given = [v for v in value.split(",") if v]
    if op == APPEND:
        return ",".join(old + [v for v in dict.fromkeys(given) if v not in old])
    return ",".join(v for v in old if v not in given)


def check_broker(resource_name: str, node_id: int, names: list[str]) -> None:
    """The broker resource: its name must be this node's id (or empty, the cluster default), and no
    config of it can change while the broker runs."""
    if resource_name and resource_name != str(node_id):
        if not resource_name.lstrip("-").isdigit():
            raise ConfigRefused(errors.INVALID_REQUEST,
                                f"Node id must be an integer, but it is: {resource_name}")
        raise ConfigRefused(errors.INVALID_REQUEST,
                            f"Unexpected broker id, expected {node_id}, but received {resource_name}")
    check_names(names)
    if names:
        raise ConfigRefused(errors.INVALID_CONFIG,
                            f"Cannot update these configs dynamically: Set({', '.join(sorted(names))})")
