"""The AWS CLI (awscli from PyPI) drives SNS on FerryMQ with ``--endpoint-url``: a topic, an SQS
subscription, a publish with attributes read back from the queue, and an AWS error for a missing topic.
Each call is a real subprocess with a sealed HOME and environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ferrymq.testing import EmbeddedBroker

AWS = Path(sys.executable).with_name("aws")
pytestmark = pytest.mark.skipif(not AWS.exists(), reason="awscli not installed")


def _aws(ferry: EmbeddedBroker, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "AWS_CONFIG_FILE": str(home / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
           "AWS_ACCESS_KEY_ID": "ferry", "AWS_SECRET_ACCESS_KEY": "ferry-secret",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": ""}
    return subprocess.run([str(AWS), "--endpoint-url", ferry.http_url, "--output", "json", *args],
                          env=env, capture_output=True, text=True, timeout=60)


def _ok(ferry: EmbeddedBroker, home: Path, *args: str) -> Any:
    done = _aws(ferry, home, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def test_the_cli_creates_subscribes_and_publishes(ferry: EmbeddedBroker, tmp_path: Path) -> None:
    topic = _ok(ferry, tmp_path, "sns", "create-topic", "--name", "cli-topic")["TopicArn"]
    url = _ok(ferry, tmp_path, "sqs", "create-queue", "--queue-name", "cli-sub")["QueueUrl"]
    _ok(ferry, tmp_path, "sns", "subscribe", "--topic-arn", topic, "--protocol", "sqs",
        "--notification-endpoint", "arn:aws:sqs:us-east-1:000000000000:cli-sub",
        "--attributes", "RawMessageDelivery=true")
    sent = _ok(ferry, tmp_path, "sns", "publish", "--topic-arn", topic, "--message", "from the cli",
               "--message-attributes", '{"k": {"DataType": "String", "StringValue": "v"}}')
    assert sent["MessageId"]
    got = _ok(ferry, tmp_path, "sqs", "receive-message", "--queue-url", url, "--wait-time-seconds", "5",
              "--message-attribute-names", "All")["Messages"]
    assert [(m["Body"], m["MessageAttributes"]["k"]["StringValue"]) for m in got] == [("from the cli", "v")]
    listed = _ok(ferry, tmp_path, "sns", "list-subscriptions-by-topic", "--topic-arn", topic)
    assert [s["Protocol"] for s in listed["Subscriptions"]] == ["sqs"]


def test_the_cli_reports_sns_errors(ferry: EmbeddedBroker, tmp_path: Path) -> None:
    done = _aws(ferry, tmp_path, "sns", "get-topic-attributes", "--topic-arn",
                "arn:aws:sns:us-east-1:000000000000:absent")
    assert done.returncode == 255 and "(NotFound)" in done.stderr
