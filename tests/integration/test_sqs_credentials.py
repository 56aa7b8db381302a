"""With access keys configured, every SQS request needs a valid Signature V4 by one of them, and
acts in that key's vhost."""

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


def client(broker: EmbeddedBroker, key: str, secret: str) -> Any:
    return boto3.client("sqs", endpoint_url=broker.http_url, region_name="eu-west-1", config=QUIET,
                        aws_access_key_id=key, aws_secret_access_key=secret)


def test_a_signed_request_acts_in_its_keys_vhost(keyed: EmbeddedBroker) -> None:
    default, other = client(keyed, "AKIDEFAULT", "s3cret"), client(keyed, "AKIOTHER", "other-secret")
    url = other.create_queue(QueueName="only-in-other")["QueueUrl"]
    other.send_message(QueueUrl=url, MessageBody="x")
    assert "QueueUrls" not in default.list_queues(QueueNamePrefix="only-in-other")
    shown = requests.get(f"{keyed.http_url}/api/queues/other/only-in-other", auth=("guest", "guest"),
                         timeout=5).json()
    assert shown["messages"] == 1
    arn = other.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert arn.startswith("arn:aws:sqs:eu-west-1:")  # the region the request was signed for


@pytest.mark.parametrize(("key", "secret", "code"), [
    ("AKIDEFAULT", "wrong", "SignatureDoesNotMatch"),
    ("AKIUNKNOWN", "s3cret", "InvalidClientTokenId")])
def test_a_bad_signature_or_unknown_key_is_refused(keyed: EmbeddedBroker, key: str, secret: str,
                                                   code: str) -> None:
    with pytest.raises(ClientError) as exc:
        client(keyed, key, secret).list_queues()
    assert error_code(exc.value) == code
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_unsigned_request_is_refused_when_keys_are_configured(keyed: EmbeddedBroker) -> None:
    reply = requests.post(keyed.http_url + "/", data="{}", timeout=5, headers={
        "X-Amz-Target": "AmazonSQS.ListQueues", "Content-Type": "application/x-amz-json-1.0"})
    assert reply.status_code == 403
    assert reply.headers["x-amzn-query-error"].startswith("MissingAuthenticationToken")
