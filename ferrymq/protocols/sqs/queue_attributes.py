"""SQS queue attributes: which exist, their ranges and defaults, and what they are in the core.

An SQS queue is a FerryMQ queue. Its attributes are kept as the queue argument ``x-sqs-attributes``
(so they are stored with the queue and survive restarts), and those the core acts on are also
written as the core's own arguments: VisibilityTimeout -> ``x-delivery-lease``,
MessageRetentionPeriod -> ``x-message-ttl``, RedrivePolicy -> dead-lettering through the default
exchange with ``x-delivery-limit`` = maxReceiveCount - 1, FIFO -> ``x-message-groups`` and a
5-minute ``x-deduplication-window``. A queue declared over AMQP shows the same attributes, read
from those arguments.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ferrymq import limits
from ferrymq.protocols.aws.errors import AwsError, invalid
from ferrymq.protocols.sqs.names import FIFO_SUFFIX, is_fifo

ARGUMENT = "x-sqs-attributes"
TAGS_ARGUMENT = "x-sqs-tags"
MAX_TAGS = 50
DEFAULTS = {
    "DelaySeconds": "0", "MaximumMessageSize": str(limits.SQS_MESSAGE_MAX_BYTES),
    "MessageRetentionPeriod": "345600", "ReceiveMessageWaitTimeSeconds": "0",
    "VisibilityTimeout": "30", "SqsManagedSseEnabled": "true",
}
FIFO_DEFAULTS = {"FifoQueue": "true", "ContentBasedDeduplication": "false",
                 "DeduplicationScope": "queue", "FifoThroughputLimit": "perQueue"}
READ_ONLY = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed", "CreatedTimestamp", "LastModifiedTimestamp",
             "QueueArn")
FIFO_ONLY = ("FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit")


def _int_range(low: int, high: int) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = low - 1
        if not low <= number <= high:
            raise ValueError
        return str(number)
    return check


def _choice(*options: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in options:
            raise ValueError
        return value
    return check


def _text(value: str) -> str:
    return str(value)


def _boolean(value: str) -> str:
    if str(value).lower() not in ("true", "false"):
        raise ValueError
    return str(value).lower()


def _json_or_empty(value: str) -> str:
    if value != "":
        json.loads(value)
    return value


SETTABLE: dict[str, Callable[[str], str]] = {
    "DelaySeconds": _int_range(0, 900),
    "MaximumMessageSize": _int_range(1024, limits.SQS_MESSAGE_MAX_BYTES),
    "MessageRetentionPeriod": _int_range(60, 1_209_600),
    "ReceiveMessageWaitTimeSeconds": _int_range(0, 20),
    "VisibilityTimeout": _int_range(0, 43_200),
    "Policy": _json_or_empty, "RedrivePolicy": _json_or_empty, "RedriveAllowPolicy": _json_or_empty,
    "KmsMasterKeyId": _text, "KmsDataKeyReusePeriodSeconds": _int_range(60, 86_400),
    "SqsManagedSseEnabled": _boolean,
    "FifoQueue": _boolean, "ContentBasedDeduplication": _boolean,
    "DeduplicationScope": _choice("messageGroup", "queue"),
    "FifoThroughputLimit": _choice("perQueue", "perMessageGroupId"),
}


@dataclass(frozen=True, slots=True)
class Redrive:
    target: str  # the dead-letter queue's ARN
    max_receive_count: int


def validate(raw: dict[str, Any], name: str, creating: bool) -> dict[str, str]:
    """The attributes of a CreateQueue or SetQueueAttributes, checked and normalised."""
    fifo = is_fifo(name)
    out: dict[str, str] = {}
    for key, value in raw.items():
        check = SETTABLE.get(key)
        fifo_only = key in FIFO_ONLY and key != "FifoQueue"  # FifoQueue on a plain name: below
        if check is None or (fifo_only and not fifo) or (key == "FifoQueue" and not creating):
            raise AwsError("InvalidAttributeName", f"Unknown Attribute {key}.")
        try:
            out[key] = check(str(value) if not isinstance(value, str) else value)
        except ValueError:
            raise AwsError("InvalidAttributeValue", f"Invalid value for the parameter {key}.") from None
    if creating and (out.get("FifoQueue") == "true") != fifo:
        raise invalid("The name of a FIFO queue can only include alphanumeric characters, hyphens, "
                      f"or underscores, must end with {FIFO_SUFFIX} suffix and be 1 to 80 in length.")
    redrive = redrive_policy(out.get("RedrivePolicy", ""))
    if redrive is not None:  # AWS reads back its own form: compact JSON, maxReceiveCount a number
        out["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": redrive.target,
                                           "maxReceiveCount": redrive.max_receive_count},
                                          separators=(",", ":"))
    return out


def redrive_policy(text: str) -> Redrive | None:
    if not text:
        return None
    bad = invalid(f"Value {text} for parameter RedrivePolicy is invalid. Reason: Redrive policy is "
                  "not a valid JSON map with deadLetterTargetArn and maxReceiveCount (1 to 1000).")
    try:
        policy = json.loads(text)
        target, count = policy["deadLetterTargetArn"], int(policy["maxReceiveCount"])
    except (ValueError, KeyError, TypeError):
        raise bad from None
    if not isinstance(target, str) or not 1 <= count <= 1000:
        raise bad
    return Redrive(target, count)


def stored(arguments: dict[str, Any], name: str) -> dict[str, str]:
    """The queue's attributes: what was set over SQS, else what its core arguments say, else AWS's
    defaults."""
    out = dict(DEFAULTS)
    if is_fifo(name):
        out.update(FIFO_DEFAULTS)
    kept = arguments.get(ARGUMENT)
    if isinstance(kept, dict):
        out.update({k: v.decode() if isinstance(v, bytes) else str(v) for k, v in kept.items()})
        return {k: v for k, v in out.items() if v != ""}  # set to "" = removed: AWS lists it no more
    lease, ttl = arguments.get("x-delivery-lease"), arguments.get("x-message-ttl")
    if isinstance(lease, int) and not isinstance(lease, bool):
        out["VisibilityTimeout"] = str(max(0, min(43_200, lease // 1000)))
    if isinstance(ttl, int) and not isinstance(ttl, bool):
        out["MessageRetentionPeriod"] = str(max(60, min(1_209_600, ttl // 1000)))
    return out


def core_arguments(attributes: dict[str, str], fifo: bool, dead_letter_queue: str | None,
                   base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The core arguments for these attributes (``base``: the queue's other arguments, kept)."""
    args = {k: v for k, v in (base or {}).items() if k not in _MAPPED}
    args[ARGUMENT] = {k: v for k, v in attributes.items() if k not in READ_ONLY}
    visibility = int(attributes.get("VisibilityTimeout", "30"))
    if visibility:
        args["x-delivery-lease"] = visibility * 1000
    args["x-message-ttl"] = int(attributes.get("MessageRetentionPeriod", "345600")) * 1000
    redrive = redrive_policy(attributes.get("RedrivePolicy", ""))
    if redrive is not None and dead_letter_queue is not None:
        args["x-dead-letter-exchange"] = ""
        args["x-dead-letter-routing-key"] = dead_letter_queue
        args["x-delivery-limit"] = redrive.max_receive_count - 1
    if fifo:
        args["x-message-groups"] = True
        args["x-deduplication-window"] = limits.DEDUP_WINDOW_MS
    return args


_MAPPED = ("x-delivery-lease", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key",
           "x-delivery-limit", "x-message-groups", "x-deduplication-window", ARGUMENT)
