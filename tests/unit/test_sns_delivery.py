"""SNS delivery pieces that need no broker: the retry schedule a DeliveryPolicy gives, the
envelope's layout and timestamps, and ARNs."""

from __future__ import annotations

import json

import pytest

from ferrymq.protocols.aws.attributes import Attribute
from ferrymq.protocols.aws.errors import AwsError
from ferrymq.protocols.sns import delivery_policy, envelope, names
from ferrymq.protocols.sns.delivery_policy import DeliveryPolicyError


def _delays(policy: dict[str, object]) -> list[float]:
    return delivery_policy.parse(json.dumps({"healthyRetryPolicy": policy})).delays_s()


def test_the_default_policy_retries_three_times_twenty_seconds_apart() -> None:
    assert delivery_policy.parse(None).delays_s() == [20.0, 20.0, 20.0]


def test_the_four_phases_come_in_aws_order() -> None:
    delays = _delays({"numRetries": 8, "numNoDelayRetries": 2, "numMinDelayRetries": 1,
                      "numMaxDelayRetries": 1, "minDelayTarget": 1, "maxDelayTarget": 16,
                      "backoffFunction": "exponential"})
    assert delays[:3] == [0.0, 0.0, 1.0] and delays[-1] == 16.0
    backoff = delays[3:7]
    assert backoff[0] == 1.0 and backoff[-1] == pytest.approx(16.0)
    assert backoff == sorted(backoff) and backoff[1] / backoff[0] == pytest.approx(backoff[2] / backoff[1])


@pytest.mark.parametrize("function", delivery_policy.FUNCTIONS)
def test_every_backoff_rises_from_min_to_max(function: str) -> None:
    delays = _delays({"numRetries": 5, "minDelayTarget": 2, "maxDelayTarget": 30,
                      "backoffFunction": function})
    assert delays[0] == 2.0 and delays[-1] == pytest.approx(30.0) and delays == sorted(delays)


def test_a_topic_policy_is_read_from_its_http_section() -> None:
    text = json.dumps({"http": {"defaultHealthyRetryPolicy": {"numRetries": 1, "numNoDelayRetries": 1}}})
    assert delivery_policy.parse(text).delays_s() == [0.0]


@pytest.mark.parametrize("policy", [{"numRetries": 101}, {"minDelayTarget": 0},
                                    {"minDelayTarget": 30, "maxDelayTarget": 20},
                                    {"numRetries": 1, "numNoDelayRetries": 2},
                                    {"backoffFunction": "cubic"}, {"numRetries": "3"}])
def test_bad_policies_are_refused(policy: dict[str, object]) -> None:
    with pytest.raises(DeliveryPolicyError):
        _delays(policy)


def test_timestamps_are_utc_with_milliseconds() -> None:
    assert envelope.timestamp(1_700_000_000_007) == "2023-11-14T22:13:20.007Z"


def test_the_notification_has_sns_fields_in_sns_order_and_a_stable_signature() -> None:
    fields = dict(key=b"k", message_id="id-1", topic_arn="arn:aws:sns:us-east-1:000000000000:t",
                  subject=None, message="m", wall_ms=0, base_url="http://h",
                  subscription_arn="arn:aws:sns:us-east-1:000000000000:t:x",
                  attributes={"a": Attribute("String", "v")})
    text = envelope.notification(**fields)  # type: ignore[arg-type]
    doc = json.loads(text)
    assert list(doc) == ["Type", "MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion",
                         "Signature", "SigningCertURL", "UnsubscribeURL", "MessageAttributes"]
    assert '"Type" : "Notification"' in text  # SNS's own spacing
    assert envelope.notification(**fields) == text  # type: ignore[arg-type]
    assert json.loads(envelope.notification(**dict(fields, key=b"other")))["Signature"] != doc["Signature"]  # type: ignore[arg-type]


def test_arns_name_topics_and_subscriptions_of_this_account() -> None:
    arn = names.topic_arn("us-east-1", "000000000000", "t.fifo")
    assert names.parse_topic_arn(arn, "us-east-1", "000000000000") == "t.fifo"
    sub = names.subscription_arn(arn, "6b0c7d1e-3a7f-4c55-9a35-0f6a5b3c2d11")
    assert names.parse_subscription_arn(sub, "us-east-1", "000000000000") == ("t.fifo", sub.rsplit(":", 1)[1])
    assert names.parse_queue_arn("arn:aws:sqs:us-east-1:000000000000:q", "000000000000") == "q"
    for bad in ("arn:aws:sns:eu-west-1:000000000000:t", "arn:aws:sns:us-east-1:111111111111:t", "t"):
        with pytest.raises(AwsError):
            names.parse_topic_arn(bad, "us-east-1", "000000000000")
