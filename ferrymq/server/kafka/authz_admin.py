"""The admin APIs (ferrymq.server.kafka.admin_*) behind the same permissions as the rest of Kafka:
changing a topic's configs or deleting its records is configure on the topic (Kafka's ALTER_CONFIGS
and DELETE), a broker's configs need the ``administrator`` tag, deleting a group or its offsets is
read on the group (and on each topic). A request naming anything refused is answered whole: the
refused entries with the authorization error, the others OPERATION_NOT_ATTEMPTED (55).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ferrymq.core.permissions import CONFIGURE, READ
from ferrymq.protocols.kafka import errors, versions
from ferrymq.protocols.kafka.entities import decode_request
from ferrymq.server.kafka.authz import KafkaAuthorizer
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.handlers import Handler, reply, request_body

RESOURCE_TOPIC = 2
NOT_ATTEMPTED = errors.OPERATION_NOT_ATTEMPTED
Refusal = Callable[[KafkaAuthorizer, KafkaConnection, Any], dict[str, Any] | None]


def _code(ok: bool, refused_code: int) -> int:
    """An entry of a request refused whole: its own refusal, or not attempted."""
    return NOT_ATTEMPTED if ok else refused_code


def _configs(authz: KafkaAuthorizer, conn: KafkaConnection, req: Any) -> dict[str, Any] | None:
    """AlterConfigs, IncrementalAlterConfigs."""
    def verdict(r: Any) -> tuple[bool, int]:
        if r.resource_type == RESOURCE_TOPIC:
            return authz.allowed(conn, CONFIGURE, r.resource_name), errors.TOPIC_AUTHORIZATION_FAILED
        return authz.administrator(conn), errors.CLUSTER_AUTHORIZATION_FAILED
    verdicts = [verdict(r) for r in req.resources]
    if all(ok for ok, _ in verdicts):
        return None
    return {"throttle_time": 0, "responses": [
        {"error_code": _code(ok, code), "error_message": None if ok else "Authorization failed.",
         "resource_type": r.resource_type, "resource_name": r.resource_name}
        for r, (ok, code) in zip(req.resources, verdicts, strict=True)]}


def _records(authz: KafkaAuthorizer, conn: KafkaConnection, req: Any) -> dict[str, Any] | None:
    """DeleteRecords."""
    ok = {t.name: authz.allowed(conn, CONFIGURE, t.name) for t in req.topics}
    if all(ok.values()):
        return None
    return {"throttle_time": 0, "topics": [{"name": t.name, "partitions": [
        {"partition_index": p.partition_index, "low_watermark": -1,
         "error_code": _code(ok[t.name], errors.TOPIC_AUTHORIZATION_FAILED)} for p in t.partitions]}
        for t in req.topics]}


def _delete_groups(authz: KafkaAuthorizer, conn: KafkaConnection, req: Any) -> dict[str, Any] | None:
    ok = {g: authz.allowed(conn, READ, g) for g in req.groups_names}
    if all(ok.values()):
        return None
    return {"throttle_time": 0, "results": [
        {"group_id": g, "error_code": _code(ok[g], errors.GROUP_AUTHORIZATION_FAILED)}
        for g in req.groups_names]}


def _offset_delete(authz: KafkaAuthorizer, conn: KafkaConnection, req: Any) -> dict[str, Any] | None:
    group_ok = authz.allowed(conn, READ, req.group_id)
    ok = {t.name: authz.allowed(conn, READ, t.name) for t in req.topics}
    if group_ok and all(ok.values()):
        return None
    return {"throttle_time": 0, "error_code": errors.NONE if group_ok else errors.GROUP_AUTHORIZATION_FAILED,
            "topics": [{"name": t.name, "partitions": [
                {"partition_index": p.partition_index,
                 "error_code": _code(ok[t.name], errors.TOPIC_AUTHORIZATION_FAILED)}
                for p in t.partitions]} for t in req.topics]}


REFUSALS: dict[int, Refusal] = {
    versions.ALTER_CONFIGS: _configs, versions.INCREMENTAL_ALTER_CONFIGS: _configs,
    versions.DELETE_RECORDS: _records, versions.DELETE_GROUPS: _delete_groups,
    versions.OFFSET_DELETE: _offset_delete,
}


def guard_admin(authz: KafkaAuthorizer, handlers: dict[int, Handler]) -> dict[int, Handler]:
    """The admin handlers, those that change topics or groups behind their permission checks."""
    return {key: _guarded(authz, REFUSALS[key], fn) if key in REFUSALS else fn
            for key, fn in handlers.items()}


def _guarded(authz: KafkaAuthorizer, refusal: Refusal, inner: Handler) -> Handler:
    def handler(conn: KafkaConnection, slot: Slot, ctx: Any) -> None:
        trusted = authz.unrestricted(conn, CONFIGURE) and authz.unrestricted(conn, READ)
        if trusted and authz.administrator(conn):
            inner(conn, slot, ctx)
            return
        answer = refusal(authz, conn, decode_request(slot.api_key, slot.version, request_body(ctx)))
        if answer is None:
            inner(conn, slot, ctx)
        else:
            reply(slot, answer)
    return handler
