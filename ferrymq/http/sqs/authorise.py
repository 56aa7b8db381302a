"""SQS requests signed by an access key act as the key's user: RabbitMQ's permissions apply to the
queue each action touches (ferrymq.core.permissions), refused with AWS's AccessDenied.

Sending needs write on the queue, receiving and settling read, creating, deleting and changing a
queue configure; listing and reading attributes need the vhost only. Requests without access keys
configured (loopback only, as guest) act as the broker and are not checked.
"""

from __future__ import annotations

from typing import Any

from ferrymq.core.permissions import CONFIGURE, READ, WRITE
from ferrymq.http.sqs.context import Context
from ferrymq.protocols.aws.errors import AwsError
from ferrymq.protocols.sqs import names

NEEDS = {
    "SendMessage": WRITE, "SendMessageBatch": WRITE,
    "ReceiveMessage": READ, "DeleteMessage": READ, "DeleteMessageBatch": READ,
    "ChangeMessageVisibility": READ, "ChangeMessageVisibilityBatch": READ, "PurgeQueue": READ,
    "CreateQueue": CONFIGURE, "DeleteQueue": CONFIGURE, "SetQueueAttributes": CONFIGURE,
    "TagQueue": CONFIGURE, "UntagQueue": CONFIGURE, "AddPermission": CONFIGURE,
    "RemovePermission": CONFIGURE,
}


def authorise(ctx: Context, action: str, params: dict[str, Any]) -> None:
    if not ctx.user:
        return
    access = ctx.plane.broker.access
    if access.vhost_refusal(ctx.user, ctx.vhost.name) is not None:
        raise denied(ctx, action, "*")
    kind = NEEDS.get(action)
    if kind is None:
        return
    name = _queue_name(ctx, action, params)
    if access.check(ctx.user, ctx.vhost.name, kind, "queue", name) is not None:
        raise denied(ctx, action, name)


def _queue_name(ctx: Context, action: str, params: dict[str, Any]) -> str:
    if action == "CreateQueue":
        return str(params.get("QueueName", ""))
    return names.name_from_url(params.get("QueueUrl"), ctx.account)  # type: ignore[arg-type]


def denied(ctx: Context, action: str, queue: str) -> AwsError:
    """AWS's AccessDenied wording for an identity-based refusal."""
    return AwsError("AccessDenied", f"User: arn:aws:iam::{ctx.account}:user/{ctx.user} is not authorized "
                                    f"to perform: sqs:{action} on resource: {ctx.arn(queue)} because no "
                                    f"identity-based policy allows the sqs:{action} action")
