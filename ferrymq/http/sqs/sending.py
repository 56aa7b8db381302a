"""SendMessage and SendMessageBatch: validated as AWS validates, stored before the reply."""

from __future__ import annotations

import hashlib
from typing import Any

from ferrymq import limits
from ferrymq.core.message import Message
from ferrymq.core.queue import Queue
from ferrymq.http.sqs.context import Context, integer, text
from ferrymq.protocols.aws.attributes import (
    check_body,
    md5_of_attributes,
    md5_of_body,
    parse_attributes,
)
from ferrymq.protocols.aws.batch import BAD_ID_TEXT, check_ids
from ferrymq.protocols.aws.errors import AwsError, invalid, missing
from ferrymq.protocols.sqs import messages, names
from ferrymq.protocols.sqs import queue_attributes as qa

NOT_FOR_THIS_QUEUE = "The request include parameter that is not valid for this queue type"


def _fifo_fields(p: dict[str, Any], q: Queue, body: str, attrs: dict[str, str]) -> tuple[str, str]:
    group = text(p, "MessageGroupId", required=False)
    if not group:
        raise missing("MessageGroupId")
    dedup = text(p, "MessageDeduplicationId", required=False)
    if dedup is None:
        if attrs.get("ContentBasedDeduplication") != "true":
            raise invalid("The queue should either have ContentBasedDeduplication enabled or "
                          "MessageDeduplicationId provided explicitly")
        dedup = hashlib.sha256(body.encode()).hexdigest()
    if attrs.get("DeduplicationScope") == "messageGroup":
        dedup = f"{group}\x00{dedup}"
    return group, dedup


def _delay_s(p: dict[str, Any], q: Queue, attrs: dict[str, str]) -> int:
    delay = integer(p, "DelaySeconds", 0, limits.SQS_DELAY_MAX_S, None)
    if delay is not None and names.is_fifo(q.name):
        raise invalid(f"Value {delay} for parameter DelaySeconds is invalid. Reason: "
                      f"{NOT_FOR_THIS_QUEUE}.")
    return int(attrs.get("DelaySeconds", "0")) if delay is None else delay


def message_id(ctx: Context) -> str:
    """A random version-4 UUID from the broker's seeded generator (replayable in tests)."""
    raw = ctx.plane.broker.rng.getrandbits(128) & ~(0xF000 << 64) & ~(0xC << 60)
    text = f"{raw | 0x4000 << 64 | 0x8 << 60:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _checked(p: dict[str, Any], attrs: dict[str, str]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(body, message attributes, system attributes) of one send, as AWS checks them."""
    body = text(p, "MessageBody")
    if not body:
        raise missing("MessageBody")
    check_body(body)
    attributes = parse_attributes(p.get("MessageAttributes"))
    system = parse_attributes(p.get("MessageSystemAttributes"), "message system attribute")
    if set(system) - {"AWSTraceHeader"}:
        raise invalid("The only supported message system attribute is AWSTraceHeader.")
    size = len(body.encode()) + sum(len(n.encode()) + a.size for n, a in attributes.items())
    if size > int(attrs["MaximumMessageSize"]):
        raise invalid("One or more parameters are invalid. Reason: Message must be shorter than "
                      f"{attrs['MaximumMessageSize']} bytes.")
    return body, attributes, system


