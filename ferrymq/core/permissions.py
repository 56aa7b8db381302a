"""RabbitMQ's access model: per-vhost configure/write/read regexes, topic permissions, user tags.

Pure and shared by every front end, so AMQP, Kafka (helper "ksec"), the HTTP API and SQS refuse the
same things with the same words. The stable API, for callers outside the AMQP channel:

- ``Permissions.vhost_refusal(user, vhost)``: RabbitMQ's 530 text, or None when the user may open it;
- ``Permissions.check(user, vhost, kind, resource_type, name)``: the 403 text, or None when allowed
  (``kind``: CONFIGURE / WRITE / READ; ``resource_type``: "queue" / "exchange" / "topic"...);
- ``Permissions.check_topic(user, vhost, kind, exchange, routing_key)``: WRITE / READ on a topic
  exchange's routing key, or None;
- ``Permissions.unrestricted(user, vhost, kind)``: the pattern is ``.*`` (every name), for a caller
  that checks many names in one request (a Kafka Produce or Fetch) and may then skip them;
- ``Permissions.generation``: bumped on every change, for callers that cache decisions.

Decisions are cached here (bounded, emptied by ``changed()``), as each AMQP channel caches its own:
front ends without a channel (Kafka, the HTTP API) get the same cache through the same call.

Matching copies rabbit_auth_backend_internal (3.10): an unanchored search (``re:run``), the empty
pattern meaning ``^$``, the default exchange "" checked as ``amq.default``, no topic permission on an
exchange meaning every routing key is allowed, and ``{username}`` / ``{vhost}`` expanded in topic
patterns before matching.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable

from ferrymq.errors import AccessRefused

CONFIGURE, WRITE, READ = "configure", "write", "read"
KINDS = (CONFIGURE, WRITE, READ)
# RabbitMQ's management tags; "impersonator" lets a user set another's user_id (not used by AMQP here)
TAGS = ("administrator", "monitoring", "policymaker", "management", "impersonator")
MANAGEMENT_TAGS = frozenset({"administrator", "monitoring", "policymaker", "management"})
ANY = ".*"  # the pattern RabbitMQ grants by default: every name
FULL = {CONFIGURE: ANY, WRITE: ANY, READ: ANY}
DECISIONS_MAX = 4096  # cached (vhost, user, kind, name) decisions before the cache starts again


def resource_text(resource_type: str, name: str, vhost: str) -> str:
    """rabbit_misc:rs/1: "queue 'q' in vhost '/'" ("'x' in vhost '/'" for a topic's exchange)."""
    if resource_type == "topic":
        return f"'{name}' in vhost '{vhost}'"
    return f"{resource_type} '{name}' in vhost '{vhost}'"


def reserved_name(resource_type: str, name: str) -> str | None:
    """rabbit_channel:check_name/2: names beginning with ``amq.`` are the broker's."""
    if name.startswith("amq."):
        return f"{resource_type} name '{name}' contains reserved prefix 'amq.*'"
    return None


def invalid_pattern(pattern: str) -> str | None:
    """Why a permission regex cannot be stored (RabbitMQ refuses it on set), or None."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"Invalid regexp '{pattern}': {exc}"
    return None


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern or "^$")
    except re.error:
        return None  # stored before validation existed: it matches nothing


def matches(pattern: str, name: str) -> bool:
    compiled = _compiled(pattern)
    return compiled is not None and compiled.search(name) is not None


def expand(pattern: str, variables: dict[str, str]) -> str:
    """rabbit_auth_backend_internal:expand_topic_permission/2: plain text replacement."""
    for key, value in variables.items():
        pattern = pattern.replace("{" + key + "}", value)
    return pattern


class Permissions:
    """The grants themselves (``grants`` is the broker's ``permissions`` dict, shared, not copied)."""

    def __init__(self, grants: dict[tuple[str, str], dict[str, str]] | None = None) -> None:
        self.grants: dict[tuple[str, str], dict[str, str]] = grants if grants is not None else {}
        # (vhost, user, exchange) -> {"write": regex, "read": regex}
        self.topics: dict[tuple[str, str, str], dict[str, str]] = {}
        self.generation = 0
        self._decisions: dict[tuple[str, str, str, str], bool] = {}

    def changed(self) -> None:
        """Every change to the grants comes through here (the broker's ``_access_changed``), so the
        cached decisions never outlive the grants they were made from."""
        self.generation += 1
        self._decisions.clear()

    # --- decisions ---------------------------------------------------------------------------

    def vhost_refusal(self, user: str, vhost: str) -> str | None:
        if (vhost, user) in self.grants:
            return None
        return f"access to vhost '{vhost}' refused for user '{user}'"

    def unrestricted(self, user: str, vhost: str, kind: str) -> bool:
        grant = self.grants.get((vhost, user))
        return grant is not None and grant.get(kind) == ANY

    def allowed(self, user: str, vhost: str, kind: str, name: str) -> bool:
        key = (vhost, user, kind, name)
        decision = self._decisions.get(key)
        if decision is None:
            grant = self.grants.get((vhost, user))
            pattern = "" if grant is None else grant.get(kind, "")
            decision = grant is not None and (pattern == ANY or matches(pattern, name))
            if len(self._decisions) >= DECISIONS_MAX:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def check(self, user: str, vhost: str, kind: str, resource_type: str, name: str) -> str | None:
        if resource_type == "exchange" and not name:
            name = "amq.default"
        if self.allowed(user, vhost, kind, name):
            return None
        return f"access to {resource_text(resource_type, name, vhost)} refused for user '{user}'"

    def authoriser(self, user: str, vhost: str) -> Callable[[str, str, str], None]:
        """The ``authorise`` callback VHost.declare_queue/declare_exchange take, for a front end
        with no channel of its own (the HTTP API): the declare then makes every check RabbitMQ's
        channel makes (configure, and a new queue's dead-letter / exchange's alternate exchange),
        in its order, as the AMQP channel's ``require`` does — one check path for both."""
        def authorise(kind: str, resource_type: str, name: str) -> None:
            refused = self.check(user, vhost, kind, resource_type, name)
            if refused is not None:
                raise AccessRefused(refused)
        return authorise

    def has_topic_rules(self, user: str, vhost: str, exchange: str) -> bool:
        return (vhost, user, exchange) in self.topics

    def check_topic(self, user: str, vhost: str, kind: str, exchange: str,
                    routing_key: str) -> str | None:
        rule = self.topics.get((vhost, user, exchange))
        if rule is None:
            return None
        pattern = expand(rule.get(kind, "") or "^$", {"username": user, "vhost": vhost})
        if matches(pattern, routing_key):
            return None
        return (f"access to topic '{routing_key}' in exchange {resource_text('topic', exchange, vhost)}"
                f" refused for user '{user}'")

    def login_vhosts(self, user: str) -> list[str]:
        """The vhosts a user may open (RabbitMQ's list_login_vhosts for the internal backend)."""
        return sorted(v for v, u in self.grants if u == user)

    # --- changes -----------------------------------------------------------------------------

    def set_topic(self, vhost: str, user: str, exchange: str, write: str, read: str) -> bool:
        new = (vhost, user, exchange) not in self.topics
        self.topics[(vhost, user, exchange)] = {WRITE: write, READ: read}
        self.changed()
        return new

    def clear_topic(self, vhost: str, user: str, exchange: str | None = None) -> list[str]:
        """Remove one exchange's topic permission, or all of the user's in the vhost; the exchanges."""
        gone = [k for k in self.topics if k[0] == vhost and k[1] == user and exchange in (None, k[2])]
        for key in gone:
            del self.topics[key]
        self.changed()
        return [k[2] for k in gone]

    def forget(self, vhost: str | None = None, user: str | None = None) -> None:
        for key in [k for k in self.topics if k[0] == vhost or k[1] == user]:
            del self.topics[key]
        self.changed()


def management_refusal(tags: Iterable[str]) -> str | None:
    """The management plugin's first gate: a user with none of its tags may not use the HTTP API."""
    return None if MANAGEMENT_TAGS.intersection(tags) else "Not management user"


def parse_tags(raw: str | Iterable[str] | None) -> list[str]:
    """RabbitMQ accepts tags as a comma-separated string or a list; blanks are dropped."""
    if raw is None:
        return []
    items = raw.split(",") if isinstance(raw, str) else [str(t) for t in raw]
    return [t.strip() for t in items if t.strip()]
