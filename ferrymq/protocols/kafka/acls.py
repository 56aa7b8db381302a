"""Kafka ACLs read from and written to FerryMQ's vhost permissions (vhost "/", where the topics are).

A permission is three regexes per user (configure, write, read); an ACL is (resource type, name,
pattern type, principal, host, operation, allow/deny). The two meet where both can say the same:

- ``User:alice ALLOW WRITE TOPIC t LITERAL`` is the alternative ``t$`` in alice's write regex, which
  FerryMQ keeps as ``^(?:t$|...)``; ``PREFIXED t`` is ``t`` (any name starting so); ``LITERAL *`` is
  ``.*``. READ (on a TOPIC or a GROUP) is the read regex, WRITE the write regex, CREATE, DELETE,
  ALTER and ALTER_CONFIGS the configure regex, ALL all three.
- Read back, the read regex shows as READ on both TOPIC and GROUP (one regex grants both), the
  configure regex as ALTER, the write regex as WRITE.
- What permissions cannot express is refused with INVALID_REQUEST and a message saying so: DENY,
  a host other than ``*``, DESCRIBE alone (it is implied by any of the three), CLUSTER and
  TRANSACTIONAL_ID resources, principals other than ``User:``. A regex written by hand in another
  shape has no ACL reading: DescribeAcls leaves it out and CreateAcls will not extend it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ferrymq.core.permissions import CONFIGURE, READ, WRITE

R_ANY, R_TOPIC, R_GROUP = 1, 2, 3
P_ANY, P_MATCH, P_LITERAL, P_PREFIXED = 1, 2, 3, 4
OP_ANY, OP_ALL, OP_READ, OP_WRITE, OP_CREATE, OP_DELETE, OP_ALTER = 1, 2, 3, 4, 5, 6, 7
OP_DESCRIBE, OP_DESCRIBE_CONFIGS, OP_ALTER_CONFIGS = 8, 10, 11
PERM_ANY, PERM_DENY, PERM_ALLOW = 1, 2, 3
WILDCARD = "*"
ANY_REGEX = ".*"
# the kinds an ACL operation grants, and the operation each kind reads back as
OP_KINDS = {OP_READ: (READ,), OP_WRITE: (WRITE,), OP_CREATE: (CONFIGURE,), OP_DELETE: (CONFIGURE,),
            OP_ALTER: (CONFIGURE,), OP_ALTER_CONFIGS: (CONFIGURE,), OP_ALL: (CONFIGURE, WRITE, READ)}
KIND_ACLS = {READ: ((R_TOPIC, OP_READ), (R_GROUP, OP_READ)), WRITE: ((R_TOPIC, OP_WRITE),),
             CONFIGURE: ((R_TOPIC, OP_ALTER),)}

Pattern = tuple[int, str]  # (P_LITERAL or P_PREFIXED, name)


class AclRefused(Exception):
    """An ACL permissions cannot express; ``str()`` is the client's message."""


@dataclass(frozen=True, slots=True)
class Acl:
    resource_type: int
    name: str
    pattern_type: int
    user: str
    operation: int


def patterns(regex: str) -> list[Pattern] | None:
    """The ACL patterns a permission regex stands for, or None when it has no such reading."""
    if regex in ("", "^$"):
        return []
    if regex == ANY_REGEX:
        return [(P_LITERAL, WILDCARD)]
    body = regex[4:-1] if regex.startswith("^(?:") and regex.endswith(")") else \
        regex[1:] if regex.startswith("^") else None
    if body is None:
        return None
    out: list[Pattern] = []
    for alt in re.split(r"(?<!\\)\|", body):
        literal = alt.endswith("$") and not alt.endswith("\\$")
        text = alt[:-1] if literal else alt
        name = re.sub(r"\\(.)", r"\1", text)
        if not name or text not in (re.escape(name), _plain(name)):
            return None
        out.append((P_LITERAL if literal else P_PREFIXED, name))
    return out if regex_of(out) == regex or len(out) == 1 else None


def _plain(name: str) -> str | None:
    """A name written without escapes, as people write ``^logs-``: it has no special character."""
    return None if any(ch in ".^$*+?{}[]\\|()" for ch in name) else name


def regex_of(pats: list[Pattern]) -> str:
    """The regex FerryMQ keeps for these patterns (the inverse of ``patterns``)."""
    if (P_LITERAL, WILDCARD) in pats:
        return ANY_REGEX
    if not pats:
        return ""
    return "^(?:" + "|".join(re.escape(n) + ("$" if t == P_LITERAL else "") for t, n in pats) + ")"


def creation_kinds(resource_type: int, pattern_type: int, principal: str, host: str, operation: int,
                   permission_type: int) -> tuple[str, tuple[str, ...]]:
    """(user, kinds) an ACL creation grants; AclRefused for what permissions cannot express."""
    if permission_type != PERM_ALLOW:
        raise AclRefused("FerryMQ's permissions grant only: DENY ACLs cannot be expressed")
    if host != WILDCARD:
        raise AclRefused("FerryMQ's permissions are not per host: only host '*' can be expressed")
    if not principal.startswith("User:") or len(principal) == 5:
        raise AclRefused(f"Principal '{principal}' is not of the form User:<name>")
    if pattern_type not in (P_LITERAL, P_PREFIXED):
        raise AclRefused("Only LITERAL and PREFIXED resource patterns can be created")
    if resource_type == R_GROUP and operation in (OP_READ, OP_ALL):
        return principal[5:], (READ,)
    if resource_type != R_TOPIC:
        raise AclRefused("Only TOPIC and GROUP (READ) ACLs map onto FerryMQ's permissions")
    if operation not in OP_KINDS:
        raise AclRefused("DESCRIBE is implied by READ, WRITE or ALTER in FerryMQ's permissions; "
                         "grant one of them")
    return principal[5:], OP_KINDS[operation]


def acls_of(user: str, grant: dict[str, str]) -> list[Acl]:
    """Every ACL a user's permission in "/" reads as (kinds in a regex of another shape: none)."""
    out: list[Acl] = []
    for kind, shown in KIND_ACLS.items():
        for pattern_type, name in patterns(grant.get(kind, "")) or []:
            out.extend(Acl(rt, name, pattern_type, user, op) for rt, op in shown)
    return out


@dataclass(frozen=True, slots=True)
class AclFilter:
    resource_type: int
    name: str | None
    pattern_type: int
    principal: str | None
    host: str | None
    operation: int
    permission_type: int

    def matches(self, acl: Acl) -> bool:
        return (self.resource_type in (R_ANY, acl.resource_type) and self._pattern_matches(acl)
                and self.principal in (None, f"User:{acl.user}") and self.host in (None, WILDCARD)
                and self.operation in (OP_ANY, acl.operation)
                and self.permission_type in (PERM_ANY, PERM_ALLOW))

    def _pattern_matches(self, acl: Acl) -> bool:
        if self.pattern_type != P_MATCH:
            return self.pattern_type in (P_ANY, acl.pattern_type) and self.name in (None, acl.name)
        if self.name is None:  # MATCH: the ACLs that would apply to this name
            return True
        if acl.pattern_type == P_PREFIXED:
            return self.name.startswith(acl.name)
        return acl.name in (self.name, WILDCARD)
