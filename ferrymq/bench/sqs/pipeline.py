"""The "pipeline" workload: C loops, each on its own keep-alive connection, each doing
SendMessageBatch(10) -> ReceiveMessage(10, short long-poll) -> DeleteMessageBatch(those receipts)
on one shared queue, until told to stop; then each drains (receive + delete) until a receive
comes back empty, so every message sent is received and deleted before the run reports.

Why one shared queue: receives then take whatever is there, as competing consumers do, and the
drain ends only when the queue is empty for every loop, so the counts must balance exactly."""

from __future__ import annotations

import asyncio

from ferrymq.bench.sqs import calls
from ferrymq.bench.sqs.tally import Tally, counted_call
from ferrymq.bench.sqs.transport import Client


async def run(clients: list[Client], url: str, tag: str, body_bytes: int, wait_s: int, tally: Tally,
              stop: asyncio.Event) -> dict[str, int]:
    """Run every loop to completion; returns messages sent per loop tag (for verification)."""
    sends = [calls.SendBatches(url, f"{tag}l{i}", body_bytes) for i in range(len(clients))]
    receive = calls.receive(url, wait_s)
    await asyncio.gather(*(_loop(c, s, url, receive, tally, stop) for c, s in zip(clients, sends)))
    return {s.tag: s.count for s in sends}


async def _loop(client: Client, sends: calls.SendBatches, url: str, receive: bytes, tally: Tally,
                stop: asyncio.Event) -> None:
    while not stop.is_set() and tally.ok():
        body = sends.next()
        reply = await counted_call(client, tally, "SendMessageBatch", body)
        if reply is not None:
            tally.counts["sent"] += _entries(tally, "SendMessageBatch", body, reply, calls.BATCH_MAX)
        await _receive_delete(client, url, receive, tally)
    while tally.ok() and await _receive_delete(client, url, receive, tally):
        pass


async def _receive_delete(client: Client, url: str, receive: bytes, tally: Tally) -> int:
    """One receive and the delete of what it got; the number of messages received."""
    reply = await counted_call(client, tally, "ReceiveMessage", receive)
    if reply is None:
        return 0
    handles, bodies = calls.received(reply)
    if not handles:
        tally.counts["empty_receives"] += 1
        return 0
    tally.counts["received"] += len(handles)
    if tally.received_ids is not None:
        tally.received_ids.extend(calls.message_id(b) for b in bodies)
    body = calls.delete_batch(url, handles)
    reply = await counted_call(client, tally, "DeleteMessageBatch", body)
    if reply is not None:
        tally.counts["deleted"] += _entries(tally, "DeleteMessageBatch", body, reply, len(handles))
    return len(handles)


def _entries(tally: Tally, action: str, request: bytes, reply: bytes, expected: int) -> int:
    try:
        return calls.batch_done(reply, expected)
    except calls.CallError as exc:
        tally.failed(action, 200, request, f"{exc}: {reply[:400]!r}")
        return 0
