"""SNS fan-out through boto3 against a real FerryMQ: topics, SQS subscriptions (envelope and raw),
AMQP queues bound to the topic's exchange, PublishBatch's per-entry failures."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pika
import pytest
import requests

from ferrymq.testing import EmbeddedBroker
from tests.support.sns import sns_client, subscribed_queue
from tests.support.sqs import receive_all, sqs_client

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture(scope="module")
def sns(ferry: EmbeddedBroker) -> Any:
    return sns_client(ferry.http_url)


@pytest.fixture(scope="module")
def sqs(ferry: EmbeddedBroker) -> Any:
    return sqs_client(ferry.http_url)


def test_create_topic_is_idempotent_and_listed(sns: Any) -> None:
    arn = sns.create_topic(Name="listed")["TopicArn"]
    assert arn == "arn:aws:sns:us-east-1:000000000000:listed"
    assert sns.create_topic(Name="listed")["TopicArn"] == arn
    assert arn in [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    sns.delete_topic(TopicArn=arn)
    assert arn not in [t["TopicArn"] for t in sns.list_topics()["Topics"]]


def test_list_topics_pages_with_next_token(sns: Any) -> None:
    made = {sns.create_topic(Name=f"page-{i:03d}")["TopicArn"] for i in range(105)}
    first = sns.list_topics()
    assert len(first["Topics"]) == 100 and "NextToken" in first
    second = sns.list_topics(NextToken=first["NextToken"])
    listed = {t["TopicArn"] for t in first["Topics"] + second["Topics"]}
    assert made <= listed and "NextToken" not in second


def test_a_publish_reaches_every_subscribed_queue_in_the_sns_envelope(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name="fan")["TopicArn"]
    subs = [subscribed_queue(sns, sqs, topic, f"fan-{i}") for i in range(3)]
    attrs = {"colour": {"DataType": "String", "StringValue": "red"},
             "size": {"DataType": "Number", "StringValue": "7"},
             "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
    sent = sns.publish(TopicArn=topic, Message="hello all", Subject="greeting", MessageAttributes=attrs)
    for url, sub_arn in subs:
        (got,) = receive_all(sqs, url, 1)
        doc = json.loads(got["Body"])
        assert doc["Type"] == "Notification" and doc["MessageId"] == sent["MessageId"]
        assert doc["TopicArn"] == topic and doc["Subject"] == "greeting" and doc["Message"] == "hello all"
        assert TIMESTAMP.fullmatch(doc["Timestamp"]) and doc["SignatureVersion"] == "1"
        assert doc["Signature"] and doc["SigningCertURL"]
        assert sub_arn.replace(":", "%3A") in doc["UnsubscribeURL"]
        assert doc["MessageAttributes"] == {
            "blob": {"Type": "Binary", "Value": base64.b64encode(b"\x00\x01").decode()},
            "colour": {"Type": "String", "Value": "red"}, "size": {"Type": "Number", "Value": "7"}}
        assert "MessageAttributes" not in got  # the envelope carries them, not the SQS message


def test_raw_delivery_sends_the_bare_message_with_its_attributes(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name="raw")["TopicArn"]
    url, sub = subscribed_queue(sns, sqs, topic, "raw-q", RawMessageDelivery="true")
    assert sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["RawMessageDelivery"] == "true"
    sns.publish(TopicArn=topic, Message='{"not": "wrapped"}',
                MessageAttributes={"kind": {"DataType": "String", "StringValue": "order"}})
    (got,) = receive_all(sqs, url, 1, MessageAttributeNames=["All"])
    assert got["Body"] == '{"not": "wrapped"}'
    assert got["MessageAttributes"] == {"kind": {"StringValue": "order", "DataType": "String"}}


def test_message_structure_json_gives_each_protocol_its_own_text(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name="structured")["TopicArn"]
    url, _ = subscribed_queue(sns, sqs, topic, "structured-q", RawMessageDelivery="true")
    sns.publish(TopicArn=topic, MessageStructure="json",
                Message=json.dumps({"default": "for everyone", "sqs": "for queues"}))
    sns.publish(TargetArn=topic, MessageStructure="json", Message=json.dumps({"default": "fallback"}))
    bodies = sorted(m["Body"] for m in receive_all(sqs, url, 2))
    assert bodies == ["fallback", "for queues"]


def test_unsubscribed_queues_get_nothing_more(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name="leaving")["TopicArn"]
    stay, _ = subscribed_queue(sns, sqs, topic, "stay-q", RawMessageDelivery="true")
    leave, sub = subscribed_queue(sns, sqs, topic, "leave-q", RawMessageDelivery="true")
    sns.unsubscribe(SubscriptionArn=sub)
    assert [s["Endpoint"] for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]] == \
        ["arn:aws:sqs:us-east-1:000000000000:stay-q"]
    sns.publish(TopicArn=topic, Message="after")
    assert [m["Body"] for m in receive_all(sqs, stay, 1)] == ["after"]
    assert sqs.receive_message(QueueUrl=leave, WaitTimeSeconds=0).get("Messages", []) == []
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsDeleted"] == "1"


def test_an_amqp_queue_bound_to_the_topic_exchange_receives_sns_publishes(
        sns: Any, ferry: EmbeddedBroker) -> None:
    topic = sns.create_topic(Name="amqp-side")["TopicArn"]
    conn = pika.BlockingConnection(pika.URLParameters(ferry.amqp_url))
    try:
        ch = conn.channel()
        queue = ch.queue_declare("", exclusive=True).method.queue
        ch.queue_bind(queue, "amqp-side")
        sent = sns.publish(TopicArn=topic, Message="to amqp", Subject="s",
                           MessageAttributes={"colour": {"DataType": "String", "StringValue": "blue"}})
        method, props, body = next(ch.consume(queue, inactivity_timeout=10))
        assert method is not None and body == b"to amqp"
        assert method.exchange == "amqp-side"
        assert props.message_id == sent["MessageId"]
        headers = props.headers
        assert headers["colour"] == "blue" and headers["x-sns-subject"] == "s"
        assert headers["x-sns-topic-arn"] == topic and headers["x-sns-message-id"] == sent["MessageId"]
    finally:
        conn.close()


def test_publish_batch_reports_the_bad_entry_and_delivers_the_rest(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name="batch")["TopicArn"]
    url, _ = subscribed_queue(sns, sqs, topic, "batch-q", RawMessageDelivery="true")
    reply = sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[
        {"Id": "one", "Message": "first"},
        {"Id": "bad", "Message": "x",
         "MessageAttributes": {"n": {"DataType": "Number", "StringValue": "NaN?"}}},
        {"Id": "two", "Message": "second"}])
    assert sorted(e["Id"] for e in reply["Successful"]) == ["one", "two"]
    (failure,) = reply["Failed"]
    assert failure["Id"] == "bad" and failure["SenderFault"] is True
    assert failure["Code"] == "ParameterValueInvalid"
    assert sorted(m["Body"] for m in receive_all(sqs, url, 2)) == ["first", "second"]


def test_tags_are_added_listed_and_removed(sns: Any) -> None:
    topic = sns.create_topic(Name="tagged", Tags=[{"Key": "team", "Value": "a"}])["TopicArn"]
    sns.tag_resource(ResourceArn=topic, Tags=[{"Key": "env", "Value": "dev"}])
    assert sns.list_tags_for_resource(ResourceArn=topic)["Tags"] == [
        {"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "a"}]
    sns.untag_resource(ResourceArn=topic, TagKeys=["team"])
    assert sns.list_tags_for_resource(ResourceArn=topic)["Tags"] == [{"Key": "env", "Value": "dev"}]


def test_topic_attributes_are_set_and_read_back(sns: Any) -> None:
    topic = sns.create_topic(Name="attrs", Attributes={"DisplayName": "Orders"})["TopicArn"]
    sns.set_topic_attributes(TopicArn=topic, AttributeName="DisplayName", AttributeValue="New name")
    attrs = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attrs["DisplayName"] == "New name" and attrs["TopicArn"] == topic
    assert attrs["Owner"] == "000000000000" and json.loads(attrs["Policy"])["Statement"]


def test_an_amqp_publish_to_the_topic_exchange_reaches_the_sns_subscribers(
        sns: Any, sqs: Any, ferry: EmbeddedBroker) -> None:
    topic = sns.create_topic(Name="from-amqp")["TopicArn"]
    wrapped, _ = subscribed_queue(sns, sqs, topic, "from-amqp-q")
    raw, _ = subscribed_queue(sns, sqs, topic, "from-amqp-raw", RawMessageDelivery="true",
                              FilterPolicy=json.dumps({"kind": ["wanted"]}))
    conn = pika.BlockingConnection(pika.URLParameters(ferry.amqp_url))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for kind in ("unwanted", "wanted"):
            ch.basic_publish("from-amqp", "", f"amqp says {kind}".encode(), pika.BasicProperties(
                message_id=f"amqp-{kind}", headers={"kind": kind, "x-sns-subject": "via amqp"}))
    finally:
        conn.close()
    docs = sorted((json.loads(m["Body"]) for m in receive_all(sqs, wrapped, 2)), key=lambda d: d["MessageId"])
    assert [(d["MessageId"], d["Message"], d["Subject"]) for d in docs] == [
        ("amqp-unwanted", "amqp says unwanted", "via amqp"), ("amqp-wanted", "amqp says wanted", "via amqp")]
    assert docs[0]["MessageAttributes"] == {"kind": {"Type": "String", "Value": "unwanted"}}
    (got,) = receive_all(sqs, raw, 1, MessageAttributeNames=["All"])
    assert got["Body"] == "amqp says wanted" and got["MessageAttributes"]["kind"]["StringValue"] == "wanted"
    assert sqs.receive_message(QueueUrl=raw, WaitTimeSeconds=0).get("Messages", []) == []


def test_the_unsubscribe_url_in_an_envelope_ends_the_subscription(sns: Any, sqs: Any) -> None:
    topic = sns.create_topic(Name="link-out")["TopicArn"]
    url, sub = subscribed_queue(sns, sqs, topic, "link-out-q")
    assert sub in [s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]]
    sns.publish(TopicArn=topic, Message="one")
    (got,) = receive_all(sqs, url, 1)
    answer = requests.get(json.loads(got["Body"])["UnsubscribeURL"], timeout=10)
    assert answer.status_code == 200 and "UnsubscribeResponse" in answer.text
    assert sub not in [s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]]
    assert requests.get(answer.url, timeout=10).status_code == 404  # gone: NotFound
