"""The AWS CLI (awscli from PyPI) against FerryMQ's SQS endpoint with ``--endpoint-url``.

Every call is a real ``aws sqs ...`` subprocess with a private HOME and config file, so the
machine's own AWS configuration is never read. awscli 1.x does not check MD5OfBody or
MD5OfMessageAttributes itself (SDKs such as Java's do), so the tests check them against AWS's
documented algorithm, written out here independently of FerryMQ's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferrymq.testing import EmbeddedBroker
from tests.support.sqs import sqs_client

AWS = Path(sys.executable).with_name("aws")  # awscli from PyPI, installed beside this interpreter

pytestmark = pytest.mark.skipif(not AWS.exists(), reason="awscli not installed")


# awscli v1 exits 255 on a service error (v2 uses 254); the error code is the query-protocol one,
# which botocore takes from the x-amzn-query-error header of a JSON-protocol reply.
SERVICE_ERROR_EXIT = 255


class Cli:
    """``aws sqs`` with the endpoint and a sealed environment; JSON output parsed."""

    def __init__(self, endpoint: str, home: Path) -> None:
        self.endpoint = endpoint
        config = home / "config"
        config.write_text("[default]\nregion = us-east-1\noutput = json\n")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
            "AWS_ACCESS_KEY_ID": "ferry", "AWS_SECRET_ACCESS_KEY": "ferry-secret",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_PAGER": "",
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(AWS), "--endpoint-url", self.endpoint, "--output", "json", "sqs", *args]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)

    def __call__(self, *args: str) -> Any:
        done = self.run(*args)
        assert done.returncode == 0, f"aws sqs {' '.join(args)} -> {done.returncode}\n{done.stderr}"
        return json.loads(done.stdout) if done.stdout.strip() else None


def _length_prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def aws_md5_of_attributes(attributes: dict[str, dict[str, Any]], raw: dict[str, bytes]) -> str:
    """AWS's MD5OfMessageAttributes: per name in sorted order, the length-prefixed name and data
    type, a transport byte (1 string, 2 binary) and the length-prefixed value. ``raw``: binary
    values as bytes."""
    digest = hashlib.md5()
    for name in sorted(attributes):
        data_type = attributes[name]["DataType"]
        digest.update(_length_prefixed(name.encode()) + _length_prefixed(data_type.encode()))
        if data_type.startswith("Binary"):
            digest.update(b"\x02" + _length_prefixed(raw[name]))
        else:
            digest.update(b"\x01" + _length_prefixed(attributes[name]["StringValue"].encode()))
    return digest.hexdigest()


@pytest.fixture(scope="module")
def cli(ferry: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    yield Cli(ferry.http_url, tmp_path_factory.mktemp("aws-home"))


def test_create_queue_with_attributes_then_get_queue_attributes_reports_them(cli):
    url = cli("create-queue", "--queue-name", "cli-attrs",
              "--attributes", "VisibilityTimeout=45,DelaySeconds=2,MessageRetentionPeriod=3600")["QueueUrl"]
    assert url.endswith("/000000000000/cli-attrs")
    attrs = cli("get-queue-attributes", "--queue-url", url, "--attribute-names", "All")["Attributes"]
    assert attrs["VisibilityTimeout"] == "45"
    assert attrs["DelaySeconds"] == "2"
    assert attrs["MessageRetentionPeriod"] == "3600"
    assert attrs["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:cli-attrs"


def test_list_queues_with_prefix_shows_only_matching_queue_urls(cli):
    for name in ("cli-list-a", "cli-list-b", "other-cli-list"):
        cli("create-queue", "--queue-name", name)
    urls = cli("list-queues", "--queue-name-prefix", "cli-list-")["QueueUrls"]
    assert sorted(u.rsplit("/", 1)[1] for u in urls) == ["cli-list-a", "cli-list-b"]


def test_send_then_receive_all_attributes_with_aws_md5s_then_delete_removes_it(cli):
    url = cli("create-queue", "--queue-name", "cli-messages")["QueueUrl"]
    attributes = json.dumps({
        "colour": {"DataType": "String", "StringValue": "blå"},
        "count": {"DataType": "Number", "StringValue": "42"},
        "blob": {"DataType": "Binary", "BinaryValue": "raw\tbytes"},  # CLI v1: blobs go in raw
    })
    sent = cli("send-message", "--queue-url", url, "--message-body", "hello from the cli ✓ 🚢",
               "--message-attributes", attributes)
    got = cli("receive-message", "--queue-url", url, "--attribute-names", "All",
              "--message-attribute-names", "All", "--wait-time-seconds", "5")["Messages"]
    assert len(got) == 1
    message = got[0]
    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == "hello from the cli ✓ 🚢"
    body_md5 = hashlib.md5("hello from the cli ✓ 🚢".encode()).hexdigest()
    assert sent["MD5OfMessageBody"] == message["MD5OfBody"] == body_md5
    attributes_md5 = aws_md5_of_attributes(json.loads(attributes), {"blob": b"raw\tbytes"})
    assert sent["MD5OfMessageAttributes"] == message["MD5OfMessageAttributes"] == attributes_md5
    assert message["MessageAttributes"]["colour"] == {"DataType": "String", "StringValue": "blå"}
    assert message["MessageAttributes"]["count"] == {"DataType": "Number", "StringValue": "42"}
    blob = message["MessageAttributes"]["blob"]
    assert blob["DataType"] == "Binary" and base64.b64decode(blob["BinaryValue"]) == b"raw\tbytes"
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert int(message["Attributes"]["SentTimestamp"]) > 0
    cli("delete-message", "--queue-url", url, "--receipt-handle", message["ReceiptHandle"])
    attrs = cli("get-queue-attributes", "--queue-url", url, "--attribute-names",
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_set_queue_attributes_redrive_policy_moves_a_twice_received_message_to_the_dlq(cli):
    dlq = cli("create-queue", "--queue-name", "cli-dlq")["QueueUrl"]
    dlq_arn = "arn:aws:sqs:us-east-1:000000000000:cli-dlq"  # as GetQueueAttributes reports (above)
    source = cli("create-queue", "--queue-name", "cli-source")["QueueUrl"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    cli("set-queue-attributes", "--queue-url", source, "--attributes",
        json.dumps({"RedrivePolicy": policy}))
    stored = cli("get-queue-attributes", "--queue-url", source,
                 "--attribute-names", "RedrivePolicy")["Attributes"]["RedrivePolicy"]
    assert json.loads(stored) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}
    cli("send-message", "--queue-url", source, "--message-body", "poison")
    for _ in range(2):  # received, then released at once: two receives use up maxReceiveCount
        got = cli("receive-message", "--queue-url", source, "--wait-time-seconds", "5",
                  "--visibility-timeout", "0")["Messages"]
        assert [m["Body"] for m in got] == ["poison"]
    moved = cli("receive-message", "--queue-url", dlq, "--wait-time-seconds", "5")["Messages"]
    assert [m["Body"] for m in moved] == ["poison"]
    assert cli("receive-message", "--queue-url", source) is None  # nothing left in the source
    sources = cli("list-dead-letter-source-queues", "--queue-url", dlq)["queueUrls"]
    assert sources == [source]


def _depth(cli: Cli, url: str) -> str:
    attrs = cli("get-queue-attributes", "--queue-url", url,
                "--attribute-names", "ApproximateNumberOfMessages")["Attributes"]
    return str(attrs["ApproximateNumberOfMessages"])


def test_send_message_batch_then_purge_queue_empties_it(cli):
    url = cli("create-queue", "--queue-name", "cli-purge")["QueueUrl"]
    entries = json.dumps([{"Id": f"e{n}", "MessageBody": f"m{n}"} for n in range(3)])
    sent = cli("send-message-batch", "--queue-url", url, "--entries", entries)
    assert sorted(e["Id"] for e in sent["Successful"]) == ["e0", "e1", "e2"]
    assert _depth(cli, url) == "3"
    cli("purge-queue", "--queue-url", url)
    assert _depth(cli, url) == "0"


def test_delete_queue_then_get_queue_url_fails_with_nonexistent_queue(cli):
    url = cli("create-queue", "--queue-name", "cli-doomed")["QueueUrl"]
    cli("delete-queue", "--queue-url", url)
    done = cli.run("get-queue-url", "--queue-name", "cli-doomed")
    assert done.returncode == SERVICE_ERROR_EXIT, done.stderr
    assert "(AWS.SimpleQueueService.NonExistentQueue)" in done.stderr, done.stderr


def test_receive_from_a_missing_queue_exits_255_naming_the_aws_error_code(cli, ferry):
    done = cli.run("receive-message", "--queue-url", f"{ferry.http_url}/000000000000/cli-never-made")
    assert done.returncode == SERVICE_ERROR_EXIT, done.stderr
    assert "(AWS.SimpleQueueService.NonExistentQueue)" in done.stderr, done.stderr
    assert "ReceiveMessage operation" in done.stderr


def test_list_queues_with_a_small_page_size_follows_next_tokens_to_every_queue(cli, ferry):
    client = sqs_client(ferry.http_url)
    names = [f"cli-paged-{n}" for n in range(5)]
    for name in names:
        client.create_queue(QueueName=name)
    first = cli("list-queues", "--queue-name-prefix", "cli-paged-", "--no-paginate", "--max-results", "2")
    assert len(first["QueueUrls"]) == 2 and first["NextToken"]  # one page, as the server cut it
    urls = cli("list-queues", "--queue-name-prefix", "cli-paged-", "--page-size", "2")["QueueUrls"]
    assert sorted(u.rsplit("/", 1)[1] for u in urls) == names  # the CLI followed every NextToken


def test_tag_queue_then_list_queue_tags_shows_the_tags(cli):
    url = cli("create-queue", "--queue-name", "cli-tags", "--tags", "team=ferry")["QueueUrl"]
    cli("tag-queue", "--queue-url", url, "--tags", "env=test,cost=low")
    assert cli("list-queue-tags", "--queue-url", url)["Tags"] == {"team": "ferry", "env": "test",
                                                                 "cost": "low"}
