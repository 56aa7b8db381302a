"""Visibility timeout too short: jobs that take longer than their lease come back to another
consumer while the first still works on them, so the work is done twice; extending the lease
(ChangeMessageVisibility heartbeats) or a timeout that fits the job removes the duplicates.

It runs on FerryMQ's SQS API (the HTTP plane of the lab-started broker, through aiobotocore, a
real third-party client): the lab's body travels base64-encoded in MessageBody, so the ledger
counts every job processed twice. The AMQP counterpart, the consumer timeout, is not played here:
RabbitMQ 3.10 has it only as a node-wide setting checked once a minute (and a timed-out delivery
closes the whole channel), which a short lab run cannot show."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ferrymq.lab import body
from ferrymq.lab.context import LabContext
from ferrymq.lab.explain import n
from ferrymq.lab.pacing import paced
from ferrymq.lab.recorder import Series

MODES = ("amqp",)  # the lab-started FerryMQ; the SQS endpoint is its HTTP plane
VARIANTS = {"short": "lease shorter than the job", "heartbeat": "short lease + heartbeats",
            "fits": "lease longer than the job"}
POLL_S = 1  # long poll of each ReceiveMessage
WINDOW = 50  # sends outstanding at most


@dataclass
class Params:
    rate: float = 4.0  # jobs offered per second
    consumers: int = 8
    work_s: float = 2.5  # time a job takes
    visibility_s: int = 1  # the short lease (SQS counts whole seconds)
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    size: int = 64

    def check(self) -> None:
        if self.rate <= 0 or self.consumers < 1 or self.work_s <= 0 or self.visibility_s < 1:
            raise ValueError("rate and work_s must be > 0, consumers and visibility_s >= 1")
        if self.work_s <= self.visibility_s:
            raise ValueError("work_s must exceed visibility_s: the scenario is jobs outliving their lease")
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad or not self.variants:
            raise ValueError(f"variants: some of {', '.join(VARIANTS)} (not {', '.join(bad) or 'none'})")


@contextlib.asynccontextmanager
async def sqs_client(http_url: str, connections: int) -> AsyncIterator[Any]:
    """An SQS client on the broker's HTTP plane (loopback takes any credentials), with a connection
    per consumer and sender slot: a smaller pool would queue long polls behind each other and hide
    the very redeliveries the scenario is about."""
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    config = AioConfig(max_pool_connections=connections, retries={"max_attempts": 1})
    async with get_session().create_client("sqs", endpoint_url=http_url, region_name="us-east-1",
                                           aws_access_key_id="lab", aws_secret_access_key="lab",
                                           config=config) as c:
        yield c


class Sender:
    """SendMessage of the lab's bodies; a 200 reply is the confirm the ledger counts."""

    def __init__(self, series: Series, client: Any, url: str, size: int) -> None:
        self.series, self.client, self.url, self.size = series, client, url, size
        self.window = asyncio.Semaphore(WINDOW)
        self.pending: set[asyncio.Task[None]] = set()

    async def send(self) -> bool:
        if self.window.locked():
            return False
        await self.window.acquire()
        task = asyncio.create_task(self._one(self.series.next_id()))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return True

    async def _one(self, msg_id: int) -> None:
        text = base64.b64encode(body.encode(msg_id, self.series.now_ns(), self.size)).decode()
        try:
            self.series.sent()
            await self.client.send_message(QueueUrl=self.url, MessageBody=text)
            self.series.confirmed(msg_id)
        except Exception:
            self.series.count("publish_failed")
        finally:
            self.window.release()

    async def drain(self) -> None:
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=30)


def queue_visibility(p: Params, variant: str) -> int:
    """The queue's VisibilityTimeout: the short lease, or one with room for the job (twice it)."""
    return p.visibility_s if variant != "fits" else max(p.visibility_s, int(2 * p.work_s + 0.999))


async def heartbeat(series: Series, client: Any, url: str, handle: str, visibility_s: int) -> None:
    """Extend the lease well before it runs out: every third of it, back to its full length."""
    while True:
        await asyncio.sleep(visibility_s / 3.0)
        try:
            await client.change_message_visibility(QueueUrl=url, ReceiptHandle=handle,
                                                   VisibilityTimeout=visibility_s)
            series.count("retried")  # a lease extension (the report's "retried" column)
        except Exception:
            series.count("errors")


