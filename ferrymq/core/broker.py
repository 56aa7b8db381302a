"""The broker facade: vhosts, users, channels, timers. Pure: the shell drives it.

The shell calls ``tick(now)`` when ``next_deadline_ms()`` is due and drains ``dirty`` (channels
with effects in their outbox) once per loop turn.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, Protocol

from ferrymq import limits
from ferrymq.core.channel import Channel
from ferrymq.core.clock import Clock
from ferrymq.core.parameters import Parameters
from ferrymq.core.passwords import DEFAULT_ALGORITHM, hash_password, verify
from ferrymq.core.permissions import Permissions
from ferrymq.core.queue import Queue
from ferrymq.core.scram import MECHANISMS as SCRAM_MECHANISMS
from ferrymq.core.scram import ScramCredential, derive
from ferrymq.core.stats import Turn
from ferrymq.core.store import NoTopology, StreamBackend, TopologyStore
from ferrymq.core.trace import Tracer
from ferrymq.core.vhost import VHost
from ferrymq.core.vhost_limits import Limits
from ferrymq.errors import AccessRefused, NotAllowed


class RandomBits(Protocol):
    def getrandbits(self, k: int) -> int: ...


class Broker:
    def __init__(
        self,
        clock: Clock,
        rng: RandomBits,
        *,
        users: dict[str, str] | None = None,
        loopback_only_users: frozenset[str] = frozenset({"guest"}),
        consumer_timeout_ms: int = limits.CONSUMER_TIMEOUT_DEFAULT_MS,
        topology: TopologyStore | None = None,
    ) -> None:
        self.clock = clock
        self.turn = Turn(clock.monotonic_ms())  # the shell refreshes it once per input read
        self.tracer = Tracer(clock)
        # rabbitmq_global_messages_*: publishes received by closed channels (open ones count their
        # own, ``Channel.received``), and the unroutable ones
        # ... and the lease extension's (ferrymq.core.lease): deliveries taken back, settles ignored
        self.counters = dict.fromkeys(("received", "unroutable_dropped", "unroutable_returned",
                                       "leases_expired", "leases_released", "late_settles_ignored"), 0)
        self.rng = rng
        self.users = dict(users if users is not None else {"guest": "guest"})
        # Users imported with a hash we cannot reverse: name -> (hash, algorithm); checked first.
        self.password_hashes: dict[str, tuple[str, str]] = {}
        self.loopback_only_users = loopback_only_users
        # SCRAM credentials (ferrymq.core.scram) by user and mechanism: derived when a password is
        # set; a configured user's (plain password in ``users``) on first use.
        self.scram: dict[str, dict[str, ScramCredential]] = {}
        # (vhost, user) -> {"configure", "write", "read"} regexes, as RabbitMQ stores them; enforced
        # through ``access`` (ferrymq.core.permissions), which shares this very dict.
        self.permissions: dict[tuple[str, str], dict[str, str]] = {
            ("/", user): {"configure": ".*", "write": ".*", "read": ".*"} for user in self.users}
        self.access = Permissions(self.permissions)
        # Management tags; configured users are default users, administrators as RabbitMQ's guest.
        self.user_tags: dict[str, list[str]] = {user: ["administrator"] for user in self.users}
        self.consumer_timeout_ms = consumer_timeout_ms
        self.topology: TopologyStore = topology if topology is not None else NoTopology()
        self.parameters = Parameters(self)  # runtime parameters (operator policies, definitions' data)
        self.limits = Limits()  # per-vhost and per-user limits (rabbitmqctl set_vhost_limits)
        self.streams: StreamBackend | None = None  # x-queue-type: stream queues (the Kafka logs)
        self.vhosts: dict[str, VHost] = {}
        self.dirty: list[Channel] = []
        self.channels: set[Channel] = set()
        self.leased: set[Channel] = set()  # channels holding leases: their deadlines are timers
        self.reply_channels: dict[str, Channel] = {}
        self.overloaded: set[Queue] = set()  # consumed queues over the flow high-water mark
        self._timed_queues: set[Queue] = set()
        self._last_timeout_check_ms = clock.monotonic_ms()
        self.add_vhost("/")

    def add_vhost(self, name: str) -> VHost:
        vhost = self.vhosts.get(name)
        if vhost is None:
            vhost = self.vhosts[name] = VHost(name, self)
        return vhost

    def unique_token(self) -> str:
        """22 url-safe characters, like RabbitMQ's amq.gen-/amq.ctag- suffixes."""
        raw = self.rng.getrandbits(128).to_bytes(16, "big")
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    # --- access --------------------------------------------------------------------------

    def authenticate(self, username: str, password: str, *, loopback: bool) -> None:
        hashed = self.password_hashes.get(username)
        matches = verify(hashed[0], password, hashed[1]) if hashed else self.users.get(username) == password
        if not matches:
            raise AccessRefused("Login was refused")
        self.admit(username, loopback=loopback)

    def admit(self, username: str, *, loopback: bool) -> None:
        """The rules every login passes once its credentials are proven, whatever the protocol and
        mechanism: the user exists, and a loopback-only user (``guest``) came from loopback."""
        known = username in self.users or username in self.password_hashes
        if not known or (username in self.loopback_only_users and not loopback):
            raise AccessRefused("Login was refused")

    def scram_credential(self, username: str, mechanism: str) -> ScramCredential | None:
        """The user's stored credential for a SCRAM mechanism; None for an unknown user, or one
        whose password is known only as RabbitMQ's hash (imported definitions)."""
        creds = self.scram.get(username)
        if creds is None and username not in self.password_hashes and self.users.get(username):
            creds = self.scram[username] = self._derive_scram(self.users[username])
        return None if creds is None else creds.get(mechanism)

    def scram_credentials(self, username: str) -> dict[str, ScramCredential]:
        """Every SCRAM credential the user has, by mechanism (a configured user's derived first)."""
        found = {m: self.scram_credential(username, m) for m in SCRAM_MECHANISMS}
        return {m: c for m, c in found.items() if c is not None}

    def alter_scram(self, username: str, mechanism: str, credential: ScramCredential | None) -> None:
        """Kafka's AlterUserScramCredentials: set (None: delete) one mechanism's credential, stored;
        the other mechanism and the user's password stay. An unknown user is created as Kafka's
        SCRAM users are, by their credential: no password (PLAIN and AMQP refuse it), no tags and
        no permissions, as a user made through the management API."""
        if username not in self.users and username not in self.password_hashes:
            self.put_user(username)
        creds = self.scram_credentials(username)
        if credential is None:
            creds.pop(mechanism, None)
        else:
            creds[mechanism] = credential
        self._set_scram(username, creds)

    def _derive_scram(self, password: str) -> dict[str, ScramCredential]:
        return {m: derive(m, password, self.rng.getrandbits(128).to_bytes(16, "big"))
                for m in SCRAM_MECHANISMS}

    def authenticate_external(self, username: str, *, loopback: bool) -> None:
        """SASL EXTERNAL: the TLS layer proved the identity; the user must exist (RabbitMQ's
        rabbitmq_auth_mechanism_ssl with the internal backend), no password is asked."""
        self.admit(username, loopback=loopback)

    # --- vhosts, users, permissions made by an operator: stored, so they survive a restart ------

    def create_vhost(self, name: str) -> VHost:
        """``add_vhost``, remembered (management API, definitions); internal uses stay unstored."""
        self.topology.vhost_added(name)
        return self.add_vhost(name)

    def delete_vhost(self, name: str) -> None:
        """Forget a vhost and its permissions; the caller has removed what it held."""
        self._forget(vhost=name)
        self.parameters.forget_vhost(name)
        self.topology.vhost_deleted(name)

    def put_user(self, name: str, password: str | None = None, password_hash: str | None = None,
                 algorithm: str = DEFAULT_ALGORITHM, tags: list[str] | None = None) -> bool:
        """Create or update a user (True if new). A plain password is kept only as RabbitMQ's salted
        hash (salt from the broker's Rng), in memory and on disk; neither given keeps the old one.
        ``tags`` None keeps the old tags (none for a new user)."""
        new = name not in self.users
        if password is not None or password_hash is not None:  # a new password: new SCRAM keys too
            self._set_scram(name, None if password is None else self._derive_scram(password))
        if tags is not None or new:
            self.set_user_tags(name, tags or [])
        if password is not None:
            password_hash, algorithm = self._salted(password), DEFAULT_ALGORITHM
        elif password_hash is None:
            password_hash, algorithm = self.password_hashes.get(name) or (
                self._salted(self.users[name]) if name in self.users else "", DEFAULT_ALGORITHM)
        self.users[name] = ""  # never matches: the hash is checked first
        self.password_hashes[name] = (password_hash, algorithm)
        self.topology.user_set(name, password_hash, algorithm)
        return new

    def _set_scram(self, name: str, creds: dict[str, ScramCredential] | None) -> None:
        """None: the password came as a hash, so the user has no SCRAM credentials (stored so)."""
        if creds is None:
            self.scram.pop(name, None)
        else:
            self.scram[name] = creds
        self.topology.scram_set(name, {m: c.encode() for m, c in (creds or {}).items()})

    def restore_scram(self, rows: list[tuple[str, dict[str, str]]]) -> None:
        """Recovery: stored SCRAM credentials (user, mechanism -> Kafka's text form), after
        ``restore_access``; an empty mapping is a user whose password came as a hash."""
        for name, creds in rows:
            if name in self.users:
                self.scram[name] = {m: ScramCredential.decode(t) for m, t in creds.items()}
    def set_user_tags(self, name: str, tags: list[str]) -> None:
        self.user_tags[name] = list(tags)
        self.topology.access_set("tags", name, list(tags))

    def _salted(self, password: str) -> str:
        return hash_password(password, self.rng.getrandbits(32).to_bytes(4, "big"))

    def delete_user(self, name: str) -> bool:
        if name not in self.users:
            return False
        self._forget(user=name)
        self.topology.user_deleted(name)
        return True

    def set_permission(self, vhost: str, user: str, permission: dict[str, str]) -> bool:
        new = (vhost, user) not in self.permissions
        self.permissions[(vhost, user)] = dict(permission)
        self.topology.permission_set(vhost, user, permission)
        self._access_changed()
        return new

    def clear_permission(self, vhost: str, user: str) -> bool:
        if self.permissions.pop((vhost, user), None) is None:
            return False
        self.topology.permission_cleared(vhost, user)
        self._access_changed()
        return True

    def set_topic_permission(self, vhost: str, user: str, exchange: str, write: str, read: str) -> bool:
        new = self.access.set_topic(vhost, user, exchange, write, read)
        self.topology.access_set("topic", _topic_key(vhost, user, exchange), {"write": write, "read": read})
        self._access_changed()
        return new

    def clear_topic_permission(self, vhost: str, user: str, exchange: str | None = None) -> bool:
        """One exchange's topic permission, or (``exchange`` None) all of the user's in the vhost."""
        gone = self.access.clear_topic(vhost, user, exchange)
        for name in gone:
            self.topology.access_set("topic", _topic_key(vhost, user, name), None)
        self._access_changed()
        return bool(gone)

    def _access_changed(self) -> None:
        """Channels cache allowed decisions (as RabbitMQ's do); a change empties every cache, so it
        applies to the next operation on every open channel."""
        self.access.changed()
        for channel in self.channels:
            channel.allowed.clear()

    def _forget(self, vhost: str | None = None, user: str | None = None) -> None:
        if vhost is not None:
            self.vhosts.pop(vhost, None)
            self.limits.clear("vhost", vhost)
        if user is not None:
            self.limits.clear("user", user)
            self.users.pop(user, None)
            self.password_hashes.pop(user, None)
            self.scram.pop(user, None)
            self.user_tags.pop(user, None)
        for key in [k for k in self.permissions if k[0] == vhost or k[1] == user]:
            del self.permissions[key]
        for vh, us, ex in [k for k in self.access.topics if k[0] == vhost or k[1] == user]:
            self.topology.access_set("topic", _topic_key(vh, us, ex), None)
        self.access.forget(vhost, user)
        self._access_changed()

    def restore_access(self, vhosts: list[tuple[str, bool]], users: list[tuple[str, str, str, bool]],
                       permissions: list[tuple[str, str, dict[str, str] | None]],
                       access: Sequence[tuple[str, str, Any]] = ()) -> None:
        """Recovery: stored vhosts, users (name, hash, algorithm, deleted) and permissions (None: a
        cleared one) over the configured base, without writing them again; then ``access`` rows
        (kind, key, value): user tags and topic permissions (data directories older than them
        have none)."""
        for name, deleted in vhosts:
            if deleted:
                self._forget(vhost=name)
            else:
                self.add_vhost(name)
        for name, password_hash, algorithm, deleted in users:
            if deleted:
                self._forget(user=name)
            else:
                self.users[name] = ""
                self.password_hashes[name] = (password_hash, algorithm)
        for vhost, user, permission in permissions:
            if permission is None:
                self.permissions.pop((vhost, user), None)
            elif vhost in self.vhosts and user in self.users:
                self.permissions[(vhost, user)] = dict(permission)
        for kind, key, value in access:
            self._restore_access_row(kind, key, value)
        self._access_changed()

    def _restore_access_row(self, kind: str, key: str, value: Any) -> None:
        if kind == "tags" and key in self.users:
            self.user_tags[key] = list(value or [])
        elif kind == "topic":
            vhost, user, exchange = json.loads(key)
            if value is None:
                self.access.clear_topic(vhost, user, exchange)
            elif vhost in self.vhosts and user in self.users:
                self.access.set_topic(vhost, user, exchange, value.get("write", ""), value.get("read", ""))

    def open_vhost(self, name: str, username: str) -> VHost:
        """A missing vhost, then one the user holds no permission on, are refused 530 NOT_ALLOWED
        with RabbitMQ 3.10's texts (rabbit_reader, rabbit_access_control:check_vhost_access)."""
        vhost = self.vhosts.get(name)
        if vhost is None:
            raise NotAllowed(f"vhost {name} not found")
        refused = self.access.vhost_refusal(username, name)
        if refused is not None:
            raise NotAllowed(refused)
        return vhost

    def open_channel(self, vhost: VHost, number: int, connection: Any, username: str,
                     enforce: bool = False) -> Channel:
        """``enforce``: check ``username``'s permissions on every operation (client channels); the
        broker's own channels (SQS, SNS, health checks) are authorised by their front end."""
        channel = Channel(vhost, number, connection, username, broker=self)
        channel.enforce = enforce
        if enforce and "impersonator" in self.user_tags.get(username, ()):
            channel.publisher = None  # RabbitMQ's impersonator tag: user_id may name another user
        self.channels.add(channel)
        return channel

    def close_channel(self, channel: Channel) -> None:
        channel.close()
        self.channels.discard(channel)
        self.leased.discard(channel)

    def messages_received(self) -> int:
        """Publishes received by every channel, open or closed."""
        return self.counters["received"] + sum(ch.received for ch in self.channels)

    def connection_closed(self, connection: object) -> None:
        for vhost in self.vhosts.values():
            vhost.connection_closed(connection)

    # --- flow control ---------------------------------------------------------------------

    def relieved(self) -> bool:
        """True once no consumed queue is above the low-water mark: publishers may go on."""
        for queue in list(self.overloaded):
            if queue.deleted or not queue.consumers or queue.ready_count < limits.FLOW_READY_LOW:
                self.overloaded.discard(queue)
        return not self.overloaded

    # --- timers --------------------------------------------------------------------------

    def watch_queue(self, queue: Queue, force: bool = False) -> None:
        """Queues with TTL or x-expires need ticks; plain queues cost nothing here."""
        if force or not queue.plain or queue.args.expires_ms is not None:
            self._timed_queues.add(queue)

    def unwatch_queue(self, queue: Queue) -> None:
        self._timed_queues.discard(queue)

    def next_deadline_ms(self) -> int | None:
        deadlines = [d for d in self._deadlines() if d is not None]
        return min(deadlines) if deadlines else None

    def _deadlines(self) -> list[int | None]:
        out: list[int | None] = [q.next_deadline_ms() for q in self._timed_queues]
        out.extend(v.delayed.next_deadline_ms() for v in self.vhosts.values())
        if self.leased:
            out.extend(ch.leases.next_deadline_ms() for ch in self.leased if ch.leases is not None)
        if any(ch.unacked for ch in self.channels):
            out.append(self._last_timeout_check_ms + limits.CONSUMER_TIMEOUT_CHECK_MS)
        return out

    def tick(self, now_ms: int | None = None) -> None:
        now = self.clock.monotonic_ms() if now_ms is None else now_ms
        self.turn.ms = now
        for vhost in self.vhosts.values():
            vhost.tick(now)
        if self.leased:
            for channel in list(self.leased):
                channel.expire_leases(now)
        for queue in list(self._timed_queues):
            if queue.tick(now):
                self.vhosts[queue.vhost.name].drop_queue(queue)
            elif not queue.deleted:
                queue.dispatch()
        if now - self._last_timeout_check_ms >= limits.CONSUMER_TIMEOUT_CHECK_MS:
            # Consumer timeouts are checked periodically (as RabbitMQ does), never per event:
            # a scan of every unacked delivery on each loop turn would cost O(unacked).
            self._last_timeout_check_ms = now
            for channel in list(self.channels):
                channel.tick(now)


def _topic_key(vhost: str, user: str, exchange: str) -> str:
    return json.dumps([vhost, user, exchange])
