"""kill -9 under SQS: every message whose SendMessage was answered survives, in-flight ones come
back, deleted ones stay deleted, and queue attributes and tags are kept."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferrymq.chaos.broker import free_port
from tests.support.sqs import receive_all, sqs_client


@contextlib.contextmanager
def serve(data_dir: Path, http_port: int) -> Iterator[subprocess.Popen[bytes]]:
    cmd = [sys.executable, "-c", "from ferrymq.cli import main; main()", "serve", "--data-dir",
           str(data_dir), "--amqp-port", "0", "--kafka-port", "0", "--http-port", str(http_port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", http_port), 0.2):
                break
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.mark.timeout(120)
def test_sqs_state_survives_kill_9(tmp_path: Path) -> None:
    port = free_port()
    sqs = sqs_client(f"http://127.0.0.1:{port}")
    with serve(tmp_path / "data", port) as proc:
        url = sqs.create_queue(QueueName="kept", tags={"t": "1"})["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "600"})
        for start in range(0, 50, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, start + 10)])
        sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=900)
        taken = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=5)["Messages"]
        for m in taken[:2]:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        time.sleep(0.3)  # the deletes' settle records reach the log (acks are not waited for)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    with serve(tmp_path / "data", port):
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attrs["VisibilityTimeout"] == "600"
        assert attrs["ApproximateNumberOfMessages"] == "48"
        assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"
        assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"t": "1"}
        sqs.delete_message(QueueUrl=url, ReceiptHandle=taken[2]["ReceiptHandle"])  # stale: no-op
        bodies = {m["Body"] for m in receive_all(sqs, url, 48)}
        deleted = {m["Body"] for m in taken[:2]}
        assert bodies == {f"m{i}" for i in range(50)} - deleted
