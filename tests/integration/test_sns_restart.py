"""Topics and subscriptions live in the broker's durable topology: a restart on the same data
directory keeps them, with their attributes, tags and filter policies, and fan-out goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pika

from ferrymq.testing import EmbeddedBroker
from tests.support.sns import sns_client, subscribed_queue
from tests.support.sqs import receive_all, sqs_client


def test_a_restart_keeps_topics_subscriptions_and_their_attributes(tmp_path: Path) -> None:
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        sns, sqs = sns_client(broker.http_url), sqs_client(broker.http_url)
        topic = sns.create_topic(Name="kept", Attributes={"DisplayName": "Kept"},
                                 Tags=[{"Key": "team", "Value": "core"}])["TopicArn"]
        url, sub = subscribed_queue(sns, sqs, topic, "kept-q", RawMessageDelivery="true",
                                    FilterPolicy=json.dumps({"k": ["yes"]}))
        sns.create_topic(Name="gone")
        sns.delete_topic(TopicArn=topic.replace("kept", "gone"))
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        sns, sqs = sns_client(broker.http_url), sqs_client(broker.http_url)
        assert [t["TopicArn"] for t in sns.list_topics()["Topics"]] == [topic]
        assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["DisplayName"] == "Kept"
        assert sns.list_tags_for_resource(ResourceArn=topic)["Tags"] == [{"Key": "team", "Value": "core"}]
        attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
        assert attrs["RawMessageDelivery"] == "true" and json.loads(attrs["FilterPolicy"]) == {"k": ["yes"]}
        for value in ("no", "yes"):
            sns.publish(TopicArn=topic, Message=f"k={value}",
                        MessageAttributes={"k": {"DataType": "String", "StringValue": value}})
        assert [m["Body"] for m in receive_all(sqs, url, 1)] == ["k=yes"]
        assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []


def test_after_a_restart_amqp_publishes_to_a_topic_still_reach_its_subscribers(tmp_path: Path) -> None:
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        sns, sqs = sns_client(broker.http_url), sqs_client(broker.http_url)
        topic = sns.create_topic(Name="bridged")["TopicArn"]
        url, _ = subscribed_queue(sns, sqs, topic, "bridged-q", RawMessageDelivery="true")
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        try:
            ch = conn.channel()
            ch.confirm_delivery()
            ch.basic_publish("bridged", "", b"after restart", pika.BasicProperties(delivery_mode=2))
        finally:
            conn.close()
        sqs = sqs_client(broker.http_url)
        assert [m["Body"] for m in receive_all(sqs, url, 1)] == ["after restart"]
