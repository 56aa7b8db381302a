"""SQS messages through boto3 against a real FerryMQ: send, receive, delete, visibility, long
polling, delays, attributes and their MD5s, limits, batches, redrive, and AMQP on the same queues."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pika
import pytest
from botocore.exceptions import ClientError

from ferrymq.testing import EmbeddedBroker
from tests.support.sqs import error_code, receive_all, sqs_client


@pytest.fixture(scope="module")
def sqs(ferry: EmbeddedBroker) -> Any:
    return sqs_client(ferry.http_url)


@pytest.fixture
def url(sqs: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    name = request.node.name.replace("[", "-").replace("]", "")[:70]
    queue_url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    yield queue_url
    sqs.delete_queue(QueueUrl=queue_url)


def test_a_sent_message_is_received_with_its_attributes_and_deleted_for_good(sqs: Any, url: str) -> None:
    attrs = {"n": {"DataType": "Number", "StringValue": "42"},
             "s": {"DataType": "String.custom", "StringValue": "héllo"},
             "b": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="body ✓", MessageAttributes=attrs)
    assert sent["MD5OfMessageBody"] == hashlib.md5("body ✓".encode()).hexdigest()
    got = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], AttributeNames=["All"])
    (msg,) = got["Messages"]
    assert msg["MessageId"] == sent["MessageId"] and msg["Body"] == "body ✓"
    assert msg["MessageAttributes"] == attrs
    assert msg["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert msg["Attributes"]["ApproximateReceiveCount"] == "1"
    system = msg["Attributes"]
    assert int(system["SentTimestamp"]) <= int(system["ApproximateFirstReceiveTimestamp"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])  # again: still a success
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == counts["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_only_the_message_attributes_asked_for_come_back_with_their_own_md5(sqs: Any, url: str) -> None:
    attrs = {"color.red": {"DataType": "String", "StringValue": "r"},
             "color.blue": {"DataType": "String", "StringValue": "b"},
             "size": {"DataType": "Number", "StringValue": "3"}}
    sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=attrs)
    (msg,) = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["color.*"])["Messages"]
    assert set(msg["MessageAttributes"]) == {"color.red", "color.blue"}  # botocore checked the MD5


def test_a_received_message_is_invisible_until_its_visibility_timeout_ends(sqs: Any, url: str) -> None:
    sqs.send_message(QueueUrl=url, MessageBody="once")
    (first,) = sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)["Messages"]
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    (again,) = receive_all(sqs, url, 1, AttributeNames=["ApproximateReceiveCount"])
    assert again["MessageId"] == first["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again["ReceiptHandle"] != first["ReceiptHandle"]


def test_change_visibility_to_zero_releases_and_a_done_message_is_not_in_flight(sqs: Any, url: str) -> None:
    sqs.send_message(QueueUrl=url, MessageBody="m")
    (msg,) = sqs.receive_message(QueueUrl=url)["Messages"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"], VisibilityTimeout=0)
    (again,) = sqs.receive_message(QueueUrl=url)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
    with pytest.raises(ClientError) as exc:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"],
                                      VisibilityTimeout=10)
    assert error_code(exc.value) == "AWS.SimpleQueueService.MessageNotInflight"


def test_a_long_poll_returns_as_soon_as_a_message_is_sent(sqs: Any, url: str) -> None:
    result: dict[str, Any] = {}

    def poll() -> None:
        started = time.monotonic()
        result["reply"] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20)
        result["waited"] = time.monotonic() - started
    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.3)
    sqs.send_message(QueueUrl=url, MessageBody="wake")
    thread.join(25)
    assert result["reply"]["Messages"][0]["Body"] == "wake"
    assert result["waited"] < 20  # woken by the send, not by the end of the wait


def test_a_long_poll_on_an_empty_queue_answers_empty_when_its_wait_ends(sqs: Any, url: str) -> None:
    reply = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert "Messages" not in reply
    sqs.send_message(QueueUrl=url, MessageBody="after")  # the ended poll took nothing with it
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "after"


def test_a_message_delayed_per_message_or_per_queue_is_not_received_before_its_delay(
        sqs: Any, url: str) -> None:
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert [m["Body"] for m in receive_all(sqs, url, 1)] == ["later"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "1"})
    sqs.send_message(QueueUrl=url, MessageBody="queue-delayed")
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    assert [m["Body"] for m in receive_all(sqs, url, 1)] == ["queue-delayed"]


def test_batches_report_each_entry_and_refuse_bad_batches_whole(sqs: Any, url: str) -> None:
    reply = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "ok", "MessageBody": "a"}, {"Id": "bad", "MessageBody": "b", "DelaySeconds": 901}])
    assert [e["Id"] for e in reply["Successful"]] == ["ok"]
    assert reply["Failed"][0]["Id"] == "bad" and reply["Failed"][0]["SenderFault"] is True
    for entries, code in (
            ([], "AWS.SimpleQueueService.EmptyBatchRequest"),
            ([{"Id": str(i), "MessageBody": "x"} for i in range(11)],
             "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
            ([{"Id": "same", "MessageBody": "x"}] * 2, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
            ([{"Id": "bad id!", "MessageBody": "x"}], "AWS.SimpleQueueService.InvalidBatchEntryId")):
        with pytest.raises(ClientError) as exc:
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
        assert error_code(exc.value) == code
    (msg,) = sqs.receive_message(QueueUrl=url)["Messages"]
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": "1", "ReceiptHandle": msg["ReceiptHandle"]}, {"Id": "2", "ReceiptHandle": "garbage"}])
    assert [e["Id"] for e in deleted["Successful"]] == ["1"]
    assert deleted["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"


def test_limits_and_characters_are_refused_as_aws_refuses_them(sqs: Any, url: str) -> None:
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MaximumMessageSize": "1024"})
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1025)
    assert error_code(exc.value) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="bad \x00 char")
    assert error_code(exc.value) == "InvalidMessageContents"
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes={
            "AWS.reserved": {"DataType": "String", "StringValue": "v"}})
    assert error_code(exc.value) == "InvalidParameterValue"
    with pytest.raises(ClientError) as exc:
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)
    assert error_code(exc.value) == "InvalidParameterValue"
    assert "Messages" not in sqs.receive_message(QueueUrl=url)  # nothing refused was stored


def test_a_message_moves_to_the_dead_letter_queue_after_max_receive_count(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName="redrive-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    src = sqs.create_queue(QueueName="redrive-src", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": arn, "maxReceiveCount": 2}), "VisibilityTimeout": "1"})["QueueUrl"]
    sqs.send_message(QueueUrl=src, MessageBody="poison", MessageAttributes={
        "k": {"DataType": "String", "StringValue": "v"}})
    for _ in range(2):  # received twice, never deleted
        assert len(receive_all(sqs, src, 1)) == 1
    (dead,) = receive_all(sqs, dlq, 1, MessageAttributeNames=["All"], AttributeNames=["All"])
    assert dead["Body"] == "poison" and dead["MessageAttributes"]["k"]["StringValue"] == "v"
    assert dead["Attributes"]["DeadLetterQueueSourceArn"].endswith(":redrive-src")
    assert "Messages" not in sqs.receive_message(QueueUrl=src)
    sources = sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"]
    assert sources == [src]


def test_fifo_keeps_group_order_holds_a_group_in_flight_and_drops_duplicates(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="orders.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"a{i}", MessageGroupId="A")
    sqs.send_message(QueueUrl=url, MessageBody="b0", MessageGroupId="B")
    dup = sqs.send_message(QueueUrl=url, MessageBody="a0", MessageGroupId="A")  # same content: dropped
    assert "SequenceNumber" in dup
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    bodies = [m["Body"] for m in first]
    assert [b for b in bodies if b.startswith("a")] == ["a0", "a1", "a2"] and "b0" in bodies
    assert len(bodies) == 4  # one receive may take several of a group, in order; the dup is gone
    sqs.send_message(QueueUrl=url, MessageBody="a3", MessageGroupId="A")
    sqs.send_message(QueueUrl=url, MessageBody="c0", MessageGroupId="C")
    held = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in held] == ["c0"]  # group A is held while a0..a2 are in flight
    for m in first:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert [m["Body"] for m in receive_all(sqs, url, 1)] == ["a3"]
    with pytest.raises(ClientError) as exc:
        sqs.send_message(QueueUrl=url, MessageBody="no group")
    assert error_code(exc.value) == "MissingParameter"


def test_sqs_and_amqp_read_and_write_the_same_queue(sqs: Any, url: str, ferry: EmbeddedBroker) -> None:
    name = url.rsplit("/", 1)[1]
    sqs.send_message(QueueUrl=url, MessageBody="from sqs", MessageAttributes={
        "who": {"DataType": "String", "StringValue": "boto3"}})
    conn = pika.BlockingConnection(pika.URLParameters(ferry.amqp_url))
    try:
        ch = conn.channel()
        _, props, body = ch.basic_get(name, auto_ack=True)
        assert body == b"from sqs" and props.headers["who"] == "boto3"
        assert props.delivery_mode == 2 and props.message_id
        ch.basic_publish("", name, b"from amqp", pika.BasicProperties(headers={"n": 7, "t": "x"}))
    finally:
        conn.close()
    (msg,) = receive_all(sqs, url, 1, MessageAttributeNames=["All"])
    assert msg["Body"] == "from amqp"
    assert msg["MessageAttributes"] == {"n": {"DataType": "Number", "StringValue": "7"},
                                        "t": {"DataType": "String", "StringValue": "x"}}


def test_a_move_task_redrives_dead_letters_back_to_their_source(sqs: Any) -> None:
    dlq = sqs.create_queue(QueueName="move-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    src = sqs.create_queue(QueueName="move-src", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": arn, "maxReceiveCount": 1}), "VisibilityTimeout": "1"})["QueueUrl"]
    with pytest.raises(ClientError) as exc:  # a queue no one dead-letters into is no source
        src_arn = sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["QueueArn"])
        sqs.start_message_move_task(SourceArn=src_arn["Attributes"]["QueueArn"])
    assert error_code(exc.value) == "InvalidParameterValue"
    sqs.send_message_batch(QueueUrl=src, Entries=[{"Id": str(i), "MessageBody": f"d{i}"} for i in range(3)])
    assert len(receive_all(sqs, src, 3)) == 3  # received once each, never deleted: dead after 1 s
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sqs.get_queue_attributes(
            QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"] != "3":
        time.sleep(0.1)
    handle = sqs.start_message_move_task(SourceArn=arn)["TaskHandle"]
    back = sorted(m["Body"] for m in receive_all(sqs, src, 3))
    assert back == ["d0", "d1", "d2"]
    deadline = time.monotonic() + 10  # the task marks itself done once its last step is stored
    while time.monotonic() < deadline:
        (task,) = sqs.list_message_move_tasks(SourceArn=arn)["Results"]
        if task["Status"] != "RUNNING":
            break
        time.sleep(0.05)
    assert task["Status"] == "COMPLETED" and task["ApproximateNumberOfMessagesMoved"] == 3
    with pytest.raises(ClientError) as exc:
        sqs.cancel_message_move_task(TaskHandle=handle)
    assert error_code(exc.value) == "ResourceNotFoundException"
