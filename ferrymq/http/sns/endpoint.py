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

from ferrymq.core.vhost import VHost
from ferrymq.errors import ChannelError, ProtocolError
from ferrymq.http import aws_auth
from ferrymq.http.plane import PLANE
from ferrymq.http.sns import publishing, subscriptions, topics
from ferrymq.http.sns.bridge import Bridge
from ferrymq.http.sns.context import Context
from ferrymq.http.sns.state import SnsState
from ferrymq.http.sqs.context import Context as SqsContext
from ferrymq.protocols.aws import query
from ferrymq.protocols.aws.errors import AwsError
from ferrymq.protocols.sns import codec

log = logging.getLogger("ferrymq.http.sns")
routes = web.RouteTableDef()
STATE = web.AppKey("sns_state", SnsState)

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


def setup(app: web.Application) -> None:
    """The endpoint's state, made with the application (an aiohttp app is frozen once started):
    topics restored from disk get their AMQP bridges at start-up; HTTP deliveries end with the app."""
    plane = app[PLANE]
    sns = app[STATE] = SnsState(plane.broker)
    sns.base_url = f"http://{plane.settings.host}:{plane.settings.http_port}"
    sns.bridge = Bridge(plane, lambda vhost: _make(app, vhost, aws_auth.DEFAULT_REGION, sns.base_url, ""))

    async def start(app: web.Application) -> None:
        sns.bridge.attach_all()  # type: ignore[union-attr]

    async def close(app: web.Application) -> None:
        await sns.close()
    app.on_startup.append(start)
    app.on_cleanup.append(close)


def state(app: web.Application) -> SnsState:
    return app[STATE]


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


def _make(app: web.Application, vhost: VHost, region: str, base_url: str, user: str) -> Context:
    from ferrymq.http.sqs import endpoint as sqs  # here: it imports this module to dispatch

    queues = SqsContext(app[PLANE], sqs.state(app), vhost, sqs.ACCOUNT, region, base_url, user)
    return Context(queues, state(app))


async def _context(request: web.Request, signed: bool) -> Context:
    """The caller's context: who signed the request (aws_auth, service ``sns``); a link's GET is
    unsigned, its token or subscription ARN being the authority, and acts in vhost "/"."""
    plane = request.app[PLANE]
    who = await aws_auth.caller(request, codec.SERVICE) if signed else \
        aws_auth.Caller("", "/", aws_auth.DEFAULT_REGION)
    vhost = plane.broker.vhosts.get(who.vhost)
    if vhost is None:
        raise AwsError("AuthorizationErrorException", f"The vhost '{who.vhost}' of this access key "
                                                      "does not exist.")
    base = state(request.app).base_url = f"{request.scheme}://{request.host}"
    return _make(request.app, vhost, who.region, base, who.user)


async def run(request: web.Request, form: dict[str, str], signed: bool = True) -> web.Response:
    """One SNS action, answered in XML (an AWS error shape for whatever goes wrong)."""
    request_id = request.app[PLANE].broker.unique_token()
    action = form.get("Action", "")
    try:
        context = await _context(request, signed)  # who asks comes first
        action, params = codec.decode(form)
        handler = ACTIONS.get(action)
        if handler is None:
            raise AwsError("InvalidAction", f"The action {action} is not valid for this endpoint.")
        body = codec.encode(action, await handler(context, params), request_id)
        status = 200
    except AwsError as err:
        status, body = err.status, codec.encode_error(err, request_id)
    except (ChannelError, ProtocolError) as exc:  # a core refusal: the caller's mistake
        status, body = 400, codec.encode_error(
            AwsError("InvalidParameterException", f"Invalid parameter: {exc.detail}"), request_id)
    except Exception:
        log.exception("SNS request %s failed", action)
        status, body = 500, codec.encode_error(AwsError("InternalErrorException", "Internal error"),
                                               request_id)
    return web.Response(status=status, body=body, content_type="text/xml",
                        headers={"x-amzn-RequestId": request_id})


async def handle(request: web.Request) -> web.Response:
    """A POST the SQS endpoint found to be SNS's (is_sns_request)."""
    return await run(request, query.parse_form(await request.read()))


@routes.get("/sns")
async def link(request: web.Request) -> web.Response:
    """SubscribeURL / UnsubscribeURL: a GET with the action and its parameters in the query."""
    form = dict(request.query)
    if form.get("Action") not in LINK_ACTIONS:
        form["Action"] = form.get("Action") or "(none)"
        err = AwsError("InvalidAction", f"The action {form['Action']} is not valid for this link.")
        return web.Response(status=err.status, body=codec.encode_error(err, "0"), content_type="text/xml")
    return await run(request, form, signed=False)
