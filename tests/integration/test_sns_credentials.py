"""With access keys configured, SNS requests need a valid Signature V4 (service ``sns``) by one of
them and act in that key's vhost: the topic's exchange is made there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from ferrymq.config import AwsAccessKey
from ferrymq.testing import EmbeddedBroker
from tests.support.sqs import QUIET, error_code


@pytest.fixture(scope="module")
def keyed() -> Iterator[EmbeddedBroker]:
    keys = [AwsAccessKey("AKIDEFAULT", "s3cret", "guest", "/"),
            AwsAccessKey("AKIOTHER", "other-secret", "guest", "other")]
    with EmbeddedBroker(aws_access_keys=keys) as broker:
        requests.put(f"{broker.http_url}/api/vhosts/other", auth=("guest", "guest"),
                     timeout=5).raise_for_status()
        requests.put(f"{broker.http_url}/api/permissions/other/guest", auth=("guest", "guest"), timeout=5,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        yield broker


def client(broker: EmbeddedBroker, service: str, key: str, secret: str) -> Any:
    return boto3.client(service, endpoint_url=broker.http_url, region_name="eu-west-1", config=QUIET,
                        aws_access_key_id=key, aws_secret_access_key=secret)


def test_a_signed_publish_fans_out_in_the_keys_vhost(keyed: EmbeddedBroker) -> None:
    sns = client(keyed, "sns", "AKIOTHER", "other-secret")
    sqs = client(keyed, "sqs", "AKIOTHER", "other-secret")
    topic = sns.create_topic(Name="signed")["TopicArn"]
    assert topic == "arn:aws:sns:eu-west-1:000000000000:signed"  # the region it was signed for
    exchange = requests.get(f"{keyed.http_url}/api/exchanges/other/signed", auth=("guest", "guest"),
                            timeout=5)
    assert exchange.status_code == 200 and exchange.json()["type"] == "fanout"
    assert client(keyed, "sns", "AKIDEFAULT", "s3cret").list_topics()["Topics"] == []
    url = sqs.create_queue(QueueName="signed-q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    sns.publish(TopicArn=topic, Message="signed hello")
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
    assert [m["Body"] for m in got] == ["signed hello"]


@pytest.mark.parametrize(("key", "secret", "code"), [
    ("AKIDEFAULT", "wrong", "SignatureDoesNotMatch"), ("AKIUNKNOWN", "s3cret", "InvalidClientTokenId")])
def test_a_bad_signature_or_unknown_key_is_refused(keyed: EmbeddedBroker, key: str, secret: str,
                                                   code: str) -> None:
    with pytest.raises(ClientError) as caught:
        client(keyed, "sns", key, secret).list_topics()
    assert error_code(caught.value) == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
