"""Subscription filter policies decide which SQS queue gets which SNS message (boto3 against a real
FerryMQ): attribute scope, body scope, policies changed and removed, bad policies refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ferrymq.testing import EmbeddedBroker
from tests.support.sns import sns_client, subscribed_queue
from tests.support.sqs import error_code, receive_all, sqs_client


@pytest.fixture(scope="module")
def sns(ferry: EmbeddedBroker) -> Any:
    return sns_client(ferry.http_url)


@pytest.fixture(scope="module")
def sqs(ferry: EmbeddedBroker) -> Any:
    return sqs_client(ferry.http_url)


def _bodies(sqs: Any, url: str, expected: int) -> list[str]:
    got = sorted(m["Body"] for m in receive_all(sqs, url, expected, bound_s=5))
    extra = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", [])
    return got + sorted(m["Body"] for m in extra)


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def _number(value: str) -> dict[str, str]:
    return {"DataType": "Number", "StringValue": value}


def test_attribute_policies_route_each_message_to_the_queues_it_matches(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name="shop")["TopicArn"]
    raw = {"RawMessageDelivery": "true"}
    red, _ = subscribed_queue(sns, sqs, topic, "red-q", **raw,
                              FilterPolicy=json.dumps({"colour": ["red", {"prefix": "crim"}]}))
    big, _ = subscribed_queue(sns, sqs, topic, "big-q", **raw,
                              FilterPolicy=json.dumps({"size": [{"numeric": [">=", 10, "<", 100]}]}))
    not_blue, _ = subscribed_queue(sns, sqs, topic, "not-blue-q", **raw, FilterPolicy=json.dumps(
        {"colour": [{"anything-but": ["blue"]}], "store": [{"exists": True}]}))
    either, _ = subscribed_queue(sns, sqs, topic, "either-q", **raw, FilterPolicy=json.dumps(
        {"$or": [{"colour": [{"equals-ignore-case": "GREEN"}]}, {"size": [5]}]}))
    everything, _ = subscribed_queue(sns, sqs, topic, "all-q", **raw)
    messages = {
        "m-red": {"colour": _string("red"), "size": _number("5")},
        "m-crimson-big": {"colour": _string("crimson"), "size": _number("50"), "store": _string("x")},
        "m-blue-huge": {"colour": _string("blue"), "size": _number("100"), "store": _string("x")},
        "m-green": {"colour": _string("Green")},
        "m-bare": {},
    }
    for body, attrs in messages.items():
        sns.publish(TopicArn=topic, Message=body, MessageAttributes=attrs)
    assert _bodies(sqs, red, 2) == ["m-crimson-big", "m-red"]
    assert _bodies(sqs, big, 1) == ["m-crimson-big"]
    assert _bodies(sqs, not_blue, 1) == ["m-crimson-big"]
    assert _bodies(sqs, either, 2) == ["m-green", "m-red"]
    assert _bodies(sqs, everything, 5) == sorted(messages)


def test_body_scope_policies_match_fields_of_the_json_message(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name="events")["TopicArn"]
    url, sub = subscribed_queue(sns, sqs, topic, "body-q", RawMessageDelivery="true",
                                FilterPolicyScope="MessageBody",
                                FilterPolicy=json.dumps({"order": {"status": ["paid"],
                                                                   "total": [{"numeric": [">", 100]}]}}))
    for doc in ({"order": {"status": "paid", "total": 150}}, {"order": {"status": "paid", "total": 50}},
                {"order": {"status": "new", "total": 500}}, {"other": 1}):
        sns.publish(TopicArn=topic, Message=json.dumps(doc))
    sns.publish(TopicArn=topic, Message="not json at all")
    assert _bodies(sqs, url, 1) == [json.dumps({"order": {"status": "paid", "total": 150}})]
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert attrs["FilterPolicyScope"] == "MessageBody"


def test_a_changed_policy_applies_to_the_next_publish_and_an_empty_one_removes_it(
        sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name="changing")["TopicArn"]
    url, sub = subscribed_queue(sns, sqs, topic, "changing-q", RawMessageDelivery="true",
                                FilterPolicy=json.dumps({"k": ["a"]}))
    sns.publish(TopicArn=topic, Message="b-1", MessageAttributes={"k": _string("b")})
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy",
                                    AttributeValue=json.dumps({"k": ["b"]}))
    sns.publish(TopicArn=topic, Message="b-2", MessageAttributes={"k": _string("b")})
    sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="FilterPolicy", AttributeValue="")
    sns.publish(TopicArn=topic, Message="c-3", MessageAttributes={"k": _string("c")})
    assert _bodies(sqs, url, 2) == ["b-2", "c-3"]
    assert "FilterPolicy" not in sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]


@pytest.mark.parametrize("policy", ['{"k": "not-a-list"}', '{"k": [{"prefx": "a"}]}', "[1]", "{bad",
                                    '{"k": [{"numeric": [">", 5, ">", 1]}]}', '{"a": {"b": ["nested"]}}'])
def test_bad_filter_policies_are_refused_with_invalid_parameter(sns: Any, sqs: Any, policy: str) -> None:
    topic = sns.create_topic(Name="strict")["TopicArn"]
    url = sqs.create_queue(QueueName="strict-q")["QueueUrl"]
    with pytest.raises(ClientError) as caught:
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint="arn:aws:sqs:us-east-1:000000000000:strict-q",
                      Attributes={"FilterPolicy": policy})
    assert error_code(caught.value) == "InvalidParameter"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert url
