"""SQS queue actions: create, find, list, delete, attributes, tags, purge, permissions, DLQ sources."""

from __future__ import annotations

import base64
import json
from typing import Any

from ferrymq import limits
from ferrymq.core.queue import Queue
from ferrymq.http.lookup import HTTP_CONNECTION
from ferrymq.http.sqs.context import Context, integer, names_list, text
from ferrymq.protocols.aws.errors import AwsError, invalid
from ferrymq.protocols.sqs import names
from ferrymq.protocols.sqs import queue_attributes as qa

CREATED, MODIFIED = "x-sqs-created", "x-sqs-modified"


def attributes_of(ctx: Context, q: Queue) -> dict[str, str]:
    """Every attribute GetQueueAttributes can name, as strings."""
    out = qa.stored(q.arguments, q.name)
    now_s = ctx.now_ms() // 1000
    delayed = sum(1 for item in ctx.vhost.delayed.items() if not item[0] and item[1] == q.name)
    out.update({
        "ApproximateNumberOfMessages": str(q.message_count),
        "ApproximateNumberOfMessagesNotVisible": str(q.unacked_count),
        "ApproximateNumberOfMessagesDelayed": str(delayed),
        "CreatedTimestamp": str(q.arguments.get(CREATED, now_s)),
        "LastModifiedTimestamp": str(q.arguments.get(MODIFIED, q.arguments.get(CREATED, now_s))),
        "QueueArn": ctx.arn(q.name),
    })
    return out


def _dead_letter_target(ctx: Context, name: str, attrs: dict[str, str]) -> str | None:
    """The DLQ a RedrivePolicy names, which must exist, be of the same kind and allow us."""
    redrive = qa.redrive_policy(attrs.get("RedrivePolicy", ""))
    if redrive is None:
        return None
    target = names.name_from_arn(redrive.target)
    dlq = ctx.vhost.queues.get(target)
    reason = None
    if dlq is None:
        reason = "Dead letter target does not exist."
    elif names.is_fifo(target) != names.is_fifo(name):
        reason = "Dead-letter queue must be same type of queue as the source."
    elif not _allows(qa.stored(dlq.arguments, target).get("RedriveAllowPolicy", ""), ctx.arn(name)):
        reason = "Dead-letter queue does not allow this queue as a source (RedriveAllowPolicy)."
    if reason:
        raise invalid(f"Value {attrs['RedrivePolicy']} for parameter RedrivePolicy is invalid. "
                      f"Reason: {reason}")
    return target


def _allows(policy_text: str, source_arn: str) -> bool:
    if not policy_text:
        return True
    try:
        policy = json.loads(policy_text)
    except ValueError:
        return True
    permission = policy.get("redrivePermission", "allowAll") if isinstance(policy, dict) else "allowAll"
    if permission == "denyAll":
        return False
    return permission != "byQueue" or source_arn in (policy.get("sourceQueueArns") or [])


