"""SQS queue actions through boto3 against a real FerryMQ, and the AWS errors for wrong calls."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from ferrymq.testing import EmbeddedBroker
from tests.support.sqs import error_code, sqs_client


@pytest.fixture(scope="module")
def sqs(ferry: EmbeddedBroker) -> Any:
    return sqs_client(ferry.http_url)


def test_create_is_idempotent_only_with_identical_attributes(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="same", Attributes={"VisibilityTimeout": "40"})["QueueUrl"]
    assert sqs.create_queue(QueueName="same", Attributes={"VisibilityTimeout": "40"})["QueueUrl"] == url
    assert sqs.create_queue(QueueName="same")["QueueUrl"] == url
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName="same", Attributes={"VisibilityTimeout": "41"})
    assert error_code(exc.value) == "QueueAlreadyExists"
    assert url.endswith("/000000000000/same") and sqs.get_queue_url(QueueName="same")["QueueUrl"] == url


def test_queue_names_and_attribute_values_are_checked(sqs: Any) -> None:
    for name, attrs, code in (
            ("bad name", {}, "InvalidParameterValue"),
            ("x" * 81, {}, "InvalidParameterValue"),
            ("notfifo", {"FifoQueue": "true"}, "InvalidParameterValue"),
            ("ok1", {"VisibilityTimeout": "43201"}, "InvalidAttributeValue"),
            ("ok2", {"MaximumMessageSize": "1023"}, "InvalidAttributeValue"),
            ("ok3", {"NoSuchAttribute": "1"}, "InvalidAttributeName"),
            ("ok4", {"ContentBasedDeduplication": "true"}, "InvalidAttributeName"),
            ("ok5", {"RedrivePolicy": json.dumps({"deadLetterTargetArn":
                                                  "arn:aws:sqs:us-east-1:000000000000:missing",
                                                  "maxReceiveCount": 3})}, "InvalidParameterValue")):
        with pytest.raises(ClientError) as exc:
            sqs.create_queue(QueueName=name, Attributes=attrs)
        assert error_code(exc.value) == code, (name, attrs)


def test_list_filters_by_prefix_and_pages_with_next_token(sqs: Any) -> None:
    for i in range(5):
        sqs.create_queue(QueueName=f"page-{i}")
    assert len(sqs.list_queues(QueueNamePrefix="page-")["QueueUrls"]) == 5
    first = sqs.list_queues(QueueNamePrefix="page-", MaxResults=2)
    second = sqs.list_queues(QueueNamePrefix="page-", MaxResults=2, NextToken=first["NextToken"])
    third = sqs.list_queues(QueueNamePrefix="page-", MaxResults=2, NextToken=second["NextToken"])
    names = [u.rsplit("/", 1)[1] for page in (first, second, third) for u in page["QueueUrls"]]
    assert names == [f"page-{i}" for i in range(5)] and "NextToken" not in third


def test_attributes_are_read_set_and_kept_by_the_core(sqs: Any, ferry: EmbeddedBroker) -> None:
    url = sqs.create_queue(QueueName="attrs")["QueueUrl"]
    every = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert every["VisibilityTimeout"] == "30" and every["MessageRetentionPeriod"] == "345600"
    assert every["MaximumMessageSize"] == "1048576" and every["QueueArn"].endswith(":attrs")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "7", "DelaySeconds": "2"})
    some = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "DelaySeconds"])
    assert some["Attributes"] == {"VisibilityTimeout": "7", "DelaySeconds": "2"}
    shown = requests.get(f"{ferry.http_url}/api/queues/%2F/attrs", auth=("guest", "guest"), timeout=5).json()
    assert shown["arguments"]["x-delivery-lease"] == 7000 and shown["durable"] is True
    with pytest.raises(ClientError) as exc:
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Nope"])
    assert error_code(exc.value) == "InvalidAttributeName"


def test_tags_are_added_removed_and_listed(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="tagged", tags={"team": "a"})["QueueUrl"]
    sqs.tag_queue(QueueUrl=url, Tags={"env": "test"})
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "a", "env": "test"}
    sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"env": "test"}


def test_purge_empties_the_queue_once_a_minute(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="purged")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    sqs.purge_queue(QueueUrl=url)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    with pytest.raises(ClientError) as exc:
        sqs.purge_queue(QueueUrl=url)
    assert error_code(exc.value) == "AWS.SimpleQueueService.PurgeQueueInProgress"


def test_a_deleted_queue_is_gone_and_its_name_waits_a_minute(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="deleted")["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    for call in (lambda: sqs.send_message(QueueUrl=url, MessageBody="x"),
                 lambda: sqs.get_queue_url(QueueName="deleted")):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_code(exc.value) == "AWS.SimpleQueueService.NonExistentQueue"
    with pytest.raises(ClientError) as exc:
        sqs.create_queue(QueueName="deleted")
    assert error_code(exc.value) == "AWS.SimpleQueueService.QueueDeletedRecently"


def test_permissions_are_kept_in_the_policy(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="shared")["QueueUrl"]
    sqs.add_permission(QueueUrl=url, Label="p1", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
                        ["Attributes"]["Policy"])
    assert policy["Statement"][0]["Sid"] == "p1"
    assert policy["Statement"][0]["Action"] == ["SQS:SendMessage"]
    with pytest.raises(ClientError) as exc:
        sqs.add_permission(QueueUrl=url, Label="p1", AWSAccountIds=["1"], Actions=["SendMessage"])
    assert error_code(exc.value) == "InvalidParameterValue"
    sqs.remove_permission(QueueUrl=url, Label="p1")
    with pytest.raises(ClientError) as exc:
        sqs.remove_permission(QueueUrl=url, Label="p1")
    assert error_code(exc.value) == "InvalidParameterValue"


def test_amqp_declared_queues_are_sqs_queues_too(sqs: Any, ferry: EmbeddedBroker) -> None:
    requests.put(f"{ferry.http_url}/api/queues/%2F/from-amqp", auth=("guest", "guest"), timeout=5,
                 json={"durable": True, "arguments": {"x-delivery-lease": 12000}}).raise_for_status()
    url = sqs.get_queue_url(QueueName="from-amqp")["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert attrs == {"VisibilityTimeout": "12"}


def test_wrong_calls_get_aws_errors_never_a_500(ferry: EmbeddedBroker) -> None:
    target = {"Content-Type": "application/x-amz-json-1.0"}
    for headers, body, status, code in (
            ({**target, "X-Amz-Target": "AmazonSQS.NoSuchAction"}, b"{}", 400, "InvalidAction"),
            ({**target, "X-Amz-Target": "AmazonSQS.SendMessage"}, b"{not json", 400,
             "SerializationException"),
            ({**target, "X-Amz-Target": "AmazonSQS.SendMessage"}, b"[1]", 400, "SerializationException"),
            ({**target, "X-Amz-Target": "AmazonSQS.SendMessage"}, b"{}", 400, "MissingParameter"),
            ({**target, "X-Amz-Target": "AmazonSQS.ReceiveMessage"},
             b'{"QueueUrl": "http://h/000000000000/none"}', 400, "AWS.SimpleQueueService.NonExistentQueue")):
        reply = requests.post(ferry.http_url + "/", headers=headers, data=body, timeout=5)
        assert reply.status_code == status, reply.text
        assert reply.headers["x-amzn-query-error"].split(";")[0] == code
        assert "__type" in reply.json()


def test_sqs_queues_show_in_prometheus_metrics_like_any_queue(sqs: Any, ferry: EmbeddedBroker) -> None:
    url = sqs.create_queue(QueueName="scraped")["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(3)])
    sqs.receive_message(QueueUrl=url)
    text = requests.get(f"{ferry.http_url}/metrics/per-object", timeout=5).text
    lines = [line for line in text.splitlines() if 'queue="scraped"' in line]
    assert 'rabbitmq_queue_messages_ready{vhost="/",queue="scraped"} 2' in lines
    assert 'rabbitmq_queue_messages_unacked{vhost="/",queue="scraped"} 1' in lines


def test_an_oversized_request_gets_an_aws_error_and_the_endpoint_goes_on(ferry: EmbeddedBroker,
                                                                          sqs: Any) -> None:
    from ferrymq import limits
    url = sqs.create_queue(QueueName="after-big")["QueueUrl"]
    padding = b"x" * limits.HTTP_BODY_MAX_BYTES
    huge = b'{"QueueUrl": "' + url.encode() + b'", "MessageBody": "' + padding + b'"}'
    reply = requests.post(ferry.http_url + "/", data=huge, timeout=30, headers={
        "X-Amz-Target": "AmazonSQS.SendMessage", "Content-Type": "application/x-amz-json-1.0"})
    assert reply.status_code == 413
    assert reply.headers["x-amzn-query-error"].startswith("RequestEntityTooLarge")
    sqs.send_message(QueueUrl=url, MessageBody="still here")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "still here"


def test_lease_counters_count_released_and_ignored_settles_in_metrics(sqs: Any,
                                                                      ferry: EmbeddedBroker) -> None:
    def counter(name: str) -> float:
        text = requests.get(f"{ferry.http_url}/metrics", timeout=5).text
        (line,) = [x for x in text.splitlines() if x.startswith(f"ferrymq_{name}_total ")]
        return float(line.split()[1])
    before = counter("leases_released"), counter("late_settles_ignored")
    url = sqs.create_queue(QueueName="leased-metrics")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    (msg,) = sqs.receive_message(QueueUrl=url)["Messages"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"], VisibilityTimeout=0)
    assert counter("leases_released") == before[0] + 1
    assert counter("leases_expired") >= 0 and counter("late_settles_ignored") == before[1]
