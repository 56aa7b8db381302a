"""Wrong SNS calls get AWS's error shapes (code, HTTP status, Sender), read by botocore as AWS's own
exceptions; raw forms for what botocore would refuse to send; never a 500."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferrymq.testing import EmbeddedBroker
from tests.support.sns import sns_client
from tests.support.sqs import error_code, sqs_client

MISSING = "arn:aws:sns:us-east-1:000000000000:no-such-topic"
NS = "{http://sns.amazonaws.com/doc/2010-03-31/}"


@pytest.fixture(scope="module")
def sns(ferry: EmbeddedBroker) -> Any:
    return sns_client(ferry.http_url)


def _post(ferry: EmbeddedBroker, **form: str) -> tuple[int, str, str]:
    reply = requests.post(ferry.http_url + "/", data=dict(form, Version="2010-03-31"), timeout=10)
    root = ET.fromstring(reply.text)
    assert root.tag == f"{NS}ErrorResponse"
    return reply.status_code, root.findtext(f"{NS}Error/{NS}Code") or "", \
        root.findtext(f"{NS}Error/{NS}Type") or ""


def test_unknown_topics_are_not_found(sns: Any) -> None:
    for call in (lambda: sns.publish(TopicArn=MISSING, Message="m"),
                 lambda: sns.get_topic_attributes(TopicArn=MISSING),
                 lambda: sns.subscribe(TopicArn=MISSING, Protocol="sqs",
                                       Endpoint="arn:aws:sqs:us-east-1:000000000000:q"),
                 lambda: sns.list_subscriptions_by_topic(TopicArn=MISSING)):
        with pytest.raises(sns.exceptions.NotFoundException) as caught:
            call()
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    sns.delete_topic(TopicArn=MISSING)  # as AWS: deleting what is not there succeeds


def test_unknown_subscriptions_and_tagged_resources(sns: Any) -> None:
    topic = sns.create_topic(Name="errs")["TopicArn"]
    with pytest.raises(sns.exceptions.NotFoundException):
        sns.get_subscription_attributes(SubscriptionArn=topic + ":00000000-0000-4000-8000-000000000000")
    with pytest.raises(sns.exceptions.ResourceNotFoundException):
        sns.list_tags_for_resource(ResourceArn=MISSING)


def test_bad_parameters_are_invalid_parameter(sns: Any) -> None:
    topic = sns.create_topic(Name="params")["TopicArn"]
    for call in (lambda: sns.create_topic(Name="bad name!"),
                 lambda: sns.create_topic(Name="plain", Attributes={"FifoTopic": "true"}),
                 lambda: sns.publish(TopicArn="not-an-arn", Message="m"),
                 lambda: sns.publish(TopicArn=topic, Message=""),
                 lambda: sns.publish(TopicArn=topic, Message="x" * (256 * 1024 + 1)),
                 lambda: sns.publish(TopicArn=topic, Message="{}", MessageStructure="json"),
                 lambda: sns.subscribe(TopicArn=topic, Protocol="carrier-pigeon", Endpoint="x"),
                 lambda: sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint="not-an-arn"),
                 lambda: sns.set_topic_attributes(TopicArn=topic, AttributeName="Nope", AttributeValue="1")):
        with pytest.raises(sns.exceptions.InvalidParameterException) as caught:
            call()
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_bad_batches_are_refused_whole(sns: Any) -> None:
    topic = sns.create_topic(Name="batches")["TopicArn"]
    cases = ((sns.exceptions.TooManyEntriesInBatchRequestException,
              [{"Id": str(i), "Message": "m"} for i in range(11)]),
             (sns.exceptions.BatchEntryIdsNotDistinctException,
              [{"Id": "same", "Message": "a"}, {"Id": "same", "Message": "b"}]),
             (sns.exceptions.InvalidBatchEntryIdException, [{"Id": "bad id!", "Message": "a"}]))
    for kind, entries in cases:
        with pytest.raises(kind):
            sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries)


def test_raw_forms_get_invalid_action_and_missing_parameter(ferry: EmbeddedBroker) -> None:
    assert _post(ferry, Action="LaunchRocket") == (400, "InvalidAction", "Sender")
    assert _post(ferry, Action="CreateTopic") == (400, "MissingParameter", "Sender")
    assert _post(ferry, Action="Publish", Message="m") == (400, "InvalidParameter", "Sender")
    assert _post(ferry, Action="Subscribe", TopicArn=MISSING, Protocol="sqs")[:2] == (404, "NotFound")


def test_sqs_still_answers_beside_sns(ferry: EmbeddedBroker, sns: Any) -> None:
    sqs = sqs_client(ferry.http_url)
    url = sqs.create_queue(QueueName="beside-sns")["QueueUrl"]
    assert sqs.get_queue_url(QueueName="beside-sns")["QueueUrl"] == url
    with pytest.raises(ClientError) as caught:
        sqs.get_queue_url(QueueName="absent-beside-sns")
    assert error_code(caught.value) == "AWS.SimpleQueueService.NonExistentQueue"


_actions = st.sampled_from(["CreateTopic", "Publish", "PublishBatch", "Subscribe", "SetTopicAttributes",
                            "SetSubscriptionAttributes", "ConfirmSubscription", "Unsubscribe",
                            "ListTopics", "TagResource", "Nope"])
_names = st.sampled_from(["Name", "TopicArn", "TargetArn", "Message", "Subject", "MessageStructure",
                          "Protocol", "Endpoint", "Token", "SubscriptionArn", "AttributeName",
                          "AttributeValue", "NextToken", "Attributes.entry.1.key",
                          "Attributes.entry.1.value", "MessageAttributes.entry.1.Name",
                          "MessageAttributes.entry.1.Value.DataType",
                          "MessageAttributes.entry.1.Value.StringValue",
                          "PublishBatchRequestEntries.member.1.Id", "PublishBatchRequestEntries.member.1",
                          "Tags.member.1.Key", "MessageGroupId"])
_values = st.one_of(st.text(max_size=30), st.sampled_from([
    "arn:aws:sns:us-east-1:000000000000:fuzz", "sqs", "http", "json", "{}", '{"default": 1}', "[]",
    "arn:aws:sqs:us-east-1:000000000000:fuzz-q", "FilterPolicy", "RawMessageDelivery", "String", "Number"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_actions, st.dictionaries(_names, _values, max_size=6))
def test_random_forms_get_aws_answers_never_a_500(ferry: EmbeddedBroker, action: str,
                                                  params: dict[str, str]) -> None:
    requests.post(ferry.http_url + "/", data={"Action": "CreateTopic", "Name": "fuzz",
                                              "Version": "2010-03-31"}, timeout=10)
    reply = requests.post(ferry.http_url + "/", data=dict(params, Action=action, Version="2010-03-31"),
                          timeout=10)
    assert reply.status_code < 500, reply.text
    assert ET.fromstring(reply.text).tag.startswith(NS)