async def create_queue(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    name = text(p, "QueueName") or ""
    names.check_name(name)
    raw = p.get("Attributes") or {}
    if not isinstance(raw, dict):
        raise invalid("Attributes must be a map.")
    attrs = qa.validate(raw, name, creating=True)
    existing = ctx.vhost.queues.get(name)
    if existing is not None and not existing.deleted:
        current = qa.stored(existing.arguments, name)
        for key, value in attrs.items():
            if current.get(key) != value:
                raise AwsError("QueueNameExists", "A queue already exists with the same name and a "
                                                  f"different value for attribute {key}")
        return {"QueueUrl": ctx.url(name)}
    deleted_at = ctx.state.deleted.get((ctx.vhost.name, name))
    if deleted_at is not None and ctx.mono_ms() - deleted_at < limits.SQS_RECENT_DELETE_S * 1000:
        raise AwsError("QueueDeletedRecently", "You must wait 60 seconds after deleting a queue "
                                               "before you can create another with the same name.")
    full = {**qa.DEFAULTS, **(qa.FIFO_DEFAULTS if names.is_fifo(name) else {}), **attrs}
    args = qa.core_arguments(full, names.is_fifo(name), _dead_letter_target(ctx, name, full))
    args[CREATED] = args[MODIFIED] = ctx.now_ms() // 1000
    tags = _tags(p.get("tags") or p.get("Tags") or {})
    if tags:
        args[qa.TAGS_ARGUMENT] = tags
    ctx.vhost.declare_queue(name, connection=HTTP_CONNECTION, durable=True, arguments=args)
    ctx.plane.end_turn()
    return {"QueueUrl": ctx.url(name)}


async def get_queue_url(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    name = text(p, "QueueName") or ""
    owner = text(p, "QueueOwnerAWSAccountId", required=False)
    q = ctx.vhost.queues.get(name)
    if q is None or q.deleted or not names.valid_name(name) or owner not in (None, ctx.account):
        raise AwsError("QueueDoesNotExist", "The specified queue does not exist.")
    return {"QueueUrl": ctx.url(name)}


def visible(q: Queue) -> bool:
    """Queues SQS lists: any of the vhost's with a name SQS allows, not exclusive to a connection."""
    return not q.deleted and q.exclusive_owner is None and names.valid_name(q.name)


async def list_queues(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    prefix = text(p, "QueueNamePrefix", required=False) or ""
    most = integer(p, "MaxResults", 1, limits.SQS_LIST_MAX_RESULTS, None)
    after = _token(p.get("NextToken"))
    found = sorted(n for n, q in ctx.vhost.queues.items() if visible(q) and n.startswith(prefix))
    found = [n for n in found if n > after]
    page = found[: most or limits.SQS_LIST_MAX_RESULTS]
    out: dict[str, Any] = {"QueueUrls": [ctx.url(n) for n in page]} if page else {}
    if most is not None and len(found) > len(page):
        out["NextToken"] = base64.urlsafe_b64encode(page[-1].encode()).decode()
    return out


def _token(raw: Any) -> str:
    if not raw:
        return ""
    try:
        return base64.urlsafe_b64decode(str(raw).encode()).decode()
    except ValueError:
        raise invalid("Invalid NextToken value.") from None


async def delete_queue(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    q = ctx.queue(p)
    ctx.vhost.delete_queue(q.name, connection=q.exclusive_owner)
    ctx.state.deleted[(ctx.vhost.name, q.name)] = ctx.mono_ms()
    ctx.plane.end_turn()
    return {}


async def get_queue_attributes(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    q = ctx.queue(p)
    wanted = names_list(p, "AttributeNames")
    every = attributes_of(ctx, q)
    if "All" in wanted:
        return {"Attributes": every}
    out = {}
    for key in wanted:
        if key not in every and key not in qa.SETTABLE:
            raise AwsError("InvalidAttributeName", f"Unknown Attribute {key}.")
        if key in every:
            out[key] = every[key]
    return {"Attributes": out} if out else {}


async def set_queue_attributes(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    q = ctx.queue(p)
    raw = p.get("Attributes")
    if not isinstance(raw, dict):
        raise AwsError("MissingParameter", "The request must contain the parameter Attributes.")
    attrs = dict(qa.stored(q.arguments, q.name), **qa.validate(raw, q.name, creating=False))
    args = qa.core_arguments(attrs, names.is_fifo(q.name), _dead_letter_target(ctx, q.name, attrs),
                             base=q.arguments)
    args[MODIFIED] = ctx.now_ms() // 1000
    ctx.vhost.change_queue_arguments(q, args)
    ctx.plane.end_turn()
    return {}


def _tags(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise invalid("Tags must be a map of strings.")
    if len(raw) > qa.MAX_TAGS:
        raise invalid(f"Too many tags: at most {qa.MAX_TAGS}.")
    return {str(k): v for k, v in raw.items()}


def _set_tags(ctx: Context, q: Queue, tags: dict[str, str]) -> None:
    args = dict(q.arguments)
    args[qa.TAGS_ARGUMENT] = tags
    ctx.vhost.change_queue_arguments(q, args)
    ctx.plane.end_turn()


def current_tags(q: Queue) -> dict[str, str]:
    kept = q.arguments.get(qa.TAGS_ARGUMENT)
    if not isinstance(kept, dict):
        return {}
    return {str(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in kept.items()}


async def tag_queue(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    q = ctx.queue(p)
    tags = dict(current_tags(q), **_tags(p.get("Tags")))
    _set_tags(ctx, q, _tags(tags))
    return {}


async def untag_queue(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    q = ctx.queue(p)
    drop = set(names_list(p, "TagKeys"))
    _set_tags(ctx, q, {k: v for k, v in current_tags(q).items() if k not in drop})
    return {}


async def list_queue_tags(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    tags = current_tags(ctx.queue(p))
    return {"Tags": tags} if tags else {}


async def purge_queue(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    q = ctx.queue(p)
    key = (ctx.vhost.name, q.name)
    last = ctx.state.purged.get(key)
    if last is not None and ctx.mono_ms() - last < limits.SQS_PURGE_INTERVAL_S * 1000:
        raise AwsError("PurgeQueueInProgress", f"Only one PurgeQueue operation on {q.name} is allowed "
                                               "every 60 seconds.")
    ctx.state.purged[key] = ctx.mono_ms()
    ctx.vhost.purge_queue(q.name, q.exclusive_owner)
    ctx.plane.end_turn()
    return {}


async def list_dead_letter_source_queues(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    q = ctx.queue(p)
    sources = sorted(n for n, other in ctx.vhost.queues.items() if visible(other) and
                     other.args.dead_letter_routing_key == q.name and
                     other.args.dead_letter_exchange == "")
    most = integer(p, "MaxResults", 1, limits.SQS_LIST_MAX_RESULTS, None)
    after = _token(p.get("NextToken"))
    sources = [n for n in sources if n > after]
    page = sources[: most or limits.SQS_LIST_MAX_RESULTS]
    out: dict[str, Any] = {"queueUrls": [ctx.url(n) for n in page]}
    if most is not None and len(sources) > len(page):
        out["NextToken"] = base64.urlsafe_b64encode(page[-1].encode()).decode()
    return out
