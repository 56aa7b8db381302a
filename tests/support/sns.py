"""boto3 SNS clients pointed at a FerryMQ under test, and SQS queues subscribed to its topics."""

from __future__ import annotations

from typing import Any

import boto3

from tests.support.sqs import QUIET


def sns_client(http_url: str) -> Any:
    return boto3.client("sns", endpoint_url=http_url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test", config=QUIET)


def queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def subscribed_queue(sns: Any, sqs: Any, topic_arn: str, name: str, **attributes: str) -> tuple[str, str]:
    """(queue URL, subscription ARN) of a new queue subscribed to the topic."""
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sub = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn(sqs, url),
                        Attributes=attributes)
    return url, str(sub["SubscriptionArn"])
