"""Queue and consumer x-arguments: parsed and validated once, at declare time, as RabbitMQ does.

Texts follow RabbitMQ 3.10, e.g. ``PRECONDITION_FAILED - invalid arg 'x-max-length' for queue
'q' in vhost '/': {value_negative,-1}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferrymq import limits
from ferrymq.errors import PreconditionFailed

OVERFLOW_MODES = ("drop-head", "reject-publish", "reject-publish-dlx")
FSYNC_MODES = ("always", "never")  # x-fsync (FerryMQ extension): this queue's fsync policy
QUEUE_TYPES = ("classic", "quorum", "stream")


@dataclass(slots=True)
class QueueArgs:
    """The arguments the queue engine acts on; None means not set."""

    message_ttl_ms: int | None = None
    expires_ms: int | None = None
    max_length: int | None = None
    max_length_bytes: int | None = None
    overflow: str = "drop-head"
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    max_priority: int | None = None
    delivery_limit: int | None = None
    consumer_timeout_ms: int | None = None
    delivery_lease_ms: int | None = None  # FerryMQ extension: unacked past this goes back (core/lease)
    queue_type: str = "classic"
    single_active_consumer: bool = False
    message_groups: bool = False  # FerryMQ extension: FIFO per x-group-id header
    dedup_window_ms: int | None = None  # FerryMQ extension: drop repeats of a message id
    fsync: str | None = None  # FerryMQ extension: "always" / "never" overrides the broker's policy

    @property
    def fifo(self) -> bool:
        """Groups or deduplication need the FIFO queue kind (ferrymq.core.fifo)."""
        return self.message_groups or self.dedup_window_ms is not None

    @property
    def counts_deliveries(self) -> bool:
        """Redeliveries carry ``x-delivery-count``: always on quorum queues (RabbitMQ 3.10), and on
        any queue with a delivery limit (a FerryMQ extension on classic queues)."""
        return self.delivery_limit is not None or self.queue_type == "quorum"

    @property
    def plain(self) -> bool:
        """True when no argument needs per-message work: the queue takes its fast path."""
        return (
            self.message_ttl_ms is None
            and self.max_length is None
            and self.max_length_bytes is None
            and self.max_priority is None
            and self.delivery_limit is None
        )


def _where(queue: str, vhost: str) -> str:
    return f"for queue '{queue}' in vhost '{vhost}'"


def _int_arg(
    args: dict[str, Any], key: str, queue: str, vhost: str, *, minimum: int = 0
) -> int | None:
    if key not in args:
        return None
    value = args[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise PreconditionFailed(
            f"invalid arg '{key}' {_where(queue, vhost)}: {{unacceptable_type,{_erl_type(value)}}}"
        )
    if value < minimum:
        tag = "value_negative" if value < 0 else "value_zero"
        raise PreconditionFailed(f"invalid arg '{key}' {_where(queue, vhost)}: {{{tag},{value}}}")
    return value


def _bounded_arg(
    args: dict[str, Any], key: str, queue: str, vhost: str, minimum: int, maximum: int
) -> int | None:
    value = _int_arg(args, key, queue, vhost, minimum=minimum)
    if value is not None and value > maximum:
        raise PreconditionFailed(
            f"invalid arg '{key}' {_where(queue, vhost)}: {{value_too_large,{value},{maximum}}}")
    return value


def _str_arg(args: dict[str, Any], key: str, queue: str, vhost: str) -> str | None:
    if key not in args:
        return None
    value = args[key]
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str):
        raise PreconditionFailed(
            f"invalid arg '{key}' {_where(queue, vhost)}: {{unacceptable_type,{_erl_type(value)}}}"
        )
    return value


def _erl_type(value: Any) -> str:
    """The type name RabbitMQ prints for an unacceptable argument value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str | bytes):
        return "longstr"
    return "table" if isinstance(value, dict) else "array"


def parse_queue_args(args: dict[str, Any], queue: str, vhost: str) -> QueueArgs:
    """Validate ``args`` the way RabbitMQ does on queue.declare; unknown keys are kept, not acted on."""
    out = QueueArgs()
    out.message_ttl_ms = _int_arg(args, "x-message-ttl", queue, vhost)
    out.expires_ms = _int_arg(args, "x-expires", queue, vhost, minimum=1)
    out.max_length = _int_arg(args, "x-max-length", queue, vhost)
    out.max_length_bytes = _int_arg(args, "x-max-length-bytes", queue, vhost)
    out.delivery_limit = _int_arg(args, "x-delivery-limit", queue, vhost)
    out.consumer_timeout_ms = _int_arg(args, "x-consumer-timeout", queue, vhost, minimum=1)
    out.delivery_lease_ms = _bounded_arg(args, "x-delivery-lease", queue, vhost, 1,
                                         limits.DELIVERY_LEASE_MAX_MS)
    out.max_priority = _bounded_arg(args, "x-max-priority", queue, vhost, 0, limits.PRIORITY_MAX)
    overflow = _str_arg(args, "x-overflow", queue, vhost)
    if overflow is not None:
        if overflow not in OVERFLOW_MODES:
            raise PreconditionFailed(
                f"invalid arg 'x-overflow' {_where(queue, vhost)}: {{invalid_value,{overflow}}}"
            )
        out.overflow = overflow
    out.dead_letter_exchange = _str_arg(args, "x-dead-letter-exchange", queue, vhost)
    out.dead_letter_routing_key = _str_arg(args, "x-dead-letter-routing-key", queue, vhost)
    if out.dead_letter_routing_key is not None and out.dead_letter_exchange is None:
        raise PreconditionFailed(
            f"invalid arg 'x-dead-letter-routing-key' {_where(queue, vhost)}: "
            "Key x-dead-letter-exchange should be set if x-dead-letter-routing-key is set"
        )
    qtype = _str_arg(args, "x-queue-type", queue, vhost)
    if qtype is not None:
        if qtype not in QUEUE_TYPES:
            raise PreconditionFailed(
                f"invalid arg 'x-queue-type' {_where(queue, vhost)}: {{unsupported_queue_type,{qtype}}}"
            )
        out.queue_type = qtype
    out.dedup_window_ms = _int_arg(args, "x-deduplication-window", queue, vhost, minimum=1)
    groups = args.get("x-message-groups")
    out.message_groups = groups if isinstance(groups, bool) else False
    sac = args.get("x-single-active-consumer")
    out.single_active_consumer = bool(sac) if isinstance(sac, bool) else False
    out.fsync = _str_arg(args, "x-fsync", queue, vhost)
    if out.fsync is not None and out.fsync not in FSYNC_MODES:
        raise PreconditionFailed(
            f"invalid arg 'x-fsync' {_where(queue, vhost)}: {{invalid_value,{out.fsync}}}")
    return out


def consumer_priority(args: dict[str, Any]) -> int:
    value = args.get("x-priority", 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
