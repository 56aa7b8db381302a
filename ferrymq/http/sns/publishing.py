"""Publish and PublishBatch: validate as SNS does, then fan out through the core.

Each message goes (1) to the topic's exchange, so AMQP queues bound to it receive the body with the
message attributes as headers (plus ``x-sns-message-id``, ``x-sns-topic-arn``, ``x-sns-subject``);
(2) to every confirmed subscription whose filter policy passes it: into an ``sqs`` subscription's
queue through the core's publish path (the notification envelope, or the raw body and attributes
with RawMessageDelivery), and to an ``http``/``https`` endpoint as a POST. Publish answers once the
group commit covering every queue write is on disk; HTTP deliveries start after that.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ferrymq import limits
from ferrymq.core.exchange import Exchange
from ferrymq.http.sns import fanout
from ferrymq.http.sns.context import Context
from ferrymq.http.sqs.context import text
from ferrymq.http.sqs.sending import failed
from ferrymq.protocols.aws.attributes import Attribute, parse_attributes
from ferrymq.protocols.aws.batch import BAD_ID_TEXT, check_ids
from ferrymq.protocols.aws.errors import AwsError
from ferrymq.protocols.sns import names
from ferrymq.protocols.sns.topics import Topic

_SUBJECT = re.compile(r"[\x20-\x7e]{1,100}")


@dataclass(slots=True)
class Published:
    """One message as validated: what each subscription's delivery is built from."""

    message_id: str
    message: str
    subject: str | None
    attributes: dict[str, Attribute]
    variants: dict[str, str] = field(default_factory=dict)  # MessageStructure=json: protocol -> text
    group: str | None = None
    dedup: str | None = None

    def text_for(self, protocol: str) -> str:
        return self.variants.get(protocol, self.variants.get("default", self.message))


def _attributes(p: dict[str, Any]) -> dict[str, Attribute]:
    try:
        attributes = parse_attributes(p.get("MessageAttributes"))
    except AwsError as err:  # SQS's checks, SNS's error shape
        raise AwsError("InvalidParameterValueException", err.message) from None
    for name, attr in attributes.items():
        if attr.data_type == "String.Array" and not _json_array(str(attr.value)):
            raise AwsError("InvalidParameterValueException", f"The message attribute '{name}' has an "
                                                             "invalid message attribute type, the set "
                                                             "of supported type prefixes is Binary, "
                                                             "Number, and String.")
    return attributes


def _json_array(value: str) -> bool:
    try:
        return isinstance(json.loads(value), list)
    except ValueError:
        return False


def _variants(p: dict[str, Any], message: str) -> dict[str, str]:
    structure = p.get("MessageStructure")
    if structure is None or structure == "":
        return {}
    if structure != "json":
        raise names.invalid_parameter("MessageStructure")
    try:
        doc = json.loads(message)
    except ValueError:
        raise names.invalid_parameter("Message Structure - JSON message body failed to parse") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("default"), str):
        raise names.invalid_parameter("Message Structure - No default entry in JSON message body")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in doc.items()}


def _fifo(p: dict[str, Any], topic: Topic, message: str) -> tuple[str | None, str | None]:
    group = text(p, "MessageGroupId", required=False)
    dedup = text(p, "MessageDeduplicationId", required=False)
    if not topic.fifo:
        if dedup is not None:
            raise names.invalid_parameter("MessageDeduplicationId", "The request includes "
                                          "MessageDeduplicationId parameter that is not valid for "
                                          "this topic type")
        return group, None
    if not group:
        raise names.invalid_parameter("MessageGroupId", "The MessageGroupId parameter is required "
                                                        "for FIFO topics")
    if dedup is None:
        if topic.attributes.get("ContentBasedDeduplication") != "true":
            raise names.invalid_parameter("MessageDeduplicationId", "The topic should either have "
                                          "ContentBasedDeduplication enabled or MessageDeduplicationId "
                                          "provided explicitly")
        dedup = hashlib.sha256(message.encode()).hexdigest()
    return group, dedup


