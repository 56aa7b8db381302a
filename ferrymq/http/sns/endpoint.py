"""SNS on the HTTP listener: forms POSTed to / with ``Version=2010-03-31`` (handed over by the SQS
endpoint, which owns POST /), and GET /sns for the SubscribeURL and UnsubscribeURL that SNS puts in
what it delivers (the token or the subscription ARN in them is the authority, as on AWS).

Requests are authorised as the SQS endpoint authorises them (loopback while no access keys are
configured, docs/aws.md).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ferrymq.errors import ChannelError, ProtocolError
from ferrymq.http.plane import PLANE
from ferrymq.http.sns import publishing, subscriptions, topics
from ferrymq.http.sns.context import Context
from ferrymq.http.sns.state import SnsState
from ferrymq.http.sqs.context import Context as SqsContext
from ferrymq.protocols.aws import query
from ferrymq.protocols.aws.errors import AwsError
from ferrymq.protocols.sns import codec

log = logging.getLogger("ferrymq.http.sns")
routes = web.RouteTableDef()
STATE = web.AppKey("sns_state", SnsState)

SqsContextOf = Callable[[web.Request], SqsContext]
Action = Callable[[Context, dict[str, Any]], Awaitable[dict[str, Any]]]
ACTIONS: dict[str, Action] = {
    "CreateTopic": topics.create_topic, "DeleteTopic": topics.delete_topic,
    "ListTopics": topics.list_topics, "GetTopicAttributes": topics.get_topic_attributes,
    "SetTopicAttributes": topics.set_topic_attributes, "TagResource": topics.tag_resource,
    "UntagResource": topics.untag_resource, "ListTagsForResource": topics.list_tags_for_resource,
    "Subscribe": subscriptions.subscribe, "ConfirmSubscription": subscriptions.confirm_subscription,
    "Unsubscribe": subscriptions.unsubscribe, "ListSubscriptions": subscriptions.list_subscriptions,
    "ListSubscriptionsByTopic": subscriptions.list_subscriptions_by_topic,
    "GetSubscriptionAttributes": subscriptions.get_subscription_attributes,
    "SetSubscriptionAttributes": subscriptions.set_subscription_attributes,
    "Publish": publishing.publish, "PublishBatch": publishing.publish_batch,
}
LINK_ACTIONS = ("ConfirmSubscription", "Unsubscribe")  # what GET /sns may do


def state(app: web.Application) -> SnsState:
    found = app.get(STATE)
    if found is None:
        found = app[STATE] = SnsState(app[PLANE].broker)
    return found


async def is_sns_request(request: web.Request) -> bool:
    """A form for SNS among the POSTs to / (SQS's JSON requests carry X-Amz-Target)."""
    if "X-Amz-Target" in request.headers:
        return False
    try:
        form = query.parse_form(await request.read())
    except (AwsError, UnicodeDecodeError):
        return False
    scope = codec.credential_scope(request.headers.get("Authorization", ""))
    return codec.is_sns_form(form, scope)


async def run(request: web.Request, form: dict[str, str], sqs_context: SqsContextOf) -> web.Response:
    """One SNS action, answered in XML (an AWS error shape for whatever goes wrong)."""
    request_id = request.app[PLANE].broker.unique_token()
    action = form.get("Action", "")
    try:
        action, params = codec.decode(form)
        handler = ACTIONS.get(action)
        if handler is None:
            raise AwsError("InvalidAction", f"The action {action} is not valid for this endpoint.")
        body = codec.encode(action, await handler(Context(sqs_context(request), state(request.app)), params), request_id)
        status = 200
    except AwsError as err:
        status, body = err.status, codec.encode_error(err, request_id)
    except (ChannelError, ProtocolError) as exc:  # a core refusal: the caller's mistake
        err = AwsError("InvalidParameterException", f"Invalid parameter: {exc.detail}")
        status, body = err.status, codec.encode_error(err, request_id)
    except Exception:
        log.exception("SNS request %s failed", action)
        err = AwsError("InternalErrorException", "Internal error")
        status, body = err.status, codec.encode_error(err, request_id)
    return web.Response(status=status, body=body, content_type="text/xml",
                        headers={"x-amzn-RequestId": request_id})


async def handle(request: web.Request, sqs_context: SqsContextOf) -> web.Response:
    """A POST the SQS endpoint found to be SNS's (is_sns_request), with its way to a caller's context."""
    return await run(request, query.parse_form(await request.read()), sqs_context)


@routes.get("/sns")
async def link(request: web.Request) -> web.Response:
    """SubscribeURL / UnsubscribeURL: a GET with the action and its parameters in the query."""
    form = dict(request.query)
    if form.get("Action") not in LINK_ACTIONS:
        form["Action"] = form.get("Action") or "(none)"
        err = AwsError("InvalidAction", f"The action {form['Action']} is not valid for this link.")
        return web.Response(status=err.status, body=codec.encode_error(err, "0"), content_type="text/xml")
    from ferrymq.http.sqs.endpoint import _context as sqs_context  # noqa: PLC0415 (it imports us)

    return await run(request, form, sqs_context)
