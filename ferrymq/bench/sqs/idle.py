"""The "idle-pollers" workload: N connections, each long-polling ReceiveMessage
(WaitTimeSeconds=20) on an empty queue again as soon as a poll returns. What it measures is the
broker's CPU while they wait (the goal: 1,000 of them under 5 % of one core); the generator only
counts polls, empty replies and failures. At the stop the sockets are closed with polls pending."""

from __future__ import annotations

import asyncio

from ferrymq.bench.sqs import calls
from ferrymq.bench.sqs.tally import Tally, counted_call
from ferrymq.bench.sqs.transport import Client

POLL_WAIT_S = 20  # the SQS maximum


async def run(clients: list[Client], url: str, tally: Tally, stop: asyncio.Event) -> None:
    body = calls.receive(url, POLL_WAIT_S)
    polls = [asyncio.ensure_future(_poll(c, body, tally, stop)) for c in clients]
    await stop.wait()
    for p in polls:
        p.cancel()
    await asyncio.gather(*polls, return_exceptions=True)


async def _poll(client: Client, body: bytes, tally: Tally, stop: asyncio.Event) -> None:
    while not stop.is_set() and tally.ok():
        reply = await counted_call(client, tally, "ReceiveMessage", body)
        if reply is None:
            continue
        handles, _ = calls.received(reply)
        tally.counts["received"] += len(handles)
        if not handles:
            tally.counts["empty_receives"] += 1
