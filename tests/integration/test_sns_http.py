"""HTTP subscriptions against a small aiohttp endpoint: the confirmation handshake (SubscribeURL and
ConfirmSubscription), notifications retried until the endpoint answers, and the dead-letter queue
of a subscription whose endpoint never does."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from aiohttp import web

from ferrymq.testing import EmbeddedBroker
from tests.support.sns import queue_arn, sns_client
from tests.support.sqs import receive_all, sqs_client

FAST_RETRIES = json.dumps({"healthyRetryPolicy": {"numRetries": 3, "numNoDelayRetries": 2,
                                                  "minDelayTarget": 1, "maxDelayTarget": 1}})


@dataclass
class Endpoint:
    """Records every POST; answers 500 to the next ``failures`` of them."""

    url: str = ""
    failures: int = 0
    posts: queue.Queue[tuple[dict[str, str], str]] = field(default_factory=queue.Queue)

    def next_post(self) -> tuple[dict[str, str], str]:
        return self.posts.get(timeout=15)  # a bound on waiting, not an assertion on time


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    state = Endpoint()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def receive(request: web.Request) -> web.Response:
        state.posts.put((dict(request.headers), await request.text()))
        if state.failures > 0:
            state.failures -= 1
            return web.Response(status=500)
        return web.Response(text="ok")

    async def serve() -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/hook/{name}", receive)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
        return runner

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder.append(loop.run_until_complete(serve()))
        started.set()
        loop.run_forever()

    holder: list[web.AppRunner] = []
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    yield state
    asyncio.run_coroutine_threadsafe(holder[0].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture(scope="module")
def sns(ferry: EmbeddedBroker) -> Any:
    return sns_client(ferry.http_url)


def _confirmation(endpoint: Endpoint) -> dict[str, Any]:
    headers, body = endpoint.next_post()
    assert headers["x-amz-sns-message-type"] == "SubscriptionConfirmation"
    doc: dict[str, Any] = json.loads(body)
    assert doc["Type"] == "SubscriptionConfirmation" and doc["Token"] and doc["SubscribeURL"]
    assert headers["x-amz-sns-topic-arn"] == doc["TopicArn"]
    return doc


def test_an_http_subscription_is_pending_until_its_subscribe_url_is_visited(
        sns: Any, endpoint: Endpoint) -> None:
    topic = sns.create_topic(Name="hooks")["TopicArn"]
    url = f"{endpoint.url}/one"
    assert sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=url)["SubscriptionArn"] == \
        "pending confirmation"
    doc = _confirmation(endpoint)
    assert doc["TopicArn"] == topic
    (listed,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert listed["SubscriptionArn"] == "PendingConfirmation" and listed["Endpoint"] == url
    sns.publish(TopicArn=topic, Message="before confirmation")  # a pending endpoint gets nothing
    answer = requests.get(doc["SubscribeURL"], timeout=10)
    assert answer.status_code == 200 and "<SubscriptionArn>" in answer.text
    (listed,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert listed["SubscriptionArn"].startswith(topic + ":")
    sns.publish(TopicArn=topic, Message="after confirmation", Subject="hi")
    headers, body = endpoint.next_post()
    note = json.loads(body)
    assert headers["x-amz-sns-message-type"] == "Notification"
    assert headers["x-amz-sns-subscription-arn"] == listed["SubscriptionArn"]
    assert note["Message"] == "after confirmation" and note["Subject"] == "hi"
    assert headers["x-amz-sns-message-id"] == note["MessageId"]


def test_a_failing_endpoint_gets_the_notification_again_until_it_answers(
        sns: Any, endpoint: Endpoint) -> None:
    topic = sns.create_topic(Name="flaky")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=f"{endpoint.url}/flaky",
                  Attributes={"DeliveryPolicy": FAST_RETRIES, "RawMessageDelivery": "true"})
    token = _confirmation(endpoint)["Token"]
    sub = sns.confirm_subscription(TopicArn=topic, Token=token)["SubscriptionArn"]
    attrs = sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
    assert attrs["PendingConfirmation"] == "false"
    endpoint.failures = 2
    sent = sns.publish(TopicArn=topic, Message="keep trying")
    attempts = [endpoint.next_post() for _ in range(3)]
    assert [body for _, body in attempts] == ["keep trying"] * 3  # raw: the bare message
    assert {h["x-amz-sns-message-id"] for h, _ in attempts} == {sent["MessageId"]}
    assert all(h["x-amz-sns-rawdelivery"] == "true" for h, _ in attempts)
    assert endpoint.failures == 0 and endpoint.posts.empty()


def test_a_delivery_that_exhausts_its_retries_goes_to_the_dead_letter_queue(
        sns: Any, endpoint: Endpoint, ferry: EmbeddedBroker) -> None:
    sqs = sqs_client(ferry.http_url)
    dlq = sqs.create_queue(QueueName="hook-dlq")["QueueUrl"]
    topic = sns.create_topic(Name="doomed")["TopicArn"]
    policy = json.dumps({"healthyRetryPolicy": {"numRetries": 1, "numNoDelayRetries": 1}})
    sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=f"{endpoint.url}/doomed",
                  Attributes={"DeliveryPolicy": policy, "RawMessageDelivery": "true",
                              "RedrivePolicy": json.dumps({"deadLetterTargetArn": queue_arn(sqs, dlq)})})
    sns.confirm_subscription(TopicArn=topic, Token=_confirmation(endpoint)["Token"])
    endpoint.failures = 2
    sns.publish(TopicArn=topic, Message="never answered")
    assert [body for _, body in (endpoint.next_post(), endpoint.next_post())] == ["never answered"] * 2
    assert [m["Body"] for m in receive_all(sqs, dlq, 1)] == ["never answered"]


def test_an_unknown_token_is_refused(sns: Any) -> None:
    topic = sns.create_topic(Name="tokens")["TopicArn"]
    with pytest.raises(sns.exceptions.InvalidParameterException):
        sns.confirm_subscription(TopicArn=topic, Token="0" * 128)
