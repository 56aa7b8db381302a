"""DescribeUserScramCredentials (50) and AlterUserScramCredentials (51) on the broker's stored SCRAM
credentials (ferrymq.core.scram: the ones SASL SCRAM logins are checked against, on every protocol).

Kafka's rules (KRaft's ScramImage.describe and ScramControlManager.alterCredentials, 3.x), with its
texts: a user named twice in one request is DUPLICATE_RESOURCE, describing a user with no credential
or deleting a credential that is not there RESOURCE_NOT_FOUND, a mechanism other than SCRAM-SHA-256/512
UNSUPPORTED_SASL_MECHANISM, an empty name or iterations outside 4096..16384 UNACCEPTABLE_CREDENTIAL.
The valid alterations of a request are applied, the others answered with their error. Both APIs are
cluster operations: they need the ``administrator`` tag (CLUSTER_AUTHORIZATION_FAILED otherwise), as
changing users through RabbitMQ's management API does.

The client sends SaltedPassword, never the password, so an upsert changes only that mechanism's SCRAM
credential: the user's AMQP / PLAIN password stays as it was; a user the broker does not know is made
by its first credential (no password, tags or permissions: ``Broker.alter_scram``).
"""

from __future__ import annotations

import logging
from typing import Any

from ferrymq.core.broker import Broker
from ferrymq.core.scram import ITERATIONS_MAX, ITERATIONS_MIN, MECHANISM_TYPES, from_salted
from ferrymq.protocols.kafka import errors, versions
from ferrymq.server.kafka.authz import KafkaAuthorizer
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.handlers import Handler, decoded, reply

log = logging.getLogger("ferrymq.kafka")
CLUSTER_REFUSED = "Cluster authorization failed."  # Errors.CLUSTER_AUTHORIZATION_FAILED's text
TWICE = "A user credential cannot be altered twice in the same request"
DESCRIBED_TWICE = "Cannot describe SCRAM credentials for the same user twice in a single request: "
NO_SUCH_USER = "Attempt to describe a user credential that does not exist: "
NO_SUCH_CREDENTIAL = "Attempt to delete a user credential that does not exist"
Error = tuple[int, str]


