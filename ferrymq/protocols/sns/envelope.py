"""What SNS delivers: the JSON documents it writes for a notification and a subscription
confirmation, field for field and in SNS's own layout (two-space indent, ``"Key" : value``), and the
headers an HTTP endpoint is sent with them.

Signatures: SNS signs with an AWS-held RSA key whose certificate lives at SigningCertURL; FerryMQ
cannot, so ``Signature`` is an HMAC-SHA256 of SNS's canonical string under the broker's own key
(base64): the fields are all present for parsers, but it does not verify against AWS's certificate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ferrymq.protocols.aws.attributes import Attribute

NOTIFICATION, CONFIRMATION = "Notification", "SubscriptionConfirmation"
SIGNATURE_VERSION = "1"
_SIGNED_NOTIFICATION = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_SIGNED_CONFIRMATION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")


def timestamp(wall_ms: int) -> str:
    """ISO-8601 in UTC with milliseconds and ``Z``, as SNS writes it: 2026-12-03T08:41:07.123Z."""
    moment = datetime.fromtimestamp(wall_ms // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{wall_ms % 1000:03d}Z"


def sign(key: bytes, fields: dict[str, Any], names: tuple[str, ...]) -> str:
    """SNS's canonical string (name, newline, value, newline for each present field in order)."""
    canonical = "".join(f"{n}\n{fields[n]}\n" for n in names if fields.get(n) is not None)
    return base64.b64encode(hmac.new(key, canonical.encode(), hashlib.sha256).digest()).decode()


def attributes_json(attributes: dict[str, Attribute]) -> dict[str, dict[str, str]]:
    """``{"name": {"Type": ..., "Value": ...}}``; Binary values in base64."""
    out = {}
    for name in sorted(attributes):
        attr = attributes[name]
        value = base64.b64encode(attr.value).decode() if isinstance(attr.value, bytes) else attr.value
        out[name] = {"Type": attr.data_type, "Value": value}
    return out


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, separators=(",", " : "), ensure_ascii=False)


def notification(*, key: bytes, message_id: str, topic_arn: str, subject: str | None, message: str,
                 wall_ms: int, base_url: str, subscription_arn: str,
                 attributes: dict[str, Attribute]) -> str:
    """The Notification document an SQS queue (non-raw) or an HTTP endpoint receives."""
    doc: dict[str, Any] = {"Type": NOTIFICATION, "MessageId": message_id, "TopicArn": topic_arn}
    if subject is not None:
        doc["Subject"] = subject
    doc.update(Message=message, Timestamp=timestamp(wall_ms), SignatureVersion=SIGNATURE_VERSION)
    doc["Signature"] = sign(key, doc, _SIGNED_NOTIFICATION)
    doc["SigningCertURL"] = signing_cert_url(base_url)
    doc["UnsubscribeURL"] = unsubscribe_url(base_url, subscription_arn)
    if attributes:
        doc["MessageAttributes"] = attributes_json(attributes)
    return render(doc)


def confirmation(*, key: bytes, message_id: str, topic_arn: str, token: str, wall_ms: int,
                 base_url: str) -> str:
    """The SubscriptionConfirmation an HTTP endpoint is sent when it is subscribed."""
    doc: dict[str, Any] = {
        "Type": CONFIRMATION, "MessageId": message_id, "Token": token, "TopicArn": topic_arn,
        "Message": f"You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the "
                   "subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": subscribe_url(base_url, topic_arn, token),
        "Timestamp": timestamp(wall_ms), "SignatureVersion": SIGNATURE_VERSION,
    }
    doc["Signature"] = sign(key, doc, _SIGNED_CONFIRMATION)
    doc["SigningCertURL"] = signing_cert_url(base_url)
    return render(doc)


def subscribe_url(base_url: str, topic_arn: str, token: str) -> str:
    return (f"{base_url}/sns?Action=ConfirmSubscription&TopicArn={quote(topic_arn, safe='')}"
            f"&Token={quote(token, safe='')}")


def unsubscribe_url(base_url: str, subscription_arn: str) -> str:
    return f"{base_url}/sns?Action=Unsubscribe&SubscriptionArn={quote(subscription_arn, safe='')}"


def signing_cert_url(base_url: str) -> str:
    return f"{base_url}/sns/SimpleNotificationService-ferrymq.pem"


def http_headers(kind: str, message_id: str, topic_arn: str, subscription_arn: str | None,
                 raw: bool) -> dict[str, str]:
    """The headers SNS sends an HTTP/S endpoint with each POST."""
    headers = {"x-amz-sns-message-type": kind, "x-amz-sns-message-id": message_id,
               "x-amz-sns-topic-arn": topic_arn, "Content-Type": "text/plain; charset=UTF-8",
               "User-Agent": "Amazon Simple Notification Service Agent"}
    if subscription_arn is not None:
        headers["x-amz-sns-subscription-arn"] = subscription_arn
    if raw:
        headers["x-amz-sns-rawdelivery"] = "true"
    return headers
