"""SNS names and ARNs: ``arn:aws:sns:<region>:<account>:<topic>`` for a topic, the topic's ARN and
``:<uuid>`` for a subscription; the SQS queue ARNs an ``sqs`` subscription points at."""

from __future__ import annotations

import re

from ferrymq.protocols.aws.errors import AwsError

FIFO_SUFFIX = ".fifo"
TOPIC_NAME_MAX = 256
_TOPIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
_SQS_ARN = re.compile(r"arn:aws:sqs:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,80}(?:\.fifo)?)")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def invalid_parameter(what: str, reason: str = "") -> AwsError:
    """SNS's usual refusal: ``Invalid parameter: <what>[ Reason: <reason>]``."""
    return AwsError("InvalidParameterException",
                    f"Invalid parameter: {what}" + (f" Reason: {reason}" if reason else ""))


def not_found(what: str) -> AwsError:
    return AwsError("NotFoundException", f"{what} does not exist")


def is_fifo(name: str) -> bool:
    return name.endswith(FIFO_SUFFIX)


def check_topic_name(name: str, fifo_attribute: bool) -> None:
    """1-256 characters of letters, digits, hyphens and underscores, ``.fifo`` ending a FIFO topic's."""
    stem = name[: -len(FIFO_SUFFIX)] if is_fifo(name) else name
    if not _TOPIC_NAME.fullmatch(stem) or len(name) > TOPIC_NAME_MAX:
        raise invalid_parameter("Topic Name")
    if is_fifo(name) != fifo_attribute:
        raise invalid_parameter("Topic Name", "a FIFO topic's name ends with .fifo and it has the "
                                              "attribute FifoTopic=true; neither goes without the other")


def topic_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:sns:{region}:{account}:{name}"


def subscription_arn(topic: str, subscription_id: str) -> str:
    return f"{topic}:{subscription_id}"


def parse_topic_arn(arn: object, region: str, account: str, what: str = "TopicArn") -> str:
    """The topic name an ARN of this region and account names; InvalidParameter otherwise."""
    prefix = f"arn:aws:sns:{region}:{account}:"
    if not isinstance(arn, str) or not arn.startswith(prefix):
        raise invalid_parameter(what, "An ARN must have the form "
                                      f"arn:aws:sns:{region}:{account}:<topic name>")
    name = arn[len(prefix):]
    stem = name[: -len(FIFO_SUFFIX)] if is_fifo(name) else name
    if not _TOPIC_NAME.fullmatch(stem):
        raise invalid_parameter(what)
    return name


def parse_subscription_arn(arn: object, region: str, account: str) -> tuple[str, str]:
    """(topic name, subscription id) of a subscription ARN."""
    if not isinstance(arn, str) or ":" not in arn:
        raise invalid_parameter("SubscriptionArn")
    topic, _, sub_id = arn.rpartition(":")
    if not _UUID.fullmatch(sub_id):
        raise invalid_parameter("SubscriptionArn")
    return parse_topic_arn(topic, region, account, "SubscriptionArn"), sub_id


def parse_queue_arn(arn: str, account: str) -> str:
    """The queue name an ``sqs`` subscription's endpoint names (a queue of this account)."""
    found = _SQS_ARN.fullmatch(arn)
    if found is None or found.group(2) != account:
        raise invalid_parameter("SQS endpoint ARN")
    return found.group(3)
