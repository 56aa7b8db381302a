"""AddPermission and RemovePermission: statements kept in the queue's Policy, as SQS keeps them.
(Stored and shown; FerryMQ's own permissions, issue 16, decide who may act.)"""

from __future__ import annotations

import json
from typing import Any

from ferrymq.http.sqs.context import Context, names_list, text
from ferrymq.http.sqs.queues import set_queue_attributes
from ferrymq.protocols.aws.errors import invalid, missing
from ferrymq.protocols.sqs import queue_attributes as qa


def _policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    q = ctx.queue(p)
    raw = qa.stored(q.arguments, q.name).get("Policy", "")
    policy = json.loads(raw) if raw else {}
    if not isinstance(policy, dict):
        policy = {}
    policy.setdefault("Version", "2012-10-17")
    policy.setdefault("Id", f"{ctx.arn(q.name)}/SQSDefaultPolicy")
    policy.setdefault("Statement", [])
    return policy


async def _store(ctx: Context, p: dict[str, Any], policy: dict[str, Any]) -> None:
    text_ = json.dumps(policy, separators=(",", ":")) if policy["Statement"] else ""
    await set_queue_attributes(ctx, {"QueueUrl": p["QueueUrl"], "Attributes": {"Policy": text_}})


async def add_permission(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    label = text(p, "Label") or ""
    accounts, actions = names_list(p, "AWSAccountIds"), names_list(p, "Actions")
    if not accounts:
        raise missing("AWSAccountIds")
    if not actions:
        raise missing("Actions")
    policy = _policy(ctx, p)
    if any(s.get("Sid") == label for s in policy["Statement"]):
        raise invalid(f"Value {label} for parameter Label is invalid. Reason: Already exists.")
    policy["Statement"].append({
        "Sid": label, "Effect": "Allow",
        "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]},
        "Action": [f"SQS:{a}" for a in actions], "Resource": ctx.arn(ctx.queue(p).name)})
    await _store(ctx, p, policy)
    return {}


async def remove_permission(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    label = text(p, "Label") or ""
    policy = _policy(ctx, p)
    kept = [s for s in policy["Statement"] if s.get("Sid") != label]
    if len(kept) == len(policy["Statement"]):
        raise invalid(f"Value {label} for parameter Label is invalid. Reason: can't find label.")
    policy["Statement"] = kept
    await _store(ctx, p, policy)
    return {}
