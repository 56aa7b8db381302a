"""AlterConfigs (33) and IncrementalAlterConfigs (44) on topics and the broker.

A topic's new overrides are stored (topic.json, as CreateTopics stores them) before they apply, and
apply at once: DescribeConfigs, retention, compaction and produce all read the topic's spec. What is
refused, and with which code, is ``ferrymq.protocols.kafka.admin_configs``.
"""

from __future__ import annotations

from typing import Any

from ferrymq.core.topics import TopicRegistry
from ferrymq.protocols.kafka import errors, versions
from ferrymq.protocols.kafka.admin_configs import ConfigRefused, Op, check_broker, check_names, incremental
from ferrymq.server.kafka.apis import RESOURCE_BROKER, RESOURCE_TOPIC
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.handlers import NODE_ID, Handler, decoded, reply


class ConfigApis:
    """``topics``: whose configs change (and where they are stored)."""

    def __init__(self, topics: TopicRegistry) -> None:
        self.topics = topics

    def handlers(self) -> dict[int, Handler]:
        return {versions.ALTER_CONFIGS: decoded(self.alter_configs),
                versions.INCREMENTAL_ALTER_CONFIGS: decoded(self.incremental_alter_configs)}

    def alter_configs(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        """The legacy form: the configs given replace every override (omitted ones revert)."""
        out = []
        for r in req.resources:
            ops: list[Op] = [(c.name, 0, c.value) for c in r.configs]
            out.append(self._alter(r, ops, req.validate_only, replace=True))
        reply(slot, {"throttle_time": 0, "responses": out})

    def incremental_alter_configs(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        seen = [(int(r.resource_type), r.resource_name) for r in req.resources]
        out = []
        for r in req.resources:
            if seen.count((int(r.resource_type), r.resource_name)) > 1:
                out.append(_result(r, errors.INVALID_REQUEST, "Each resource must appear at most once."))
                continue
            ops = [(c.name, int(c.config_operation), c.value) for c in r.configs]
            out.append(self._alter(r, ops, req.validate_only, replace=False))
        reply(slot, {"throttle_time": 0, "responses": out})

    def _alter(self, r: Any, ops: list[Op], validate_only: bool, replace: bool) -> dict[str, Any]:
        try:
            if r.resource_type == RESOURCE_BROKER:
                check_broker(r.resource_name, NODE_ID, [name for name, _, _ in ops])
                return _result(r, errors.NONE, None)
            if r.resource_type != RESOURCE_TOPIC:
                raise ConfigRefused(errors.INVALID_REQUEST, "AlterConfigs is only supported for topics and "
                                    f"brokers, but resource type is {int(r.resource_type)}")
            code, msg = self._alter_topic(r.resource_name, ops, validate_only, replace)
        except ConfigRefused as exc:
            code, msg = exc.code, exc.message
        return _result(r, code, msg)

    def _alter_topic(self, name: str, ops: list[Op], validate_only: bool,
                     replace: bool) -> tuple[int, str | None]:
        topic = self.topics.get(name)
        if topic is None:
            return errors.UNKNOWN_TOPIC_OR_PARTITION, f"Topic '{name}' does not exist."
        if replace:
            check_names(n for n, _, _ in ops)
            new = {n: str(v) for n, _, v in ops if v is not None}
        else:
            new = incremental(topic.spec.configs, ops)
        return self.topics.set_configs(name, new, validate_only)


def _result(r: Any, code: int, message: str | None) -> dict[str, Any]:
    return {"error_code": code, "error_message": message, "resource_type": r.resource_type,
            "resource_name": r.resource_name}