def send_one(ctx: Context, q: Queue, p: dict[str, Any], attrs: dict[str, str] | None = None
             ) -> dict[str, Any]:
    """Validate, build and publish one message; the reply's fields. ``attrs``: the queue's
    attributes, when a batch has read them once for all its entries. A FIFO send deduplicated in
    the window publishes nothing and answers the first send's MessageId and SequenceNumber."""
    attrs = attrs if attrs is not None else qa.stored(q.arguments, q.name)
    body, attributes, system = _checked(p, attrs)
    digests = {"MD5OfMessageBody": md5_of_body(body),
               "MD5OfMessageAttributes": md5_of_attributes(attributes),
               "MD5OfMessageSystemAttributes": md5_of_attributes(system)}
    group = dedup = sequence = key = None
    if names.is_fifo(q.name):
        group, dedup = _fifo_fields(p, q, body, attrs)
        key = (ctx.vhost.name, q.name, dedup)
        earlier = ctx.state.first_send(key, ctx.mono_ms())
        if earlier is not None:
            return _reply(dict(earlier, **digests))
        sequence = ctx.state.next_sequence(ctx.now_ms())
    elif p.get("MessageDeduplicationId") is not None:
        raise invalid(f"Value {p['MessageDeduplicationId']} for parameter MessageDeduplicationId is "
                      f"invalid. Reason: {NOT_FOR_THIS_QUEUE}.")
    delay = _delay_s(p, q, attrs)
    mid = message_id(ctx)
    trace = system.get("AWSTraceHeader")
    msg = messages.to_core(q.name, body, attributes, message_id=mid, sent_ms=ctx.now_ms(),
                           sender=ctx.user, group=group, dedup=dedup, sequence=sequence,
                           trace=str(trace.value) if trace is not None else None, delayed=delay > 0)
    publish(ctx, q, msg, delay * 1000)
    reply = _reply({"MessageId": mid, **digests, "SequenceNumber": sequence})
    if key is not None:
        ctx.state.remember_send(key, reply, ctx.mono_ms())
    return reply


def _reply(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def publish(ctx: Context, q: Queue, msg: Message, delay_ms: int) -> None:
    if delay_ms:
        ctx.vhost.hold_delayed("", q.name, msg, delay_ms)
        return
    _, accepted = ctx.vhost.publish("", q.name, msg)
    if not accepted:
        raise AwsError("OverLimit", f"Queue {q.name} is full (its length limit refused the message).")


async def send_message(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    reply = send_one(ctx, ctx.queue(p), p)
    await ctx.stored()
    return reply


def batch_entries(p: dict[str, Any]) -> list[dict[str, Any]]:
    """A batch's entries, with AWS's whole-request errors for an empty, long or ambiguous batch."""
    entries = p.get("Entries")
    if not entries:
        raise AwsError("EmptyBatchRequest", "There should be at least one SendMessageBatchRequestEntry "
                                            "in the request.")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise invalid("Entries must be a list of structures.")
    if len(entries) > limits.SQS_BATCH_MAX_ENTRIES:
        raise AwsError("TooManyEntriesInBatchRequest", f"Maximum number of entries per request are "
                                                       f"{limits.SQS_BATCH_MAX_ENTRIES}. You have sent "
                                                       f"{len(entries)}.")
    check_ids(entries, AwsError("InvalidBatchEntryId", BAD_ID_TEXT),
              lambda entry_id: AwsError("BatchEntryIdsNotDistinct", f"Id {entry_id} repeated."))
    return entries


def failed(entry_id: str, err: AwsError) -> dict[str, Any]:
    return {"Id": entry_id, "SenderFault": err.sender_fault, "Code": err.query_code,
            "Message": err.message}


async def send_message_batch(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    q = ctx.queue(p)
    entries = batch_entries(p)
    total = sum(len(str(e.get("MessageBody", "")).encode()) for e in entries)
    if total > limits.SQS_MESSAGE_MAX_BYTES:
        raise AwsError("BatchRequestTooLong", "Batch requests cannot be longer than "
                                              f"{limits.SQS_MESSAGE_MAX_BYTES} bytes. You have sent "
                                              f"{total} bytes.")
    ok: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    attrs = qa.stored(q.arguments, q.name)
    for entry in entries:
        try:
            reply = send_one(ctx, q, entry, attrs)
        except AwsError as err:
            bad.append(failed(entry["Id"], err))
            continue
        ok.append(dict(reply, Id=entry["Id"]))
    if ok:
        await ctx.stored()
    return {"Successful": ok, "Failed": bad}