class ScramAdminApis:
    def __init__(self, broker: Broker, authz: KafkaAuthorizer) -> None:
        self.broker = broker
        self.authz = authz

    def handlers(self) -> dict[int, Handler]:
        return {versions.DESCRIBE_USER_SCRAM_CREDENTIALS: decoded(self.describe),
                versions.ALTER_USER_SCRAM_CREDENTIALS: decoded(self.alter)}

    # --- Describe ------------------------------------------------------------------------------

    def describe(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        if not self.authz.administrator(conn):  # Kafka's getErrorResponse: one result per name, unnamed
            code = errors.CLUSTER_AUTHORIZATION_FAILED
            reply(slot, {"throttle_time": 0, "error_code": code, "error_message": CLUSTER_REFUSED,
                         "results": [_described("", code, CLUSTER_REFUSED) for _ in req.users or ()]})
            return
        names = [u.name for u in req.users] if req.users else self._users_with_credentials()
        seen: dict[str, bool] = {}
        for name in names:
            seen[name] = name in seen  # True: named twice
        reply(slot, {"throttle_time": 0, "error_code": 0, "error_message": None,
                     "results": [self._describe_one(name, twice) for name, twice in seen.items()]})

    def _users_with_credentials(self) -> list[str]:
        known = set(self.broker.users) | set(self.broker.password_hashes)
        return sorted(u for u in known if self.broker.scram_credentials(u))

    def _describe_one(self, name: str, twice: bool) -> dict[str, Any]:
        if twice:
            return _described(name, errors.DUPLICATE_RESOURCE, DESCRIBED_TWICE + name)
        creds = self.broker.scram_credentials(name) if name in self.broker.users else {}
        if not creds:
            return _described(name, errors.RESOURCE_NOT_FOUND, NO_SUCH_USER + name)
        infos = [{"mechanism": kind, "iterations": creds[m].iterations}
                 for kind, m in sorted(MECHANISM_TYPES.items()) if m in creds]
        return {**_described(name, errors.NONE, None), "credential_infos": infos}

    # --- Alter ---------------------------------------------------------------------------------

    def alter(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        if not self.authz.administrator(conn):
            names = sorted({a.name for a in (*req.deletions, *req.upsertions)})
            code = errors.CLUSTER_AUTHORIZATION_FAILED
            reply(slot, {"throttle_time": 0, "results": [_altered(n, code, CLUSTER_REFUSED) for n in names]})
            return
        deletions, upsertions, failed = self._sort_out(req)
        for d in deletions.values():
            self.broker.alter_scram(d.name, MECHANISM_TYPES[d.mechanism], None)
        for u in upsertions.values():
            mechanism = MECHANISM_TYPES[u.mechanism]
            self.broker.alter_scram(u.name, mechanism, from_salted(
                mechanism, bytes(u.salted_password), bytes(u.salt), u.iterations))
        if deletions or upsertions:
            log.info("SCRAM credentials altered by %s: deleted %s, set %s", self.authz.user(conn),
                     sorted(deletions), sorted(upsertions))
        done = [_altered(n, errors.NONE, None) for n in (*deletions, *upsertions)]
        reply(slot, {"throttle_time": 0,
                     "results": done + [_altered(n, code, text) for n, (code, text) in failed.items()]})

    def _sort_out(self, req: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Error]]:
        """ScramControlManager's pass: deletions first, then upsertions, each user once."""
        deletions: dict[str, Any] = {}
        upsertions: dict[str, Any] = {}
        failed: dict[str, Error] = {}
        for d in req.deletions:
            if d.name in failed:
                continue
            twice = deletions.pop(d.name, None) is not None
            error = (errors.DUPLICATE_RESOURCE, TWICE) if twice else self._deletable(d)
            _file(d, error, deletions, failed)
        for u in req.upsertions:
            if u.name in failed:
                continue
            twice = deletions.pop(u.name, None) is not None or upsertions.pop(u.name, None) is not None
            _file(u, (errors.DUPLICATE_RESOURCE, TWICE) if twice else _upsertable(u), upsertions, failed)
        return deletions, upsertions, failed

    def _deletable(self, d: Any) -> Error | None:
        error = _name_and_mechanism(d.name, d.mechanism)
        if error is None and MECHANISM_TYPES[d.mechanism] not in self.broker.scram_credentials(d.name):
            return errors.RESOURCE_NOT_FOUND, NO_SUCH_CREDENTIAL
        return error


def _file(alteration: Any, error: Error | None, valid: dict[str, Any], failed: dict[str, Error]) -> None:
    if error is None:
        valid[alteration.name] = alteration
    else:
        failed[alteration.name] = error


def _upsertable(u: Any) -> Error | None:
    error = _name_and_mechanism(u.name, u.mechanism)
    if error is None and u.iterations < ITERATIONS_MIN:
        return errors.UNACCEPTABLE_CREDENTIAL, "Too few iterations"
    if error is None and u.iterations > ITERATIONS_MAX:
        return errors.UNACCEPTABLE_CREDENTIAL, "Too many iterations"
    return error


def _name_and_mechanism(name: str, mechanism: int) -> Error | None:
    if not name:
        return errors.UNACCEPTABLE_CREDENTIAL, "Username must not be empty"
    if mechanism not in MECHANISM_TYPES:
        return errors.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"
    return None


def _described(user: str, code: int, text: str | None) -> dict[str, Any]:
    return {"user": user, "error_code": code, "error_message": text, "credential_infos": []}


def _altered(user: str, code: int, text: str | None) -> dict[str, Any]:
    return {"user": user, "error_code": code, "error_message": text}
