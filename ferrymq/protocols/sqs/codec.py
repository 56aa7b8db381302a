"""SQS requests in, replies out, for both protocols SDKs speak.

JSON 1.0 (boto3 since 1.34, aiobotocore, the AWS CLI): ``X-Amz-Target: AmazonSQS.<Action>`` and a
JSON body; errors as ``{"__type": ..., "message": ...}`` plus the ``x-amzn-query-error`` header.
Query (older SDKs and tools): a form with ``Action`` and ``Version=2012-11-05``, XML replies. Both
decode to the JSON protocol's parameter names, so each action is written once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ferrymq.protocols.aws import query, xml
from ferrymq.protocols.aws.errors import AwsError

TARGET_PREFIX = "AmazonSQS."
JSON_TYPE = "application/x-amz-json-1.0"
NAMESPACE = "http://queue.amazonaws.com/doc/2012-11-05/"
SHAPE_PREFIX = "com.amazonaws.sqs#"
VERSION = "2012-11-05"
JSON, QUERY = "json", "query"

# query names -> JSON names: (JSON name, "map" | "list" | "entries")
_QUERY_NAMES: dict[str, tuple[str, str]] = {
    "Attribute": ("Attributes", "map"), "AttributeName": ("AttributeNames", "list"),
    "MessageAttributeName": ("MessageAttributeNames", "list"),
    "MessageSystemAttributeName": ("MessageSystemAttributeNames", "list"),
    "MessageAttribute": ("MessageAttributes", "map"),
    "MessageSystemAttribute": ("MessageSystemAttributes", "map"),
    "Tag": ("Tags", "tags"), "TagKey": ("TagKeys", "list"),
    "AWSAccountId": ("AWSAccountIds", "list"), "ActionName": ("Actions", "list"),
    "SendMessageBatchRequestEntry": ("Entries", "entries"),
    "DeleteMessageBatchRequestEntry": ("Entries", "entries"),
    "ChangeMessageVisibilityBatchRequestEntry": ("Entries", "entries"),
}
_SUCCESSFUL = {"SendMessageBatch", "DeleteMessageBatch", "ChangeMessageVisibilityBatch"}


@dataclass(frozen=True, slots=True)
class Request:
    action: str
    params: dict[str, Any]
    protocol: str


def is_sqs_query(form: dict[str, str]) -> bool:
    """A query-protocol form for SQS (SNS's forms carry another Version)."""
    return "Action" in form and form.get("Version", VERSION) == VERSION


def decode_json(target: str, body: bytes) -> Request:
    action = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else ""
    if not action:
        raise AwsError("InvalidAction", f"The action {target or '(none)'} is not valid for this "
                                        "endpoint.")
    try:
        params = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise AwsError("SerializationException", "The request body is not valid JSON.") from None
    if not isinstance(params, dict):
        raise AwsError("SerializationException", "The request body must be a JSON object.")
    return Request(action, params, JSON)


def decode_query(form: dict[str, str]) -> Request:
    action = form.get("Action", "")
    params = {k: v for k, v in form.items() if k not in ("Action", "Version")}
    return Request(action, from_query(query.nest(params)), QUERY)


def from_query(tree: dict[str, Any]) -> dict[str, Any]:
    """A nested query form in the JSON protocol's shape."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name, kind = _QUERY_NAMES.get(key, (key, ""))
        if kind == "map":
            out[name] = query.as_map(value)
        elif kind == "tags":
            out[name] = query.as_map(value, "Key", "Value")
        elif kind == "list":
            out[name] = query.as_list(value)
        elif kind == "entries":
            out[name] = [from_query(e) if isinstance(e, dict) else e for e in query.as_list(value)]
        elif isinstance(value, dict) and key != "Value":
            out[name] = from_query(value)
        else:
            out[name] = value
    return out


def _hints(action: str) -> xml.Hints:
    lists = {"QueueUrls": "QueueUrl", "queueUrls": "QueueUrl", "Messages": "Message",
             "Failed": "BatchResultErrorEntry", "Results": "ListMessageMoveTasksResultEntry"}
    if action in _SUCCESSFUL:
        lists["Successful"] = f"{action}ResultEntry"
    maps = {"Attributes": ("Attribute", "Name", "Value"),
            "MessageAttributes": ("MessageAttribute", "Name", "Value"), "Tags": ("Tag", "Key", "Value")}
    return xml.Hints(lists=lists, maps=maps)


def encode(request: Request, result: dict[str, Any], request_id: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a successful reply."""
    if request.protocol == JSON:
        return 200, {"Content-Type": JSON_TYPE, "x-amzn-RequestId": request_id}, \
            json.dumps(result, separators=(",", ":")).encode()
    body = xml.response(request.action, result, NAMESPACE, request_id, _hints(request.action))
    return 200, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body


def encode_error(protocol: str, err: AwsError, request_id: str) -> tuple[int, dict[str, str], bytes]:
    kind = "Sender" if err.sender_fault else "Receiver"
    if protocol == JSON:
        body = json.dumps({"__type": SHAPE_PREFIX + err.shape, "message": err.message}).encode()
        return err.status, {"Content-Type": JSON_TYPE, "x-amzn-RequestId": request_id,
                            "x-amzn-query-error": f"{err.query_code};{kind}"}, body
    return err.status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, \
        xml.error_response(err, NAMESPACE, request_id)
