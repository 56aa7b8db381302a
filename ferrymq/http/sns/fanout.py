"""One published message to everyone who should get it: the topic's exchange (AMQP bindings),
then each confirmed subscription its filter policy lets through. Queue writes happen here, in the
caller's loop turn (the caller waits for their group commit); HTTP POSTs are returned to be started
after it."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ferrymq.core.exchange import Exchange
from ferrymq.core.message import Message
from ferrymq.http.sns.context import Context
from ferrymq.http.sqs.sending import publish as sqs_publish
from ferrymq.protocols.aws.attributes import Attribute
from ferrymq.protocols.aws.errors import AwsError
from ferrymq.protocols.sns import delivery_policy, envelope, filter_policy, names
from ferrymq.protocols.sns.topics import Subscription, Topic
from ferrymq.protocols.sqs import messages
from ferrymq.protocols.sqs import names as sqs_names

if TYPE_CHECKING:
    from ferrymq.http.sns.publishing import Published

log = logging.getLogger("ferrymq.http.sns")
MESSAGE_ID, TOPIC_ARN, SUBJECT = "x-sns-message-id", "x-sns-topic-arn", "x-sns-subject"


@dataclass(frozen=True, slots=True)
class Post:
    """An HTTP/S delivery to start once the publish is stored."""

    url: str
    headers: dict[str, str]
    body: str
    delays_s: list[float]
    dead_letter: str | None  # the queue ARN of the subscription's RedrivePolicy
    published: Published


def deliver(ctx: Context, ex: Exchange, topic: Topic, published: Published,
            to_exchange: bool = True) -> list[Post]:
    """Queue writes for ``published``; the HTTP POSTs to start once they are stored. ``to_exchange``
    is False for a message that came from the exchange (the bridge)."""
    if to_exchange and ex.has_bindings():
        _to_exchange(ctx, ex, published)
    docs: dict[str, Any] = {}
    posts = []
    for sub in list(topic.subscriptions.values()):
        if sub.pending or not _passes(ctx, sub, published, docs):
            continue
        if sub.protocol == "sqs":
            _to_queue(ctx, ex.name, sub, published)
        else:
            posts.append(_post(ctx, ex.name, topic, sub, published))
    return posts


def _to_exchange(ctx: Context, ex: Exchange, published: Published) -> None:
    shaped = messages.to_core(ex.name, published.text_for("default"), published.attributes,
                              message_id=published.message_id, sent_ms=ctx.now_ms(), sender=ctx.account,
                              group=published.group)
    headers = dict(shaped.props.headers or {})
    headers[MESSAGE_ID] = published.message_id
    headers[TOPIC_ARN] = ctx.topic_arn(ex.name)
    if published.subject is not None:
        headers[SUBJECT] = published.subject
    msg = Message(ex.name, "", shaped.body, shaped.props.with_changes(headers=headers), None)
    ctx.vhost.route_and_enqueue(ex, "", msg, skip=ctx.state.bridges(ex.name))


def _passes(ctx: Context, sub: Subscription, published: Published, docs: dict[str, Any]) -> bool:
    policy = ctx.state.policy(sub)
    if policy is None:
        return True
    scope = sub.scope
    if scope not in docs:
        docs[scope] = filter_policy.attribute_document(published.attributes) \
            if scope == filter_policy.ATTRIBUTES else filter_policy.body_document(published.message)
    return filter_policy.matches(policy, docs[scope])


def _body(ctx: Context, topic_name: str, sub: Subscription, published: Published) -> str:
    message = published.text_for(sub.protocol)
    if sub.raw:
        return message
    return envelope.notification(
        key=ctx.state.key, message_id=published.message_id, topic_arn=ctx.topic_arn(topic_name),
        subject=published.subject, message=message, wall_ms=ctx.now_ms(), base_url=ctx.base_url,
        subscription_arn=names.subscription_arn(ctx.topic_arn(topic_name), sub.id),
        attributes=published.attributes)


def _to_queue(ctx: Context, topic_name: str, sub: Subscription, published: Published) -> None:
    body = _body(ctx, topic_name, sub, published)
    attributes = published.attributes if sub.raw else {}
    if not enqueue(ctx, names.parse_queue_arn(sub.endpoint, ctx.account), body, attributes, published):
        dead_letter(ctx, sub.attributes.get("RedrivePolicy"), body, attributes, published)


def enqueue(ctx: Context, queue: str, body: str, attributes: dict[str, Attribute],
            published: Published) -> bool:
    """Into an SQS queue of this broker, as SendMessage would put it; False if it cannot take it."""
    q = ctx.vhost.queues.get(queue)
    if q is None or q.deleted:
        log.info("SNS: queue %s of a subscription does not exist; message %s not delivered",
                 queue, published.message_id)
        return False
    fifo = sqs_names.is_fifo(q.name)
    group = published.group if fifo else None
    dedup = (published.dedup or hashlib.sha256(body.encode()).hexdigest()) if fifo else None
    sequence = ctx.sqs.state.next_sequence(ctx.now_ms()) if fifo else None
    msg = messages.to_core(q.name, body, attributes, message_id=ctx.new_id(), sent_ms=ctx.now_ms(),
                           sender=ctx.account, group=group or (published.message_id if fifo else None),
                           dedup=dedup, sequence=sequence)
    try:
        sqs_publish(ctx.sqs, q, msg, 0)
    except AwsError as err:
        log.info("SNS: queue %s refused message %s: %s", queue, published.message_id, err)
        return False
    return True


def dead_letter(ctx: Context, redrive: str | None, body: str, attributes: dict[str, Attribute],
                published: Published) -> None:
    """A delivery that failed for good goes to the subscription's dead-letter queue, if it has one."""
    if not redrive:
        return
    try:
        target = json.loads(redrive)["deadLetterTargetArn"]
        queue = names.parse_queue_arn(target, ctx.account)
    except (ValueError, KeyError, TypeError, AwsError):
        return
    enqueue(ctx, queue, body, attributes, published)


def _post(ctx: Context, topic_name: str, topic: Topic, sub: Subscription, published: Published) -> Post:
    arn = names.subscription_arn(ctx.topic_arn(topic_name), sub.id)
    headers = envelope.http_headers(envelope.NOTIFICATION, published.message_id,
                                    ctx.topic_arn(topic_name), arn, sub.raw)
    policy = sub.attributes.get("DeliveryPolicy") or topic.attributes.get("DeliveryPolicy")
    return Post(sub.endpoint, headers, _body(ctx, topic_name, sub, published),
                delivery_policy.parse(policy).delays_s(), sub.attributes.get("RedrivePolicy"), published)


def post(ctx: Context, posts: list[Post]) -> None:
    for item in posts:
        def give_up(item: Post = item) -> None:
            dead_letter(ctx, item.dead_letter, item.body, item.published.attributes, item.published)
            ctx.sqs.plane.end_turn()
        ctx.state.http.send(item.url, item.headers, item.body, item.delays_s,
                            give_up if item.dead_letter else None)
