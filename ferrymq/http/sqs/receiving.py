"""ReceiveMessage (with long polling), DeleteMessage, ChangeMessageVisibility and their batches.

A receive takes messages through the vhost's SQS channel with a lease as long as the visibility
timeout (ferrymq.core.lease): delete acks the delivery, a visibility change re-leases it, and a
lease that runs out puts the message back with its receive count raised. A long poll registers a
consumer and waits for the queue to hand it something; it answers as soon as a message arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ferrymq import limits
from ferrymq.core.channel import Channel
from ferrymq.core.fifo import FifoQueue
from ferrymq.core.queue import Queue
from ferrymq.http.sqs.context import Context, integer, names_list, text
from ferrymq.http.sqs.sending import batch_entries, failed
from ferrymq.http.sqs.state import Poll, Taken
from ferrymq.protocols.aws.attributes import md5_of_attributes, md5_of_body
from ferrymq.protocols.aws.errors import AwsError
from ferrymq.protocols.sqs import messages, receipts
from ferrymq.protocols.sqs import queue_attributes as qa

SYSTEM = ("SenderId", "SentTimestamp", "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp",
          "SequenceNumber", "MessageDeduplicationId", "MessageGroupId", "AWSTraceHeader",
          "DeadLetterQueueSourceArn")


def _take_ready(ch: Channel, q: Queue, count: int, lease_ms: int) -> list[Taken]:
    taken: list[Taken] = []
    fifo = q if isinstance(q, FifoQueue) else None
    if fifo is not None:
        fifo.batch_groups = set()
    try:
        while len(taken) < count:
            got = ch.get(q.name, False, lease_ms=lease_ms)
            if got is None:
                break
            held = ch.unacked[got[0]]
            taken.append(Taken(got[0], q, held[1]))
    finally:
        if fifo is not None:
            fifo.batch_groups = None
    return taken


async def _poll(ctx: Context, ch: Channel, q: Queue, count: int, wait_s: int) -> list[Taken]:
    """Wait up to ``wait_s`` for the queue to deliver; whatever a turn delivered is taken at once."""
    tag = f"sqs-poll-{ctx.plane.broker.unique_token()}"
    poll = Poll(tag, q)
    ctx.state.polls[tag] = poll
    ch.prefetch_consumer = count
    try:
        ch.consume(q.name, tag, no_ack=False)
        ctx.plane.end_turn()
        try:
            await asyncio.wait_for(poll.woken.wait(), wait_s)
        except TimeoutError:
            pass
    except BaseException:
        _stop(ctx, ch, poll)
        _release(ch, poll.taken)
        raise
    _stop(ctx, ch, poll)
    if ctx.gone():  # woken for a caller that hung up (aiohttp does not cancel the handler)
        _release(ch, poll.taken)
        return []
    return poll.taken


def _release(ch: Channel, taken: list[Taken]) -> None:
    for t in taken:  # what the gone client was handed is visible again
        ch.set_lease(t.tag, 0)


def _stop(ctx: Context, ch: Channel, poll: Poll) -> None:
    ch.prefetch_consumer = 0
    if poll.consumer_tag in ch.consumers:
        ch.cancel(poll.consumer_tag)
    ctx.state.take_pending(ch, poll)
    ctx.state.polls.pop(poll.consumer_tag, None)


def _system_attributes(ctx: Context, t: Taken, wanted: list[str]) -> dict[str, str]:
    if not wanted:
        return {}
    msg = t.entry.msg
    every = "All" in wanted
    now = ctx.now_ms()
    values = {
        "SenderId": messages.header_text(msg, messages.SENDER) or ctx.account,
        "SentTimestamp": str(messages.sent_ms(msg, _enqueued_wall_ms(ctx, t, now), now)),
        "ApproximateReceiveCount": str(t.entry.deliveries),
        "ApproximateFirstReceiveTimestamp": str(ctx.state.first_received(t.entry, now)),
        "SequenceNumber": messages.header_text(msg, messages.SEQUENCE),
        "MessageDeduplicationId": _dedup_id(msg),
        "MessageGroupId": messages.header_text(msg, messages.GROUP),
        "AWSTraceHeader": messages.header_text(msg, messages.TRACE),
    }
    source = messages.header_text(msg, messages.DEAD_SOURCE)
    values["DeadLetterQueueSourceArn"] = ctx.arn(source) if source else None
    return {k: v for k, v in values.items() if v is not None and (every or k in wanted)}


def _enqueued_wall_ms(ctx: Context, t: Taken, now_ms: int) -> int | None:
    stamp = t.entry.enqueued_ms  # the turn's monotonic ms when the queue took it in; 0: unknown
    return now_ms - (ctx.mono_ms() - stamp) if stamp else None


def _dedup_id(msg: Any) -> str | None:
    value = messages.header_text(msg, messages.DEDUP)
    return value.rsplit("\x00", 1)[-1] if value is not None else None


def _message_json(ctx: Context, t: Taken, system: list[str], wanted: list[str]) -> dict[str, Any]:
    msg = t.entry.msg
    body = messages.body_text(msg)
    out: dict[str, Any] = {
        "MessageId": msg.props.message_id or f"{t.queue.name}-{t.entry.seq}",
        "ReceiptHandle": receipts.encode(receipts.Receipt(ctx.state.boot, t.tag, t.queue.name)),
        "MD5OfBody": md5_of_body(body), "Body": body,
    }
    attrs = _system_attributes(ctx, t, system)
    if attrs:
        out["Attributes"] = attrs
    chosen = messages.selected(messages.attributes_of(msg), wanted) if wanted else None
    if chosen:
        out["MessageAttributes"] = {k: a.to_json() for k, a in chosen.items()}
        out["MD5OfMessageAttributes"] = md5_of_attributes(chosen)
    return out


async def receive_message(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    q = ctx.queue(p)
    attrs = qa.stored(q.arguments, q.name)
    count = integer(p, "MaxNumberOfMessages", 1, limits.SQS_RECEIVE_MAX_MESSAGES, 1) or 1
    visibility = integer(p, "VisibilityTimeout", 0, limits.SQS_VISIBILITY_MAX_S,
                         int(attrs["VisibilityTimeout"]))
    wait = integer(p, "WaitTimeSeconds", 0, limits.SQS_WAIT_MAX_S,
                   int(attrs["ReceiveMessageWaitTimeSeconds"]))
    system = names_list(p, "AttributeNames") + names_list(p, "MessageSystemAttributeNames")
    wanted = names_list(p, "MessageAttributeNames")
    ch = ctx.state.channel(ctx.vhost)
    lease_ms = (visibility or 0) * 1000
    taken = _take_ready(ch, q, count, lease_ms)
    if not taken and wait:
        taken = await _poll(ctx, ch, q, count, wait)
        for t in taken:  # a poll's deliveries hold the queue's own lease: this receive's instead
            if lease_ms and lease_ms != q.lease_ms:
                ch.set_lease(t.tag, lease_ms)
    out = [_message_json(ctx, t, system, wanted) for t in taken]
    if not lease_ms:  # VisibilityTimeout 0: received, and visible again at once
        for t in taken:
            ch.set_lease(t.tag, 0)
    ctx.plane.end_turn()
    return {"Messages": out} if out else {}


def _held(ctx: Context, q: Queue, handle: Any) -> tuple[Channel, int] | None:
    """The SQS channel and delivery tag a receipt handle names, if that delivery is still in flight.
    A malformed handle, or one of another queue, is ReceiptHandleIsInvalid."""
    receipt = receipts.decode(handle)
    if receipt.queue != q.name:
        raise AwsError("ReceiptHandleIsInvalid", f"The input receipt handle \"{handle}\" is not a "
                                                 "valid receipt handle.")
    ch = ctx.state.channels.get(ctx.vhost.name)
    if ch is None or receipt.boot != ctx.state.boot:
        return None
    held = ch.unacked.get(receipt.tag)
    return (ch, receipt.tag) if held is not None and held[0] is q else None


def _delete(ctx: Context, q: Queue, handle: Any) -> None:
    found = _held(ctx, q, handle)
    if found is not None:  # else already deleted or visible again: AWS answers success too
        ch, tag = found
        ctx.state.forget(ch.unacked[tag][1])
        ch.ack(tag, False)


async def delete_message(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    q = ctx.queue(p)
    _delete(ctx, q, text(p, "ReceiptHandle"))
    ctx.plane.end_turn()
    return {}


def _each(ctx: Context, p: dict[str, Any], act: Callable[[Context, Queue, dict[str, Any]], None]
          ) -> dict[str, Any]:
    """A batch of deletes or visibility changes: each entry succeeds or fails on its own."""
    q = ctx.queue(p)
    ok, bad = [], []
    for entry in batch_entries(p):
        try:
            act(ctx, q, entry)
        except AwsError as err:
            bad.append(failed(entry["Id"], err))
            continue
        ok.append({"Id": entry["Id"]})
    ctx.plane.end_turn()
    return {"Successful": ok, "Failed": bad}


async def delete_message_batch(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return _each(ctx, p, lambda c, q, entry: _delete(c, q, text(entry, "ReceiptHandle")))


def _change(ctx: Context, q: Queue, entry: dict[str, Any]) -> None:
    visibility = integer(entry, "VisibilityTimeout", 0, limits.SQS_VISIBILITY_MAX_S, None)
    if visibility is None:
        raise AwsError("MissingParameter", "The request must contain the parameter VisibilityTimeout.")
    found = _held(ctx, q, text(entry, "ReceiptHandle"))
    if found is None:
        raise AwsError("MessageNotInflight", "Message does not exist or is not available for "
                                             "visibility timeout change.")
    found[0].set_lease(found[1], visibility * 1000)


async def change_message_visibility(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    _change(ctx, ctx.queue(p), p)
    ctx.plane.end_turn()
    return {}


async def change_message_visibility_batch(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return _each(ctx, p, _change)
