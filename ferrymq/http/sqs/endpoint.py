"""POST / (and POST /<account>/<queue>): every SQS request, in either protocol, to its action.

Requests are authorised here, not by the management API's basic auth: on loopback any AWS
credentials are accepted while no access keys are configured (docs/aws.md).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ferrymq.errors import ChannelError, ProtocolError
from ferrymq.http import aws_auth
from ferrymq.http.plane import PLANE
from ferrymq.http.sns import endpoint as sns
from ferrymq.http.sqs import moves, permissions, queues, receiving, sending
from ferrymq.http.sqs.authorise import authorise
from ferrymq.http.sqs.context import Context
from ferrymq.http.sqs.state import SqsState
from ferrymq.protocols.aws import query
from ferrymq.protocols.aws.errors import AwsError
from ferrymq.protocols.sqs import codec

log = logging.getLogger("ferrymq.http.sqs")
routes = web.RouteTableDef()
STATE = web.AppKey("sqs_state", SqsState)
ACCOUNT = "000000000000"

Action = Callable[[Context, dict[str, Any]], Awaitable[dict[str, Any]]]
ACTIONS: dict[str, Action] = {
    "CreateQueue": queues.create_queue, "GetQueueUrl": queues.get_queue_url,
    "ListQueues": queues.list_queues, "DeleteQueue": queues.delete_queue,
    "GetQueueAttributes": queues.get_queue_attributes,
    "SetQueueAttributes": queues.set_queue_attributes,
    "TagQueue": queues.tag_queue, "UntagQueue": queues.untag_queue,
    "ListQueueTags": queues.list_queue_tags, "PurgeQueue": queues.purge_queue,
    "ListDeadLetterSourceQueues": queues.list_dead_letter_source_queues,
    "AddPermission": permissions.add_permission, "RemovePermission": permissions.remove_permission,
    "SendMessage": sending.send_message, "SendMessageBatch": sending.send_message_batch,
    "ReceiveMessage": receiving.receive_message, "DeleteMessage": receiving.delete_message,
    "DeleteMessageBatch": receiving.delete_message_batch,
    "ChangeMessageVisibility": receiving.change_message_visibility,
    "ChangeMessageVisibilityBatch": receiving.change_message_visibility_batch,
    "StartMessageMoveTask": moves.start_message_move_task,
    "ListMessageMoveTasks": moves.list_message_move_tasks,
    "CancelMessageMoveTask": moves.cancel_message_move_task,
}


def setup(app: web.Application) -> None:
    """The endpoint's state, made with the application (an aiohttp app is frozen once started)."""
    plane = app[PLANE]
    app[STATE] = SqsState(plane.broker, plane.broker.unique_token())


def state(app: web.Application) -> SqsState:
    return app[STATE]


async def _context(request: web.Request) -> Context:
    plane = request.app[PLANE]
    who = await aws_auth.caller(request, "sqs")
    vhost = plane.broker.vhosts.get(who.vhost)
    if vhost is None:
        raise AwsError("AccessDenied", f"The vhost '{who.vhost}' of this access key does not exist.")
    base = f"{request.scheme}://{request.host}"
    transport = request.transport
    return Context(plane, state(request.app), vhost, ACCOUNT, who.region, base, who.user,
                   gone=lambda: transport is None or transport.is_closing())


async def _decode(request: web.Request) -> codec.Request:
    body = await request.read()
    target = request.headers.get("X-Amz-Target")
    if target is not None:
        return codec.decode_json(target, body)
    form = query.parse_form(body)
    if request.query:
        form = dict(request.query, **form)
    if not form.get("QueueUrl") and request.path.count("/") == 2:
        form["QueueUrl"] = request.path  # the query protocol may post to the queue's own URL
    if not codec.is_sqs_query(form):
        raise AwsError("InvalidAction", f"The action {form.get('Action') or '(none)'} is not valid "
                                        "for this endpoint.")
    return codec.decode_query(form)


async def handle(request: web.Request) -> web.Response:
    if await sns.is_sns_request(request):  # SNS shares POST / (its forms: Version=2010-03-31)
        return await sns.handle(request)
    request_id = request.app[PLANE].broker.unique_token()
    protocol = codec.JSON if "X-Amz-Target" in request.headers else codec.QUERY
    try:
        context = await _context(request)  # who asks comes first: nothing is said to a stranger
        decoded = await _decode(request)
        action = ACTIONS.get(decoded.action)
        if action is None:
            raise AwsError("InvalidAction", f"The action {decoded.action} is not valid for this "
                                            "endpoint.")
        authorise(context, decoded.action, decoded.params)
        result = await action(context, decoded.params)
        status, headers, body = codec.encode(decoded, result, request_id)
    except AwsError as err:
        status, headers, body = codec.encode_error(protocol, err, request_id)
    except web.HTTPRequestEntityTooLarge:  # past the listener's body bound: read no further
        status, headers, body = codec.encode_error(protocol, AwsError(
            "RequestEntityTooLarge", "The request body is larger than the endpoint accepts."),
            request_id)
    except (ChannelError, ProtocolError) as exc:  # a core refusal: the caller's mistake
        status, headers, body = codec.encode_error(
            protocol, AwsError("InvalidParameterValue", exc.detail), request_id)
    except Exception:
        log.exception("SQS request failed")
        status, headers, body = codec.encode_error(protocol, AwsError(
            "InternalFailure", "The request processing has failed because of an unknown error, "
                               "exception or failure."), request_id)
    content_type = headers.pop("Content-Type")
    return web.Response(status=status, headers=headers, body=body, content_type=content_type)


routes.post("/")(handle)
routes.post("/{account:[0-9]{12}}/{queue}")(handle)
