"""aiobotocore's async SQS client against FerryMQ: batches, a long poll woken by a send from another
task, visibility released with ChangeMessageVisibility 0, per-entry batch failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from aiobotocore.session import get_session

from ferrymq.testing import EmbeddedBroker

Client = Any


@asynccontextmanager
async def _client(endpoint: str) -> AsyncIterator[Client]:
    session = get_session()
    async with session.create_client(
        "sqs", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="ferry", aws_secret_access_key="ferry-secret",
    ) as client:
        yield client


def _run(ferry: EmbeddedBroker, body: Callable[[Client], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        async with _client(ferry.http_url) as client:
            await asyncio.wait_for(body(client), 60)
    asyncio.run(main())


async def _queue(client: Client, name: str, **attributes: str) -> str:
    reply = await client.create_queue(QueueName=name, Attributes=attributes)
    return str(reply["QueueUrl"])


def test_send_batch_then_receive_returns_every_entry_with_matching_md5s(ferry):
    async def body(client: Client) -> None:
        url = await _queue(client, "aio-batch")
        entries = [{"Id": f"m{n}", "MessageBody": f"body-{n}",
                    "MessageAttributes": {"n": {"DataType": "Number", "StringValue": str(n)}}}
                   for n in range(10)]
        sent = await client.send_message_batch(QueueUrl=url, Entries=entries)
        assert sorted(e["Id"] for e in sent["Successful"]) == sorted(e["Id"] for e in entries)
        assert sent.get("Failed", []) == []
        md5s = {e["MessageId"]: e["MD5OfMessageAttributes"] for e in sent["Successful"]}
        got: list[dict[str, Any]] = []
        while len(got) < 10:
            reply = await client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                                 MessageAttributeNames=["All"])
            assert reply.get("Messages"), f"only {len(got)} of 10 received"
            got += reply["Messages"]
        assert sorted(m["Body"] for m in got) == sorted(f"body-{n}" for n in range(10))
        assert {m["MessageId"]: m["MD5OfMessageAttributes"] for m in got} == md5s
    _run(ferry, body)


def test_long_poll_of_twenty_seconds_returns_the_message_a_concurrent_task_sends(ferry):
    async def body(client: Client) -> None:
        url = await _queue(client, "aio-long-poll")
        receive = asyncio.create_task(client.receive_message(QueueUrl=url, WaitTimeSeconds=20))
        await asyncio.sleep(0.3)  # let the receive reach the broker and park
        assert not receive.done()
        async with _client(ferry.http_url) as sender:
            sent = await sender.send_message(QueueUrl=url, MessageBody="wake up")
        reply = await asyncio.wait_for(receive, 25)
        assert [(m["MessageId"], m["Body"]) for m in reply["Messages"]] == [(sent["MessageId"], "wake up")]
    _run(ferry, body)


def test_change_visibility_to_zero_makes_a_received_message_receivable_again(ferry):
    async def body(client: Client) -> None:
        url = await _queue(client, "aio-visibility", VisibilityTimeout="600")
        await client.send_message(QueueUrl=url, MessageBody="again")
        first = (await client.receive_message(QueueUrl=url, WaitTimeSeconds=5))["Messages"][0]
        hidden = await client.receive_message(QueueUrl=url, WaitTimeSeconds=0)
        assert hidden.get("Messages", []) == []  # leased for 600 s
        await client.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"],
                                               VisibilityTimeout=0)
        again = (await client.receive_message(QueueUrl=url, WaitTimeSeconds=5,
                                              MessageSystemAttributeNames=["ApproximateReceiveCount"]))
        [message] = again["Messages"]
        assert (message["MessageId"], message["Body"]) == (first["MessageId"], "again")
        assert message["Attributes"]["ApproximateReceiveCount"] == "2"
        assert message["ReceiptHandle"] != first["ReceiptHandle"]
    _run(ferry, body)


def test_delete_batch_with_one_bad_receipt_handle_fails_only_that_entry(ferry):
    async def body(client: Client) -> None:
        url = await _queue(client, "aio-delete-batch")
        await client.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "a", "MessageBody": "a"}, {"Id": "b", "MessageBody": "b"}])
        got: list[dict[str, Any]] = []
        while len(got) < 2:
            got += (await client.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                 WaitTimeSeconds=5))["Messages"]
        entries = [{"Id": f"ok{n}", "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)]
        entries.append({"Id": "bad", "ReceiptHandle": "not-a-receipt-handle"})
        reply = await client.delete_message_batch(QueueUrl=url, Entries=entries)
        assert sorted(e["Id"] for e in reply["Successful"]) == ["ok0", "ok1"]
        [failed] = reply["Failed"]
        assert failed["Id"] == "bad"
        assert failed["Code"] == "ReceiptHandleIsInvalid"
        assert failed["SenderFault"] is True
        attrs = await client.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
        assert attrs["Attributes"] == {"ApproximateNumberOfMessages": "0",
                                       "ApproximateNumberOfMessagesNotVisible": "0"}
    _run(ferry, body)



def test_parked_long_polls_share_concurrent_sends_each_message_exactly_once(ferry):
    async def body(client: Client) -> None:
        url = await _queue(client, "aio-many-pollers")
        polls = [asyncio.create_task(client.receive_message(QueueUrl=url, WaitTimeSeconds=20))
                 for _ in range(4)]
        await asyncio.sleep(0.3)
        async with _client(ferry.http_url) as sender:
            await asyncio.gather(*(sender.send_message(QueueUrl=url, MessageBody=f"m{n}")
                                   for n in range(4)))
        replies = await asyncio.wait_for(asyncio.gather(*polls), 25)
        bodies = [m["Body"] for r in replies for m in r.get("Messages", [])]
        assert sorted(bodies) == ["m0", "m1", "m2", "m3"]
    _run(ferry, body)


def test_a_long_poll_returns_a_delayed_message_once_its_delay_ends(ferry):
    async def body(client: Client) -> None:
        url = await _queue(client, "aio-delayed")
        await client.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
        assert (await client.receive_message(QueueUrl=url)).get("Messages", []) == []
        reply = await client.receive_message(QueueUrl=url, WaitTimeSeconds=20)
        assert [m["Body"] for m in reply["Messages"]] == ["later"]
    _run(ferry, body)


def test_a_missing_queue_raises_the_modelled_queue_does_not_exist_exception(ferry):
    async def body(client: Client) -> None:
        missing = f"{ferry.http_url}/000000000000/aio-never-made"
        try:
            await client.receive_message(QueueUrl=missing)
        except client.exceptions.QueueDoesNotExist as exc:
            assert exc.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        else:
            raise AssertionError("receive from a missing queue succeeded")
    _run(ferry, body)


def test_change_visibility_batch_releases_good_entries_and_fails_the_bad_one(ferry):
    async def body(client: Client) -> None:
        url = await _queue(client, "aio-visibility-batch", VisibilityTimeout="600")
        await client.send_message(QueueUrl=url, MessageBody="x")
        [got] = (await client.receive_message(QueueUrl=url, WaitTimeSeconds=5))["Messages"]
        reply = await client.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": "good", "ReceiptHandle": got["ReceiptHandle"], "VisibilityTimeout": 0},
            {"Id": "bad", "ReceiptHandle": "garbage", "VisibilityTimeout": 0}])
        assert [e["Id"] for e in reply["Successful"]] == ["good"]
        assert [(e["Id"], e["Code"]) for e in reply["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]
        again = (await client.receive_message(QueueUrl=url, WaitTimeSeconds=5))["Messages"]
        assert [m["MessageId"] for m in again] == [got["MessageId"]]
    _run(ferry, body)


def test_fifo_queue_numbers_sends_drops_a_duplicate_and_keeps_group_order(ferry):
    async def body(client: Client) -> None:
        url = await _queue(client, "aio-orders.fifo", FifoQueue="true")
        sent = [await client.send_message(QueueUrl=url, MessageBody=f"o{n}", MessageGroupId="g",
                                          MessageDeduplicationId=f"d{n}") for n in range(3)]
        await client.send_message(QueueUrl=url, MessageBody="o0 again", MessageGroupId="g",
                                  MessageDeduplicationId="d0")  # accepted, never delivered
        numbers = [int(s["SequenceNumber"]) for s in sent]
        assert numbers == sorted(numbers) and len(set(numbers)) == 3
        reply = await client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=5,
                                             MessageSystemAttributeNames=["All"])
        assert [m["Body"] for m in reply["Messages"]] == ["o0", "o1", "o2"]
        assert [m["Attributes"]["MessageGroupId"] for m in reply["Messages"]] == ["g"] * 3
    _run(ferry, body)


def test_a_deduplicated_fifo_send_answers_the_original_message_id(ferry):
    async def body(client: Client) -> None:
        url = await _queue(client, "aio-dedup.fifo", FifoQueue="true")
        first = await client.send_message(QueueUrl=url, MessageBody="once", MessageGroupId="g",
                                          MessageDeduplicationId="same")
        again = await client.send_message(QueueUrl=url, MessageBody="once", MessageGroupId="g",
                                          MessageDeduplicationId="same")
        assert (again["MessageId"], again["SequenceNumber"]) == (first["MessageId"], first["SequenceNumber"])
    _run(ferry, body)


async def _after_abandoned_poll(ferry: EmbeddedBroker, client: Client, name: str) -> dict[str, Any]:
    """Park a 20 s receive on a fresh queue, hang up, send one message, receive it with a new call."""
    url = await _queue(client, name, VisibilityTimeout="600")
    async with _client(ferry.http_url) as quitter:
        abandoned = asyncio.create_task(quitter.receive_message(QueueUrl=url, WaitTimeSeconds=20))
        await asyncio.sleep(0.3)
        abandoned.cancel()
    await asyncio.sleep(0.3)  # the closed connection reaches the broker
    await client.send_message(QueueUrl=url, MessageBody="for whoever is still here")
    reply = await client.receive_message(QueueUrl=url, WaitTimeSeconds=5,
                                         MessageSystemAttributeNames=["ApproximateReceiveCount"])
    assert [m["Body"] for m in reply.get("Messages", [])] == ["for whoever is still here"]
    return dict(reply["Messages"][0])


def test_a_message_sent_after_a_long_poll_was_abandoned_goes_to_the_next_receiver(ferry):
    """A receive whose client hung up must not take (and hide) a message sent afterwards."""
    async def body(client: Client) -> None:
        await _after_abandoned_poll(ferry, client, "aio-abandoned")
    _run(ferry, body)


def test_an_abandoned_long_poll_does_not_count_as_a_receive(ferry):
    async def body(client: Client) -> None:
        message = await _after_abandoned_poll(ferry, client, "aio-abandoned-count")
        assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    _run(ferry, body)
