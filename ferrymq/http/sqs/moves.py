"""Dead-letter redrive: StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask.

A task moves the messages a dead-letter queue held when it started, to a destination queue or, by
default, back to the queue each came from (the core's ``x-first-death-queue``), at most
MaxNumberOfMessagesPerSecond. Each message is taken with a lease, published to its destination,
stored, and only then acked: a crash mid-move can repeat a message, never lose one.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ferrymq.core.queue import Queue
from ferrymq.http.sqs.context import Context, integer, text
from ferrymq.protocols.aws.errors import AwsError, invalid
from ferrymq.protocols.sqs import messages, names

STEP = 100  # messages moved between two waits for the store, when no rate is given
LEASE_MS = 60_000


@dataclass(slots=True)
class MoveTask:
    handle: str
    source: str
    destination: str | None
    rate: int | None
    to_move: int
    started_ms: int
    moved: int = 0
    status: str = "RUNNING"
    failure: str | None = None
    runner: asyncio.Task[None] | None = field(default=None, repr=False)

    def to_json(self, ctx: Context) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Status": self.status, "SourceArn": ctx.arn(self.source),
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move, "StartedTimestamp": self.started_ms}
        if self.status == "RUNNING":
            out["TaskHandle"] = self.handle
        if self.destination is not None:
            out["DestinationArn"] = ctx.arn(self.destination)
        if self.rate is not None:
            out["MaxNumberOfMessagesPerSecond"] = self.rate
        if self.failure:
            out["FailureReason"] = self.failure
        return out


def _queue_of_arn(ctx: Context, arn: str) -> Queue:
    q = ctx.vhost.queues.get(names.name_from_arn(arn))
    if q is None or q.deleted:
        raise AwsError("ResourceNotFoundException", f"The resource {arn} does not exist.")
    return q


def _move_one(ctx: Context, task: MoveTask, source: Queue) -> bool:
    """Move the head of the source; False when it is empty or the message has nowhere to go."""
    ch = ctx.state.channel(ctx.vhost)
    got = ch.get(source.name, False, lease_ms=LEASE_MS)
    if got is None:
        return False
    tag, _, msg, _ = got
    target = task.destination or messages.header_text(msg, messages.DEAD_SOURCE)
    if target is None or target not in ctx.vhost.queues:
        ch.set_lease(tag, 0)
        task.status, task.failure = "FAILED", f"no destination queue for message {msg.props.message_id}"
        return False
    ctx.vhost.publish("", target, msg.with_props(msg.props, "", target))
    ch.ack(tag, False)
    return True


async def _run(ctx: Context, task: MoveTask, source: Queue) -> None:
    try:
        while task.status == "RUNNING" and task.moved < task.to_move:
            step = min(task.rate or STEP, task.to_move - task.moved)
            done = 0
            while done < step and _move_one(ctx, task, source):
                done += 1
            task.moved += done
            await ctx.stored()
            if not done:
                break
            await asyncio.sleep(1 if task.rate else 0)
        if task.status == "RUNNING":
            task.status = "COMPLETED"
    except AwsError as err:
        task.status, task.failure = "FAILED", err.message


async def start_message_move_task(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    source = _queue_of_arn(ctx, text(p, "SourceArn") or "")
    if source.name not in ctx.vhost.dead_letter_sources():
        raise invalid("Source queue must be configured as a Dead Letter Queue.")
    dest_arn = text(p, "DestinationArn", required=False)
    destination = _queue_of_arn(ctx, dest_arn).name if dest_arn else None
    if any(t.source == source.name and t.status == "RUNNING" for t in ctx.state.moves.values()):
        raise AwsError("UnsupportedOperation", "There is already a task running. Only one active task "
                                               "is allowed for a source queue arn at a given time.")
    rate = integer(p, "MaxNumberOfMessagesPerSecond", 1, 500, None)
    handle = ctx.plane.broker.unique_token()
    task = MoveTask(handle, source.name, destination, rate, source.message_count, ctx.now_ms())
    ctx.state.moves[handle] = task
    task.runner = asyncio.get_running_loop().create_task(_run(ctx, task, source))
    return {"TaskHandle": handle}


async def list_message_move_tasks(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    source = _queue_of_arn(ctx, text(p, "SourceArn") or "")
    most = integer(p, "MaxResults", 1, 10, 1) or 1
    tasks = [t for t in ctx.state.moves.values() if t.source == source.name]
    tasks.sort(key=lambda t: t.started_ms, reverse=True)
    return {"Results": [t.to_json(ctx) for t in tasks[:most]]}


async def cancel_message_move_task(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    handle = text(p, "TaskHandle") or ""
    task = ctx.state.moves.get(handle)
    if task is None or task.status != "RUNNING":
        raise AwsError("ResourceNotFoundException", "Task does not exist or is not running.")
    task.status = "CANCELLED"
    return {"ApproximateNumberOfMessagesMoved": task.moved}
