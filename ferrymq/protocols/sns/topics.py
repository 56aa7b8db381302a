"""A topic and its subscriptions as they are stored: one JSON text in the argument ``x-sns-topic``
of the durable fanout exchange that is the topic (so it is kept, and restored, with the exchange),
and the topic and subscription attributes AWS lets a caller set, validated as AWS validates them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ferrymq.protocols.sns import delivery_policy, filter_policy
from ferrymq.protocols.sns.names import invalid_parameter

ARGUMENT = "x-sns-topic"
EXCHANGE_TYPE = "fanout"
PROTOCOLS = ("sqs", "http", "https")
TOPIC_SETTABLE = ("DisplayName", "Policy", "DeliveryPolicy", "KmsMasterKeyId", "SignatureVersion",
                  "TracingConfig", "ContentBasedDeduplication", "ArchivePolicy")
TOPIC_CREATE_ONLY = ("FifoTopic",)
BRIDGE_PREFIX = "sns-bridge."  # the queue carrying AMQP publishes to a topic's subscribers
SUBSCRIPTION_SETTABLE = ("DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery",
                         "RedrivePolicy", "SubscriptionRoleArn")


@dataclass(slots=True)
class Subscription:
    id: str
    protocol: str
    endpoint: str
    owner: str
    attributes: dict[str, str] = field(default_factory=dict)
    pending: bool = False
    token: str = ""  # the confirmation token of a pending HTTP/S subscription

    @property
    def raw(self) -> bool:
        return self.attributes.get("RawMessageDelivery") == "true"

    @property
    def scope(self) -> str:
        return self.attributes.get("FilterPolicyScope", filter_policy.ATTRIBUTES)


@dataclass(slots=True)
class Topic:
    attributes: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    deleted_subscriptions: int = 0

    @property
    def fifo(self) -> bool:
        return self.attributes.get("FifoTopic") == "true"

    def dumps(self) -> str:
        return json.dumps({"attributes": self.attributes, "tags": self.tags,
                           "deleted": self.deleted_subscriptions,
                           "subscriptions": [asdict(s) for s in self.subscriptions.values()]},
                          separators=(",", ":"), sort_keys=True)

    @classmethod
    def loads(cls, text: str | bytes) -> Topic:
        doc = json.loads(text)
        subs = {s["id"]: Subscription(**s) for s in doc.get("subscriptions", [])}
        return cls(dict(doc.get("attributes", {})), dict(doc.get("tags", {})), subs,
                   int(doc.get("deleted", 0)))

    def find(self, protocol: str, endpoint: str) -> Subscription | None:
        for sub in self.subscriptions.values():
            if sub.protocol == protocol and sub.endpoint == endpoint:
                return sub
        return None


def bridge_queue(topic: str) -> str:
    return BRIDGE_PREFIX + topic


def _boolean(name: str, value: str) -> str:
    if value.lower() not in ("true", "false"):
        raise invalid_parameter(f"Attributes Reason: {name}: Invalid value [{value}] for {name}. "
                                "Valid values: true, false")
    return value.lower()


def _json(name: str, value: str) -> str:
    try:
        json.loads(value)
    except ValueError:
        raise invalid_parameter(f"Attributes Reason: {name}: failed to parse JSON") from None
    return value


def check_topic_attribute(name: str, value: str, fifo: bool, creating: bool) -> str:
    """The stored form of a topic attribute a caller sets; InvalidParameter for what AWS refuses."""
    if name not in TOPIC_SETTABLE and not (creating and name in TOPIC_CREATE_ONLY):
        raise invalid_parameter("AttributeName")
    if name in ("FifoTopic", "ContentBasedDeduplication"):
        value = _boolean(name, value)
        if name == "ContentBasedDeduplication" and not fifo and value == "true":
            raise invalid_parameter("ContentBasedDeduplication", "Content based deduplication can "
                                                                 "only be set for FIFO topics")
    elif name == "SignatureVersion" and value not in ("1", "2"):
        raise invalid_parameter("SignatureVersion")
    elif name == "TracingConfig" and value not in ("PassThrough", "Active"):
        raise invalid_parameter("TracingConfig")
    elif name in ("Policy", "ArchivePolicy"):
        _json(name, value)
    elif name == "DeliveryPolicy":
        _delivery(value)
    return value


def _delivery(value: str) -> None:
    try:
        delivery_policy.parse(value)
    except delivery_policy.DeliveryPolicyError as exc:
        raise invalid_parameter(f"DeliveryPolicy: {exc}") from None


def check_subscription_attribute(name: str, value: str, sub: Subscription) -> str:
    """The stored form of a subscription attribute; the filter policy is checked in its scope."""
    if name not in SUBSCRIPTION_SETTABLE:
        raise invalid_parameter("AttributeName")
    if name == "RawMessageDelivery":
        return _boolean(name, value)
    if name == "FilterPolicyScope":
        if value not in filter_policy.SCOPES:
            raise invalid_parameter("Attributes Reason: FilterPolicyScope: Invalid value "
                                    f"[{value}]. Please use either MessageBody or MessageAttributes")
        if sub.attributes.get("FilterPolicy"):
            check_filter_policy(sub.attributes["FilterPolicy"], value)
    elif name == "FilterPolicy" and value:
        check_filter_policy(value, sub.scope)
    elif name == "DeliveryPolicy":
        _delivery(value)
    elif name == "RedrivePolicy" and value:
        doc = json.loads(_json(name, value))
        if not isinstance(doc, dict) or not isinstance(doc.get("deadLetterTargetArn"), str):
            raise invalid_parameter("RedrivePolicy", "deadLetterTargetArn is missing")
    return value


def check_filter_policy(text: str, scope: str) -> filter_policy.Policy:
    try:
        return filter_policy.parse(text, scope)
    except filter_policy.PolicyError as exc:
        raise invalid_parameter(f"FilterPolicy: {exc}") from None
