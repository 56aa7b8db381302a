"""boto3 SQS clients pointed at a FerryMQ under test (any credentials: loopback needs no keys)."""

from __future__ import annotations

import time
from typing import Any

import boto3
from botocore.config import Config

QUIET = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)


def sqs_client(http_url: str) -> Any:
    return boto3.client("sqs", endpoint_url=http_url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test", config=QUIET)


def error_code(exc: Any) -> str:
    return str(exc.response["Error"]["Code"])


def receive_all(sqs: Any, url: str, expected: int, bound_s: float = 10.0, **kwargs: Any) -> list[Any]:
    """Receive until ``expected`` messages came or ``bound_s`` passed (a bound, not an assertion)."""
    got: list[Any] = []
    deadline = time.monotonic() + bound_s
    while len(got) < expected and time.monotonic() < deadline:
        reply = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, **kwargs)
        got += reply.get("Messages", [])
    return got