def prepare(ctx: Context, topic: Topic, p: dict[str, Any]) -> Published:
    message = p.get("Message")
    if not isinstance(message, str) or message == "":
        raise names.invalid_parameter("Message", "Empty message")
    subject = text(p, "Subject", required=False)
    if subject is not None and not _SUBJECT.fullmatch(subject):
        raise names.invalid_parameter("Subject", "Subject must be 1 to 100 printable ASCII "
                                                 "characters with no line breaks")
    attributes = _attributes(p)
    size = len(message.encode()) + sum(len(n.encode()) + a.size for n, a in attributes.items())
    if size > limits.SNS_MESSAGE_MAX_BYTES:
        raise names.invalid_parameter("Message too long")
    variants = _variants(p, message)
    group, dedup = _fifo(p, topic, message)
    return Published(ctx.new_id(), message, subject, attributes, variants, group, dedup)


def _target(ctx: Context, p: dict[str, Any]) -> tuple[Exchange, Topic]:
    if p.get("PhoneNumber"):
        raise names.invalid_parameter("PhoneNumber", "FerryMQ does not send SMS")
    topic_arn, target_arn = p.get("TopicArn"), p.get("TargetArn")
    if topic_arn and target_arn:
        raise names.invalid_parameter("TopicArn or TargetArn", "Only one of them may be specified")
    if target_arn:
        return ctx.topic(p, "TargetArn")
    if not topic_arn:
        raise names.invalid_parameter("TopicArn or TargetArn", "No value for required parameter")
    return ctx.topic(p)


def _reply(ctx: Context, topic: Topic, published: Published) -> dict[str, Any]:
    reply = {"MessageId": published.message_id}
    if topic.fifo:
        reply["SequenceNumber"] = ctx.sqs.state.next_sequence(ctx.now_ms())
    return reply


def _deliver(ctx: Context, ex: Exchange, topic: Topic, published: Published) -> list[fanout.Post]:
    """Fan out, unless a FIFO topic saw the deduplication id in the last 5 minutes (then the reply
    carries the first publish's MessageId, as AWS's)."""
    if published.dedup is not None:
        first = ctx.state.duplicate(ex.name, published.dedup, published.message_id, ctx.sqs.mono_ms())
        if first is not None:
            published.message_id = first
            return []
    return fanout.deliver(ctx, ex, topic, published)


async def publish(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ex, topic = _target(ctx, p)
    published = prepare(ctx, topic, p)
    posts = _deliver(ctx, ex, topic, published)
    await ctx.stored()
    fanout.post(ctx, posts)
    return _reply(ctx, topic, published)


def _entries(p: dict[str, Any]) -> list[dict[str, Any]]:
    entries = p.get("PublishBatchRequestEntries")
    if not entries:
        raise AwsError("EmptyBatchRequestException", "The batch request doesn't contain any entries")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise names.invalid_parameter("PublishBatchRequestEntries")
    if len(entries) > limits.SNS_BATCH_MAX_ENTRIES:
        raise AwsError("TooManyEntriesInBatchRequestException",
                       f"The batch request contains more entries than permissible "
                       f"({limits.SNS_BATCH_MAX_ENTRIES}).")
    check_ids(entries, AwsError("InvalidBatchEntryIdException", BAD_ID_TEXT),
              lambda _: AwsError("BatchEntryIdsNotDistinctException", "Two or more batch entries in the "
                                                                      "request have the same Id."))
    if sum(len(str(e.get("Message", "")).encode()) for e in entries) > limits.SNS_MESSAGE_MAX_BYTES:
        raise AwsError("BatchRequestTooLongException", "The length of all the messages put together "
                                                       "is more than the limit.")
    return entries


async def publish_batch(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ex, topic = ctx.topic(p)
    ok: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    posts: list[fanout.Post] = []
    for entry in _entries(p):
        try:
            published = prepare(ctx, topic, entry)
        except AwsError as err:
            bad.append(failed(entry["Id"], err))
            continue
        posts += _deliver(ctx, ex, topic, published)
        ok.append(dict(_reply(ctx, topic, published), Id=entry["Id"]))
    if ok:
        await ctx.stored()
    fanout.post(ctx, posts)
    return {"Successful": ok, "Failed": bad}
