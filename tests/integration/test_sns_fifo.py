"""FIFO topics (boto3 against a real FerryMQ): message groups required, order kept into a FIFO SQS
queue, publishes deduplicated by id or content within the window."""

from __future__ import annotations

from typing import Any

import pytest

from ferrymq.testing import EmbeddedBroker
from tests.support.sns import queue_arn, sns_client
from tests.support.sqs import receive_all, sqs_client


@pytest.fixture(scope="module")
def sns(ferry: EmbeddedBroker) -> Any:
    return sns_client(ferry.http_url)


def test_a_fifo_topic_keeps_group_order_and_drops_duplicates(sns: Any, ferry: EmbeddedBroker) -> None:
    sqs = sqs_client(ferry.http_url)
    topic = sns.create_topic(Name="ledger.fifo", Attributes={"FifoTopic": "true",
                                                             "ContentBasedDeduplication": "true"})["TopicArn"]
    url = sqs.create_queue(QueueName="ledger-q.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, url),
                  Attributes={"RawMessageDelivery": "true"})
    first = sns.publish(TopicArn=topic, Message="debit 5", MessageGroupId="acct-1")
    assert first["SequenceNumber"].isdigit()
    again = sns.publish(TopicArn=topic, Message="debit 5", MessageGroupId="acct-1")
    assert again["MessageId"] == first["MessageId"]  # the same content within 5 minutes: one message
    sns.publish(TopicArn=topic, Message="credit 7", MessageGroupId="acct-1", MessageDeduplicationId="c7")
    sns.publish(TopicArn=topic, Message="credit 7 retried", MessageGroupId="acct-1",
                MessageDeduplicationId="c7")
    got = receive_all(sqs, url, 2, AttributeNames=["MessageGroupId"])
    assert [m["Body"] for m in got] == ["debit 5", "credit 7"]
    assert {m["Attributes"]["MessageGroupId"] for m in got} == {"acct-1"}


def test_fifo_topics_refuse_what_aws_refuses(sns: Any, ferry: EmbeddedBroker) -> None:
    topic = sns.create_topic(Name="strict.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    standard = sns.create_topic(Name="standard")["TopicArn"]
    for call in (lambda: sns.publish(TopicArn=topic, Message="no group"),
                 lambda: sns.publish(TopicArn=topic, Message="no dedup", MessageGroupId="g"),
                 lambda: sns.publish(TopicArn=standard, Message="m", MessageDeduplicationId="d"),
                 lambda: sns.subscribe(TopicArn=standard, Protocol="sqs",
                                       Endpoint="arn:aws:sqs:us-east-1:000000000000:some.fifo"),
                 lambda: sns.subscribe(TopicArn=topic, Protocol="http", Endpoint="http://127.0.0.1:9/x"),
                 lambda: sns.create_topic(Name="nofifo.fifo")):
        with pytest.raises(sns.exceptions.InvalidParameterException):
            call()
