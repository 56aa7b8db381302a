"""What the core asks of durable storage, as protocols: the store is passed in like the clock.

Why protocols here: the core stays pure (it imports no file I/O), yet a durable queue must say what
happened to its messages. It does so by calling a ``QueueStore`` whose writes are buffered and put
on disk by the shell once per loop turn; only paging a backlog back in reads synchronously.
``TopologyStore`` is told about durable exchanges, queues and bindings as they change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from ferrymq.core.message import Message


class StoredMessage(NamedTuple):
    """A message read back from a queue log: where it is, what it is, what happened to it."""

    offset: int
    msg: Message
    expires_wall_ms: int  # 0: never
    deliveries: int  # deliveries before this read (recovery: 1 if it was out, + requeues)


class QueueStore(Protocol):
    """One durable queue's log. Offsets identify messages; every append is buffered until the shell
    writes it, and counts as stored only after the fsync policy says so."""

    def log_publish(self, msg: Message, expires_wall_ms: int, transient: bool) -> int:
        """Append a message; returns its offset. ``transient`` ones are paged, never recovered."""
        ...

    def log_settle(self, offset: int) -> None:
        """The message left the queue for good (acked, expired, dead-lettered, dropped)."""
        ...

    def log_moved(self, offset: int) -> None:
        """The message left for other queues (dead-lettered, or a delayed message released). Its settle
        is logged only once a commit covers what this turn gave the other queues, so a crash or power
        cut in between leaves it in both (a duplicate), never in neither."""
        ...

    def log_requeue(self, offset: int) -> None:
        """A delivery came back: recovery counts it toward the delivery count."""
        ...

    def log_delivered(self, offset: int) -> None:
        """A message went out: after a crash it comes back as redelivered."""
        ...

    def drop_paged(self) -> None:
        """Every message of the paged tail is settled at once (purge)."""
        ...

    def start_paging(self) -> None:
        """Messages logged from now on form the paged tail that ``page_in`` reads in order."""
        ...

    def page_in(self, max_count: int, max_bytes: int) -> list[StoredMessage]:
        """The next messages of the paged tail, in publish order."""
        ...

    def recover(self, window: int) -> tuple[list[StoredMessage], int, int]:
        """Rebuild after a restart: (first ``window`` live messages, paged count, paged bytes)."""
        ...

    def drop(self) -> None:
        """The queue was deleted: its files go."""
        ...


class StreamHandle(Protocol):
    """One stream (a Kafka topic's partition 0) as an AMQP stream queue sees it."""

    @property
    def first_offset(self) -> int: ...

    @property
    def next_offset(self) -> int:
        """The offset the next appended message gets (buffered ones included)."""
        ...

    def append(self, msg: Message) -> None:
        """Buffered: written as one record batch per loop turn; readable after that."""
        ...

    def read(self, offset: int, max_count: int) -> list[tuple[int, Message]]:
        """Up to ``max_count`` (offset, message) from ``offset`` on, among what has been written."""
        ...

    def offset_for_time(self, timestamp_ms: int) -> int:
        """The first offset whose timestamp is at or after ``timestamp_ms``."""
        ...

    def watch(self, on_written: Any) -> None:
        """Call ``on_written()`` whenever new messages become readable (consumers wait for them)."""
        ...

    def delete(self) -> None: ...


class StreamBackend(Protocol):
    def open(self, vhost: str, name: str, arguments: dict[str, Any],
             partition: tuple[str, int] | None = None) -> StreamHandle:
        """The stream behind a queue declared with x-queue-type: stream (created if new, with the
        retention its arguments ask for: x-max-length-bytes, x-max-age, x-stream-max-segment-size-bytes).
        ``partition`` (topic, number): a super stream's partition queue (ferrymq.core.super_stream)."""
        ...

    def exchange_gone(self, topic: str) -> None:
        """A super stream's exchange was deleted (its topic goes with the last of its AMQP face)."""
        ...


class TopologyStore(Protocol):
    """Durable topology: told of every change to durable exchanges, queues and bindings."""

    def exchange_declared(self, vhost: str, name: str, type_: str, auto_delete: bool, internal: bool,
                          arguments: dict[str, Any]) -> None: ...

    def exchange_deleted(self, vhost: str, name: str) -> None: ...

    def exchange_arguments_changed(self, vhost: str, name: str, arguments: dict[str, Any]) -> None:
        """A stored exchange's arguments were changed in place (SNS topic attributes, subscriptions)."""

    def queue_declared(self, vhost: str, name: str, auto_delete: bool,
                       arguments: dict[str, Any]) -> QueueStore | None:
        """The new queue's message store, or None when nothing is kept (no data directory)."""
        ...

    def queue_deleted(self, vhost: str, name: str) -> None: ...

    def queue_arguments_changed(self, vhost: str, name: str, arguments: dict[str, Any]) -> None:
        """A stored queue's arguments were changed in place (SQS SetQueueAttributes)."""

    def binding_added(self, vhost: str, source: str, destination: str, to_exchange: bool,
                      routing_key: str, arguments: dict[str, Any]) -> None: ...

    def binding_removed(self, vhost: str, source: str, destination: str, to_exchange: bool,
                        routing_key: str, arguments: dict[str, Any]) -> None: ...

    def policy_set(self, vhost: str, name: str, policy: dict[str, Any]) -> None:
        """A policy was set (``policy``: RabbitMQ's JSON object for it); it must survive a restart."""

    def policy_cleared(self, vhost: str, name: str) -> None: ...

    # Vhosts, users and permissions made by an operator (management API, definitions). Deletions are
    # stored as tombstones, so a deleted configured user (Settings.users) or a cleared default
    # permission stays gone after a restart; deleting a user or vhost removes its permission rows.

    def vhost_added(self, name: str) -> None: ...

    def vhost_deleted(self, name: str) -> None: ...

    def user_set(self, name: str, password_hash: str, algorithm: str) -> None:
        """Never a plain password: RabbitMQ's salted hash (ferrymq.core.passwords)."""

    def user_deleted(self, name: str) -> None: ...

    def permission_set(self, vhost: str, user: str, permission: dict[str, str]) -> None: ...

    def scram_set(self, name: str, credentials: dict[str, str]) -> None:
        """A user's SCRAM credentials (mechanism -> ferrymq.core.scram's text: salt and keys, never
        the password); empty when the password came only as a hash."""

    def permission_cleared(self, vhost: str, user: str) -> None: ...

    def access_set(self, kind: str, key: str, value: Any) -> None:
        """A user's tags (kind "tags", key the user) or a topic permission (kind "topic", key
        JSON [vhost, user, exchange]); ``value`` None is a cleared one (a tombstone)."""

    def delayed_store(self, vhost: str) -> QueueStore | None:
        """Where a vhost's x-delayed-message exchanges keep persistent messages while they wait."""
        ...

    # Runtime parameters (definitions, operator policies: ferrymq.core.parameters), as RabbitMQ keeps
    # them: (component, vhost, name) -> a JSON value.

    def parameter_set(self, component: str, vhost: str, name: str, value: Any) -> None: ...

    def parameter_cleared(self, component: str, vhost: str, name: str) -> None: ...

    def limits_set(self, scope: str, name: str, values: dict[str, int]) -> None:
        """A vhost's or user's limits (ferrymq.core.vhost_limits), all of them; {} deletes them."""


class NoTopology:
    """Nothing is durable: a broker without a data directory (unit tests, ``--data-dir ''``)."""

    def exchange_declared(self, *args: Any) -> None:
        pass

    def exchange_deleted(self, *args: Any) -> None:
        pass

    def exchange_arguments_changed(self, *args: Any) -> None:
        pass

    def queue_declared(self, *args: Any) -> None:
        return None

    def queue_deleted(self, *args: Any) -> None:
        pass

    def queue_arguments_changed(self, *args: Any) -> None:
        pass

    def binding_added(self, *args: Any) -> None:
        pass

    def binding_removed(self, *args: Any) -> None:
        pass

    def policy_set(self, *args: Any) -> None:
        pass

    def policy_cleared(self, *args: Any) -> None:
        pass

    def vhost_added(self, *args: Any) -> None:
        pass

    def vhost_deleted(self, *args: Any) -> None:
        pass

    def access_set(self, *args: Any) -> None:
        pass

    def user_set(self, *args: Any) -> None:
        pass

    def user_deleted(self, *args: Any) -> None:
        pass

    def scram_set(self, *args: Any) -> None:
        pass

    def permission_set(self, *args: Any) -> None:
        pass

    def permission_cleared(self, *args: Any) -> None:
        pass

    def delayed_store(self, vhost: str) -> None:
        return None

    def parameter_set(self, *args: Any) -> None:
        pass

    def parameter_cleared(self, *args: Any) -> None:
        pass

    def limits_set(self, *args: Any) -> None:
        pass
