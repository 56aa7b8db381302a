"""Subscriptions: Subscribe, ConfirmSubscription, Unsubscribe, ListSubscriptions(ByTopic) and
Get/SetSubscriptionAttributes.

An ``sqs`` subscription (an SQS queue of this broker, by ARN) is confirmed at once; an ``http`` or
``https`` one stays pending until the endpoint confirms it with the Token it was POSTed (visiting
SubscribeURL, or ConfirmSubscription). Subscriptions are stored with their topic (its exchange).
"""

from __future__ import annotations

from typing import Any

from ferrymq.core.exchange import Exchange
from ferrymq.http.sns.context import Context
from ferrymq.http.sns.topics import attributes_param, page, topic_names
from ferrymq.http.sqs.context import text
from ferrymq.protocols.sns import delivery_policy, envelope, names
from ferrymq.protocols.sns.topics import (
    PROTOCOLS,
    Subscription,
    Topic,
    check_subscription_attribute,
)

PENDING_ARN = "pending confirmation"  # what Subscribe answers for a pending subscription
PENDING_LISTED = "PendingConfirmation"  # what the List actions show instead of its ARN


def _endpoint(ctx: Context, topic: Topic, protocol: str, endpoint: str) -> None:
    if protocol == "sqs":
        queue = names.parse_queue_arn(endpoint, ctx.account)
        if names.is_fifo(queue) and not topic.fifo:
            raise names.invalid_parameter("Endpoint", "FIFO SQS Queues can not be subscribed to "
                                                      "standard SNS topics")
    elif topic.fifo:
        raise names.invalid_parameter("Protocol", "FIFO topics deliver to SQS queues only")
    elif not endpoint.startswith(f"{protocol}://") or len(endpoint) <= len(protocol) + 3:
        raise names.invalid_parameter("Endpoint", f"An {protocol} endpoint must be a URL "
                                                  f"starting with {protocol}://")


def _new(ctx: Context, topic: Topic, p: dict[str, Any]) -> Subscription:
    protocol = (text(p, "Protocol") or "").lower()
    if protocol not in PROTOCOLS:
        raise names.invalid_parameter("Protocol", f"FerryMQ delivers to {', '.join(PROTOCOLS)}")
    endpoint = text(p, "Endpoint", required=False) or ""
    _endpoint(ctx, topic, protocol, endpoint)
    sub = Subscription(ctx.new_id(), protocol, endpoint, ctx.account, pending=protocol != "sqs")
    for name, value in attributes_param(p).items():
        sub.attributes[name] = check_subscription_attribute(name, value, sub)
    return sub


