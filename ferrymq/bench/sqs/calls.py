"""The SQS calls the workloads make, as the JSON 1.0 bodies botocore's service model defines
(``QueueUrl``, ``Entries[].Id/MessageBody/ReceiptHandle``, ``MaxNumberOfMessages``,
``WaitTimeSeconds``), and what the generator reads back from the replies.

Send bodies are built from a per-loop prefix and a counter, so every message of a run is unique
and a verifying run can prove each was received and deleted exactly once."""

from __future__ import annotations

import json
from typing import Any

from ferrymq.bench.sqs.http11 import JSON_CONTENT_TYPE, request_head

BATCH_MAX = 10  # SendMessageBatch / DeleteMessageBatch / ReceiveMessage cap (AWS)
ACTIONS = ("CreateQueue", "GetQueueAttributes", "DeleteQueue", "SendMessageBatch", "ReceiveMessage",
           "DeleteMessageBatch")


class CallError(Exception):
    """A call the generator counts as failed: non-200, or a batch entry in ``Failed``."""


def headers(auth: str | None) -> dict[str, dict[str, str]]:
    """The headers of each action's request; ``auth`` is a fixed Authorization header for targets
    that route on it (moto reads the service from its credential scope and checks nothing)."""
    out = {}
    for action in ACTIONS:
        out[action] = {"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": f"AmazonSQS.{action}"}
        if auth:
            out[action]["Authorization"] = auth
    return out


def heads(host: str, auth: str | None) -> dict[str, bytes]:
    """One request head per action: the only per-call work left is the body."""
    return {action: request_head(host, "/", h) for action, h in headers(auth).items()}


def create_queue(name: str, attributes: dict[str, str]) -> bytes:
    return json.dumps({"QueueName": name, "Attributes": attributes}).encode()


def queue_url_of(reply: bytes) -> str:
    return str(json.loads(reply)["QueueUrl"])


def queue_only(url: str) -> bytes:
    return json.dumps({"QueueUrl": url}).encode()


def depth_query(url: str) -> bytes:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    return json.dumps({"QueueUrl": url, "AttributeNames": names}).encode()


def depth_of(reply: bytes) -> int:
    attrs = json.loads(reply).get("Attributes", {})
    return int(attrs.get("ApproximateNumberOfMessages", 0)) + int(
        attrs.get("ApproximateNumberOfMessagesNotVisible", 0))


class SendBatches:
    """SendMessageBatch bodies for one loop: ``<tag>-<n>`` padded to ``body_bytes``."""

    __slots__ = ("_fill", "_prefix", "count", "tag")

    def __init__(self, url: str, tag: str, body_bytes: int) -> None:
        self._prefix = '{"QueueUrl":' + json.dumps(url) + ',"Entries":['
        if "-" in tag:
            raise ValueError(f"a loop tag holds no '-': {tag!r}")
        self.tag = tag
        self._fill = "x" * max(0, body_bytes - len(tag) - 11)  # "<tag>-" and 10 digits
        self.count = 0

    def next(self) -> bytes:
        n, tag, fill = self.count, self.tag, self._fill
        self.count = n + BATCH_MAX
        entries = ",".join(f'{{"Id":"{i}","MessageBody":"{tag}-{n + i:010d}{fill}"}}'
                           for i in range(BATCH_MAX))
        return (self._prefix + entries + "]}").encode()


def message_id(body: str) -> str:
    """``<tag>-<n>`` of a body SendBatches built (the padding cut off)."""
    return body[:body.index("-") + 11]


def receive(url: str, wait_s: int, visibility_s: int | None = None) -> bytes:
    body: dict[str, Any] = {"QueueUrl": url, "MaxNumberOfMessages": BATCH_MAX, "WaitTimeSeconds": wait_s}
    if visibility_s is not None:
        body["VisibilityTimeout"] = visibility_s
    return json.dumps(body).encode()


def received(reply: bytes) -> tuple[list[str], list[str]]:
    """(receipt handles, bodies) of a ReceiveMessage reply (no ``Messages`` key: none)."""
    messages = json.loads(reply).get("Messages") or ()
    return [m["ReceiptHandle"] for m in messages], [m["Body"] for m in messages]


def delete_batch(url: str, handles: list[str]) -> bytes:
    entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
    return json.dumps({"QueueUrl": url, "Entries": entries}).encode()


def batch_done(reply: bytes, expected: int) -> int:
    """Entries in ``Successful``; raises CallError when any failed or some are missing."""
    doc = json.loads(reply)
    failed, ok = doc.get("Failed") or [], len(doc.get("Successful") or ())
    if failed or ok != expected:
        raise CallError(f"{ok}/{expected} entries succeeded; failed: {failed[:3]}")
    return ok
