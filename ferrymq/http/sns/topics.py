"""Topics: CreateTopic (idempotent), DeleteTopic, ListTopics, Get/SetTopicAttributes and tags.

A topic is a durable fanout exchange of the topic's name in vhost "/", its SNS state kept in the
exchange argument ``x-sns-topic``: AMQP queues bound to the exchange receive every message published
to the topic, and the topic survives restarts with the exchange.
"""

from __future__ import annotations

import json
from typing import Any

from ferrymq import limits
from ferrymq.errors import AccessRefused
from ferrymq.http.sns.context import Context
from ferrymq.http.sqs.context import text
from ferrymq.protocols.aws.errors import AwsError
from ferrymq.protocols.sns import delivery_policy, names
from ferrymq.protocols.sns.topics import (
    ARGUMENT,
    EXCHANGE_TYPE,
    Topic,
    check_topic_attribute,
)


def attributes_param(params: dict[str, Any]) -> dict[str, str]:
    raw = params.get("Attributes") or {}
    if not isinstance(raw, dict):
        raise names.invalid_parameter("Attributes")
    return {str(k): "" if v is None else str(v) for k, v in raw.items()}


def _tags(params: dict[str, Any]) -> dict[str, str]:
    out = {}
    for tag in params.get("Tags") or []:
        if not isinstance(tag, dict) or not tag.get("Key"):
            raise names.invalid_parameter("Tags", "a tag needs a Key")
        key, value = str(tag["Key"]), str(tag.get("Value", ""))
        if len(key) > 128 or len(value) > 256:
            raise names.invalid_parameter("Tags", "keys are at most 128 characters, values 256")
        out[key] = value
    return out


def _new_topic(name: str, attributes: dict[str, str], tags: dict[str, str]) -> Topic:
    fifo = attributes.get("FifoTopic", "false").lower() == "true"
    names.check_topic_name(name, fifo)
    stored = {k: check_topic_attribute(k, v, fifo, creating=True) for k, v in attributes.items()}
    return Topic(attributes=stored, tags=tags)


async def create_topic(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    name = text(p, "Name") or ""
    attributes, tags = attributes_param(p), _tags(p)
    topic = _new_topic(name, attributes, tags)
    found = ctx.find(name)
    if found is not None:  # idempotent: the same attributes (and no other tags) get the same ARN
        _, existing = found
        if any(existing.attributes.get(k, "") != v for k, v in topic.attributes.items()):
            raise names.invalid_parameter("Attributes", "Topic already exists with different attributes")
        if tags and tags != existing.tags:
            raise names.invalid_parameter("Tags", "Topic already exists with different tags")
        return {"TopicArn": ctx.topic_arn(name)}
    if name in ctx.vhost.exchanges:
        raise names.invalid_parameter("Name", f"an exchange named {name} exists and is not a topic")
    try:
        ctx.vhost.declare_exchange(name, EXCHANGE_TYPE, durable=True,
                                   arguments={ARGUMENT: topic.dumps()})
    except AccessRefused:  # amq.* is the broker's
        raise names.invalid_parameter("Name", "the amq. prefix is reserved") from None
    ctx.state.attach(ctx.vhost, name)
    return {"TopicArn": ctx.topic_arn(name)}


async def delete_topic(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    try:
        ex, _ = ctx.topic(p)
    except AwsError as err:
        if err.shape == "NotFoundException":
            return {}  # as AWS: deleting a topic that is not there succeeds
        raise
    ctx.state.forget(ctx.vhost, ex.name)
    ctx.vhost.delete_exchange(ex.name)
    return {}


def topic_names(ctx: Context) -> list[str]:
    return sorted(name for name, ex in ctx.vhost.exchanges.items() if ARGUMENT in ex.arguments)


def page(items: list[Any], token: Any) -> tuple[list[Any], str | None]:
    """One page of ``limits.SNS_LIST_PAGE`` items from NextToken on (the token is an offset)."""
    start = 0
    if token:
        if not str(token).isdigit():
            raise names.invalid_parameter("NextToken")
        start = int(token)
    end = start + limits.SNS_LIST_PAGE
    return items[start:end], (str(end) if end < len(items) else None)


async def list_topics(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    chunk, token = page(topic_names(ctx), p.get("NextToken"))
    out: dict[str, Any] = {"Topics": [{"TopicArn": ctx.topic_arn(n)} for n in chunk]}
    if token is not None:
        out["NextToken"] = token
    return out


def _default_policy(arn: str, account: str) -> str:
    return json.dumps({"Version": "2008-10-17", "Id": "__default_policy_ID", "Statement": [{
        "Sid": "__default_statement_ID", "Effect": "Allow", "Principal": {"AWS": "*"},
        "Action": ["SNS:Publish", "SNS:Subscribe", "SNS:Receive", "SNS:GetTopicAttributes",
                   "SNS:SetTopicAttributes", "SNS:DeleteTopic", "SNS:AddPermission",
                   "SNS:RemovePermission", "SNS:ListSubscriptionsByTopic"],
        "Resource": arn, "Condition": {"StringEquals": {"AWS:SourceOwner": account}}}]},
        separators=(",", ":"))


async def get_topic_attributes(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ex, topic = ctx.topic(p)
    arn = ctx.topic_arn(ex.name)
    subs = topic.subscriptions.values()
    attrs = {"TopicArn": arn, "Owner": ctx.account, "DisplayName": "",
             "Policy": _default_policy(arn, ctx.account),
             "SubscriptionsConfirmed": str(sum(not s.pending for s in subs)),
             "SubscriptionsPending": str(sum(s.pending for s in subs)),
             "SubscriptionsDeleted": str(topic.deleted_subscriptions),
             "EffectiveDeliveryPolicy": topic.attributes.get("DeliveryPolicy")
             or delivery_policy.default_text(topic=True)}
    if topic.fifo:
        attrs.update(FifoTopic="true", ContentBasedDeduplication="false")
    attrs.update(topic.attributes)
    return {"Attributes": attrs}


async def set_topic_attributes(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ex, topic = ctx.topic(p)
    name = text(p, "AttributeName") or ""
    value = text(p, "AttributeValue", required=False) or ""
    topic.attributes[name] = check_topic_attribute(name, value, topic.fifo, creating=False)
    ctx.save(ex, topic)
    return {}


def _resource(ctx: Context, p: dict[str, Any]) -> tuple[Any, Topic]:
    try:
        return ctx.topic(p, "ResourceArn")
    except AwsError as err:
        if err.shape == "NotFoundException":
            raise AwsError("ResourceNotFound", "Resource does not exist") from None
        raise


async def tag_resource(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ex, topic = _resource(ctx, p)
    merged = dict(topic.tags, **_tags(p))
    if len(merged) > limits.SNS_TAGS_MAX:
        raise AwsError("TagLimitExceededException", "Could not complete request: tag quota of per "
                                                    "resource exceeded")
    topic.tags = merged
    ctx.save(ex, topic)
    return {}


async def untag_resource(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ex, topic = _resource(ctx, p)
    for key in p.get("TagKeys") or []:
        topic.tags.pop(str(key), None)
    ctx.save(ex, topic)
    return {}


async def list_tags_for_resource(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    _, topic = _resource(ctx, p)
    return {"Tags": [{"Key": k, "Value": v} for k, v in sorted(topic.tags.items())]}
