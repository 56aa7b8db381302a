"""Queue names, URLs and ARNs as SQS forms and reads them."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from ferrymq.protocols.aws.errors import AwsError, invalid

NAME_MAX = 80
FIFO_SUFFIX = ".fifo"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")


def is_fifo(name: str) -> bool:
    return name.endswith(FIFO_SUFFIX)


def valid_name(name: str) -> bool:
    """1 to 80 characters of A-Z, a-z, 0-9, hyphen and underscore (``.fifo`` counted, allowed)."""
    if len(name) > NAME_MAX:
        return False
    stem = name[: -len(FIFO_SUFFIX)] if is_fifo(name) else name
    return bool(_NAME.fullmatch(stem))


def check_name(name: str) -> None:
    if not valid_name(name):
        raise invalid("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in "
                      "length")


def queue_url(base: str, account: str, name: str) -> str:
    return f"{base}/{account}/{name}"


def queue_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:sqs:{region}:{account}:{name}"


def name_from_url(url: str, account: str) -> str:
    """The queue a QueueUrl names. Any host (clients rewrite it); the account must be ours."""
    if not isinstance(url, str) or not url:
        raise AwsError("MissingParameter", "The request must contain the parameter QueueUrl.")
    try:
        path = urlsplit(url).path if "://" in url else url
    except ValueError:  # urlsplit refuses a bracketed host that is no IPv6 address: "http://[x/"
        raise AwsError("InvalidAddress", f"The address {url} is not valid for this endpoint.") from None
    parts = [p for p in path.split("/") if p]
    if len(parts) == 2 and parts[0] == account and valid_name(parts[1]):
        return parts[1]
    if len(parts) == 2 and valid_name(parts[1]):
        raise AwsError("QueueDoesNotExist", "The specified queue does not exist.")
    raise AwsError("InvalidAddress", f"The address {url} is not valid for this endpoint.")


def name_from_arn(arn: str) -> str:
    """The queue an ARN names (``arn:aws:sqs:<region>:<account>:<name>``)."""
    parts = arn.split(":") if isinstance(arn, str) else []
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not valid_name(parts[5]):
        raise invalid(f"Value {arn} for parameter arn is invalid. Reason: not a queue ARN.")
    return parts[5]
