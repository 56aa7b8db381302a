"""DescribeAcls (29), CreateAcls (30) and DeleteAcls (31) on FerryMQ's vhost permissions, through
the mapping in ferrymq.protocols.kafka.acls. Changing or reading ACLs is a cluster operation: it
needs the ``administrator`` tag (CLUSTER_AUTHORIZATION_FAILED otherwise), as changing permissions
through RabbitMQ's management API does. Replaces kadmin's NoAuthorizerAclApis (SECURITY_DISABLED).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from ferrymq.core.broker import Broker
from ferrymq.protocols.kafka import errors, versions
from ferrymq.protocols.kafka.acls import (
    P_LITERAL,
    PERM_ALLOW,
    WILDCARD,
    Acl,
    AclFilter,
    AclRefused,
    Pattern,
    acls_of,
    creation_kinds,
    patterns,
    regex_of,
)
from ferrymq.server.kafka.authz import KAFKA_VHOST, KafkaAuthorizer
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.handlers import Handler, decoded, reply

log = logging.getLogger("ferrymq.kafka")
CLUSTER_REFUSED = "Cluster authorization failed: the administrator tag is needed to read or change ACLs"
EMPTY = {"configure": "", "write": "", "read": ""}


def _filter(f: Any) -> AclFilter:
    return AclFilter(f.resource_type_filter, f.resource_name_filter,
                     getattr(f, "pattern_type_filter", P_LITERAL), f.principal_filter, f.host_filter,
                     f.operation, f.permission_type)


class AclApis:
    def __init__(self, broker: Broker, authz: KafkaAuthorizer) -> None:
        self.broker = broker
        self.authz = authz

    def handlers(self) -> dict[int, Handler]:
        return {versions.DESCRIBE_ACLS: decoded(self.describe_acls),
                versions.CREATE_ACLS: decoded(self.create_acls),
                versions.DELETE_ACLS: decoded(self.delete_acls)}

    def _all(self) -> list[Acl]:
        return [acl for (vhost, user), grant in sorted(self.broker.permissions.items())
                if vhost == KAFKA_VHOST for acl in acls_of(user, grant)]

    def describe_acls(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        if not self.authz.administrator(conn):
            reply(slot, {"throttle_time": 0, "error_code": errors.CLUSTER_AUTHORIZATION_FAILED,
                         "error_message": CLUSTER_REFUSED, "resources": []})
            return
        wanted = _filter(req)
        grouped: dict[tuple[int, str, int], list[Acl]] = defaultdict(list)
        for acl in self._all():
            if wanted.matches(acl):
                grouped[(acl.resource_type, acl.name, acl.pattern_type)].append(acl)
        resources = [{"resource_type": rt, "resource_name": name, "pattern_type": pt,
                      "acls": [_entry(a) for a in acls]} for (rt, name, pt), acls in grouped.items()]
        reply(slot, {"throttle_time": 0, "error_code": 0, "error_message": None, "resources": resources})

    def create_acls(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        admin = self.authz.administrator(conn)
        results = [self._create(c) if admin else (errors.CLUSTER_AUTHORIZATION_FAILED, CLUSTER_REFUSED)
                   for c in req.creations]
        reply(slot, {"throttle_time": 0, "results": [{"error_code": code, "error_message": msg}
                                                     for code, msg in results]})

    def _create(self, c: Any) -> tuple[int, str | None]:
        try:
            user, kinds = creation_kinds(c.resource_type, c.resource_pattern_type, c.principal, c.host,
                                         c.operation, c.permission_type)
            if user not in self.broker.users:
                raise AclRefused(f"No such user '{user}': create the user first")
            grant = dict(self.broker.permissions.get((KAFKA_VHOST, user), EMPTY))
            for kind in kinds:
                grant[kind] = _with(grant.get(kind, ""), (c.resource_pattern_type, c.resource_name), kind)
        except AclRefused as exc:
            return errors.INVALID_REQUEST, str(exc)
        self.broker.set_permission(KAFKA_VHOST, user, grant)
        log.info("Kafka ACL created: %s %s on %s -> permissions %s", c.principal, c.operation,
                 c.resource_name, grant)
        return errors.NONE, None

    def delete_acls(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        admin = self.authz.administrator(conn)
        results = [self._delete(_filter(f)) if admin else
                   {"error_code": errors.CLUSTER_AUTHORIZATION_FAILED, "error_message": CLUSTER_REFUSED,
                    "matching_acls": []} for f in req.filters]
        reply(slot, {"throttle_time": 0, "filter_results": results})

    def _delete(self, wanted: AclFilter) -> dict[str, Any]:
        gone = [acl for acl in self._all() if wanted.matches(acl)]
        for user in {acl.user for acl in gone}:
            grant = dict(self.broker.permissions[(KAFKA_VHOST, user)])
            for kind in grant:
                pats = patterns(grant[kind])
                if pats is not None:
                    kept = [p for p in pats if not any(wanted.matches(a) for a in _as_acls(user, kind, p))]
                    grant[kind] = regex_of(kept)
            self.broker.set_permission(KAFKA_VHOST, user, grant)
        return {"error_code": 0, "error_message": None,
                "matching_acls": [{"error_code": 0, "error_message": None, "resource_type": a.resource_type,
                                   "resource_name": a.name, "pattern_type": a.pattern_type, **_entry(a)}
                                  for a in gone]}


def _as_acls(user: str, kind: str, pattern: Pattern) -> list[Acl]:
    return acls_of(user, {kind: regex_of([pattern])})


def _with(regex: str, pattern: Pattern, kind: str) -> str:
    """``regex`` granting ``pattern`` too; AclRefused when it is not in a shape FerryMQ can extend."""
    pats = patterns(regex)
    if pats is None:
        raise AclRefused(f"The user's {kind} permission '{regex}' is a regex ACLs cannot extend: "
                         "change it with `ferrymq permissions`")
    if pattern == (P_LITERAL, WILDCARD) or pattern not in pats:
        pats.append(pattern)
    return regex_of(pats)


def _entry(acl: Acl) -> dict[str, Any]:
    return {"principal": f"User:{acl.user}", "host": WILDCARD, "operation": acl.operation,
            "permission_type": PERM_ALLOW}