async def subscribe(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ex, topic = ctx.topic(p)
    sub = _new(ctx, topic, p)
    existing = topic.find(sub.protocol, sub.endpoint)
    if existing is not None:
        if any(existing.attributes.get(k, "") != v for k, v in sub.attributes.items()):
            raise names.invalid_parameter("Attributes", "Subscription already exists with different "
                                                        "attributes")
        sub = existing
    else:
        if sub.pending:
            sub.token = ctx.state.broker.rng.getrandbits(512).to_bytes(64, "big").hex()
        topic.subscriptions[sub.id] = sub
        ctx.save(ex, topic)
        if sub.pending:
            _send_confirmation(ctx, ex.name, sub)
    arn = names.subscription_arn(ctx.topic_arn(ex.name), sub.id)
    show = not sub.pending or str(p.get("ReturnSubscriptionArn", "")).lower() == "true"
    return {"SubscriptionArn": arn if show else PENDING_ARN}


def _send_confirmation(ctx: Context, topic_name: str, sub: Subscription) -> None:
    arn = ctx.topic_arn(topic_name)
    message_id = ctx.new_id()
    body = envelope.confirmation(key=ctx.state.key, message_id=message_id, topic_arn=arn,
                                 token=sub.token, wall_ms=ctx.now_ms(), base_url=ctx.base_url)
    headers = envelope.http_headers(envelope.CONFIRMATION, message_id, arn, None, raw=False)
    retries = delivery_policy.parse(sub.attributes.get("DeliveryPolicy"))
    ctx.state.http.send(sub.endpoint, headers, body, retries.delays_s())


async def confirm_subscription(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ex, topic = ctx.topic(p)
    token = text(p, "Token") or ""
    for sub in topic.subscriptions.values():
        if sub.token and sub.token == token:
            if sub.pending:
                sub.pending = False
                ctx.save(ex, topic)
            return {"SubscriptionArn": names.subscription_arn(ctx.topic_arn(ex.name), sub.id)}
    raise names.invalid_parameter("Token")


def subscription(ctx: Context, p: dict[str, Any]) -> tuple[Exchange, Topic, Subscription]:
    arn = p.get("SubscriptionArn")
    if arn is None or arn == "":
        raise names.invalid_parameter("SubscriptionArn", "No value for required parameter")
    topic_name, sub_id = names.parse_subscription_arn(arn, ctx.region, ctx.account)
    found = ctx.find(topic_name)
    sub = found[1].subscriptions.get(sub_id) if found is not None else None
    if found is None or sub is None:
        raise names.not_found("Subscription")
    return found[0], found[1], sub


async def unsubscribe(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ex, topic, sub = subscription(ctx, p)
    del topic.subscriptions[sub.id]
    topic.deleted_subscriptions += 1
    ctx.save(ex, topic)
    return {}


def _listed(ctx: Context, name: str, sub: Subscription) -> dict[str, str]:
    arn = ctx.topic_arn(name)
    return {"SubscriptionArn": PENDING_LISTED if sub.pending else names.subscription_arn(arn, sub.id),
            "Owner": sub.owner, "Protocol": sub.protocol, "Endpoint": sub.endpoint, "TopicArn": arn}


def _list(ctx: Context, listed: list[dict[str, str]], token: Any) -> dict[str, Any]:
    chunk, next_token = page(listed, token)
    out: dict[str, Any] = {"Subscriptions": chunk}
    if next_token is not None:
        out["NextToken"] = next_token
    return out


async def list_subscriptions(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    listed = []
    for name in topic_names(ctx):
        found = ctx.find(name)
        if found is not None:
            listed += [_listed(ctx, name, s) for s in found[1].subscriptions.values()]
    return _list(ctx, listed, p.get("NextToken"))


async def list_subscriptions_by_topic(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ex, topic = ctx.topic(p)
    listed = [_listed(ctx, ex.name, s) for s in topic.subscriptions.values()]
    return _list(ctx, listed, p.get("NextToken"))


async def get_subscription_attributes(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ex, topic, sub = subscription(ctx, p)
    arn = ctx.topic_arn(ex.name)
    attrs = {"SubscriptionArn": names.subscription_arn(arn, sub.id), "TopicArn": arn,
             "Owner": sub.owner, "Protocol": sub.protocol, "Endpoint": sub.endpoint,
             "PendingConfirmation": "true" if sub.pending else "false",
             "ConfirmationWasAuthenticated": "true" if sub.protocol == "sqs" else "false",
             "RawMessageDelivery": "false", "SubscriptionPrincipal": f"arn:aws:iam::{ctx.account}:root"}
    if sub.protocol != "sqs":
        policy = sub.attributes.get("DeliveryPolicy") or topic.attributes.get("DeliveryPolicy")
        attrs["EffectiveDeliveryPolicy"] = policy or delivery_policy.default_text()
    attrs.update(sub.attributes)
    if sub.attributes.get("FilterPolicy"):
        attrs["FilterPolicyScope"] = sub.scope
    return {"Attributes": attrs}


async def set_subscription_attributes(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ex, topic, sub = subscription(ctx, p)
    name = text(p, "AttributeName") or ""
    value = text(p, "AttributeValue", required=False) or ""
    sub.attributes[name] = check_subscription_attribute(name, value, sub)
    if not value and name in ("FilterPolicy", "RedrivePolicy", "DeliveryPolicy"):
        del sub.attributes[name]  # an empty value removes it
    ctx.save(ex, topic)
    return {}