async def work(series: Series, client: Any, url: str, msg: dict[str, Any], p: Params, beat: bool) -> None:
    """One job: ``work_s`` of processing (with heartbeats or not), then its effect on record and
    DeleteMessage with the receipt handle this consumer got."""
    ids = body.decode(base64.b64decode(msg["Body"]))
    handle = msg["ReceiptHandle"]
    beats = asyncio.create_task(heartbeat(series, client, url, handle, p.visibility_s)) if beat else None
    await asyncio.sleep(p.work_s)
    if beats is not None:
        beats.cancel()
    if ids is None:
        return
    series.received(ids[0], ids[1], int(msg.get("Attributes", {}).get("ApproximateReceiveCount", 1)) > 1)
    try:
        await client.delete_message(QueueUrl=url, ReceiptHandle=handle)
        series.count("acked")
    except Exception:
        series.count("errors")


async def consumer(series: Series, client: Any, url: str, p: Params, beat: bool, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            reply = await client.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=POLL_S,
                                                 AttributeNames=["ApproximateReceiveCount"])
        except Exception:
            series.count("errors")
            await asyncio.sleep(0.5)
            continue
        for msg in reply.get("Messages", []):
            await work(series, client, url, msg, p, beat)


async def depth(series: Series, client: Any, url: str, stop: asyncio.Event) -> None:
    """Visible and in-flight messages (the queue's two SQS counts) as gauges."""
    while not stop.is_set():
        with contextlib.suppress(Exception):
            a = (await client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]))["Attributes"]
            series.gauge("depth", int(a["ApproximateNumberOfMessages"]))
            series.gauge("in_flight:leased", int(a["ApproximateNumberOfMessagesNotVisible"]))
        await asyncio.sleep(0.5)


async def settle(series: Series, p: Params, timeout_s: float) -> bool:
    """Every confirmed job processed at least once, and then time for the duplicates under way to
    finish (a lease that ran out hands the job on within one lease and one job's time)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while series.ledger.books()["lost"] and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(p.work_s + p.visibility_s)
    return series.ledger.books()["lost"] == 0


async def left_in_queue(client: Any, url: str) -> int | None:
    """Jobs still in the queue (visible or leased) when the consumers stopped: not lost, waiting."""
    try:
        a = (await client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]))["Attributes"]
    except Exception:
        return None
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


async def one_variant(ctx: LabContext, p: Params, client: Any, variant: str, seconds: float) -> None:
    name = ctx.name(f"jobs-{variant}")
    vis = queue_visibility(p, variant)
    url = (await client.create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(vis)}))["QueueUrl"]
    series = ctx.series(VARIANTS[variant])
    series.figure("visibility_timeout_s", vis)
    series.figure("work_s", p.work_s)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(consumer(series, client, url, p, variant == "heartbeat", stop))
             for _ in range(p.consumers)]
    tasks.append(asyncio.create_task(depth(series, client, url, stop)))
    sender = Sender(series, client, url, p.size)
    series.begin()
    async with ctx.faults_on(series, seconds):
        await paced(p.rate, seconds, sender.send)
        await sender.drain()
        series.figure("settled", await settle(series, p, 30.0))
    stop.set()
    for t in tasks:  # jobs still under way are after the books closed: not waited for
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    series.figure("left_in_queue", await left_in_queue(client, url))
    series.end()
    with contextlib.suppress(Exception):
        await client.delete_queue(QueueUrl=url)


async def run(ctx: LabContext, p: Params) -> None:
    if not ctx.target.info.get("started", "").startswith("ferrymq"):
        raise ValueError("visibility runs on FerryMQ's SQS API: target ferrymq (the lab-started broker)")
    ctx.check_faults("visibility")
    seconds = ctx.duration / len(p.variants)
    async with sqs_client(ctx.target.http_url, p.consumers + WINDOW + 4) as client:
        for variant in p.variants:
            await one_variant(ctx, p, client, variant, seconds)


def explain(run: dict[str, Any]) -> list[str]:
    out = []
    for s in run["series"]:
        b, f, t = s["books"], s["figures"], s["totals"]
        out.append(f"{s['name']} ({n(f['visibility_timeout_s'])} s lease, {n(f['work_s'])} s jobs): "
                   f"{n(b['confirmed'])} jobs, {n(b['duplicates'])} processed again by a second consumer "
                   f"while the first still worked ({n(t['redelivered'])} receipts with a receive count "
                   f"above 1), {n(t['retried'])} lease extensions, {n(t['errors'])} calls refused.")
        if b["duplicates"] and b["unique_received"]:
            out.append(f"{s['name']}: each job was processed {n(t['received'] / b['unique_received'])} times "
                       "on average, not twice: every DeleteMessage carried a receipt handle that a later "
                       "receive had already replaced, so the job stayed in the queue and went round "
                       "again until the run stopped its consumers.")
        left = f.get("left_in_queue")
        if b["lost"] and left is not None and left >= b["lost"]:
            out.append(f"{s['name']}: the {n(b['lost'])} jobs never processed were not lost: they were "
                       f"among the {n(left)} still in the queue when the consumers stopped, starved by "
                       "the jobs going round.")
    return out
