"""A null SQS server for the generator: the JSON 1.0 calls the workloads make (CreateQueue,
GetQueueAttributes, DeleteQueue, SendMessageBatch, ReceiveMessage with long polling,
DeleteMessageBatch) over an in-memory deque per queue, no durability, no visibility timeout, one
event loop. Measuring the generator against it shows the generator's own ceiling, which must sit
far above any broker it measures; its counts are exact, so it also checks the generator's.

    python -m ferrymq.bench.sqs.sink --port 4599
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
from collections import deque
from collections.abc import Callable
from typing import Any

from ferrymq.bench.sqs.transport import new_event_loop

MAX_REQUEST_BYTES = 2 * 1024 * 1024


class SinkQueue:
    __slots__ = ("inflight", "ready", "waiters")

    def __init__(self) -> None:
        self.ready: deque[tuple[str, str]] = deque()  # (message id, body)
        self.inflight: dict[str, tuple[str, str]] = {}
        self.waiters: deque[Callable[[], None]] = deque()


class Sink:
    """The queues and the actions; a reply is (status, JSON document)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.queues: dict[str, SinkQueue] = {}
        self.ids = itertools.count()

    def queue(self, req: dict[str, Any]) -> SinkQueue | None:
        return self.queues.get(str(req.get("QueueUrl", "")).rsplit("/", 1)[-1])

    def create(self, req: dict[str, Any]) -> dict[str, Any]:
        self.queues.setdefault(req["QueueName"], SinkQueue())
        return {"QueueUrl": f"{self.base_url}/000000000000/{req['QueueName']}"}

    def send(self, q: SinkQueue, req: dict[str, Any]) -> dict[str, Any]:
        ok = []
        for e in req["Entries"]:
            mid = str(next(self.ids))
            q.ready.append((mid, e["MessageBody"]))
            ok.append({"Id": e["Id"], "MessageId": mid, "MD5OfMessageBody": ""})
        while q.waiters and q.ready:
            q.waiters.popleft()()
        return {"Successful": ok, "Failed": []}

    def take(self, q: SinkQueue, req: dict[str, Any]) -> dict[str, Any]:
        out = []
        for _ in range(min(len(q.ready), int(req.get("MaxNumberOfMessages", 1)))):
            mid, body = q.ready.popleft()
            handle = f"h{mid}"
            q.inflight[handle] = (mid, body)
            out.append({"MessageId": mid, "ReceiptHandle": handle, "MD5OfBody": "", "Body": body})
        return {"Messages": out} if out else {}

    def delete(self, q: SinkQueue, req: dict[str, Any]) -> dict[str, Any]:
        ok, failed = [], []
        for e in req["Entries"]:
            if q.inflight.pop(e["ReceiptHandle"], None) is None:
                failed.append({"Id": e["Id"], "Code": "ReceiptHandleIsInvalid", "SenderFault": True})
            else:
                ok.append({"Id": e["Id"]})
        return {"Successful": ok, "Failed": failed}

    def attributes(self, q: SinkQueue) -> dict[str, Any]:
        return {"Attributes": {"ApproximateNumberOfMessages": str(len(q.ready)),
                               "ApproximateNumberOfMessagesNotVisible": str(len(q.inflight))}}


class SinkConnection(asyncio.Protocol):
    """One client connection: requests in order, one at a time (a long poll holds the next)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.held = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > MAX_REQUEST_BYTES:
            self.reply(413, {"__type": "RequestTooLarge"})
            assert self.transport is not None
            self.transport.close()
            return
        self.serve()

    def serve(self) -> None:
        while not self.held:
            req = _take_request(self.buf)
            if req is None:
                return
            self.dispatch(*req)

    def dispatch(self, action: str, body: bytes) -> None:
        sink, req = self.sink, json.loads(body or b"{}")
        if action == "CreateQueue":
            return self.reply(200, sink.create(req))
        q = sink.queue(req)
        if q is None:
            return self.reply(400, {"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "no queue"})
        if action == "SendMessageBatch":
            return self.reply(200, sink.send(q, req))
        if action == "ReceiveMessage":
            return self.receive(q, req)
        if action == "DeleteMessageBatch":
            return self.reply(200, sink.delete(q, req))
        if action == "GetQueueAttributes":
            return self.reply(200, sink.attributes(q))
        if action == "DeleteQueue":
            sink.queues = {k: v for k, v in sink.queues.items() if v is not q}
            return self.reply(200, {})
        return self.reply(400, {"__type": "com.amazonaws.sqs#InvalidAction", "message": action})

    def receive(self, q: SinkQueue, req: dict[str, Any]) -> None:
        wait_s = int(req.get("WaitTimeSeconds", 0))
        if q.ready or not wait_s:
            return self.reply(200, self.sink.take(q, req))
        self.held = True
        loop = asyncio.get_running_loop()

        def wake() -> None:
            timer.cancel()
            if wake in q.waiters:
                q.waiters.remove(wake)
            self.held = False
            self.reply(200, self.sink.take(q, req))
            self.serve()

        timer = loop.call_later(wait_s, wake)
        q.waiters.append(wake)

    def reply(self, status: int, doc: dict[str, Any]) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        body = json.dumps(doc).encode()
        head = (f"HTTP/1.1 {status} {'OK' if status == 200 else 'Bad Request'}\r\n"
                f"Content-Type: application/x-amz-json-1.0\r\nContent-Length: {len(body)}\r\n\r\n")
        self.transport.write(head.encode() + body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def _take_request(buf: bytearray) -> tuple[str, bytes] | None:
    """(action, body) of the first complete request in ``buf`` (removed from it), or None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    length, action = 0, ""
    for line in bytes(buf[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"x-amz-target":
            action = value.strip().decode().rpartition(".")[2]
    stop = end + 4 + length
    if len(buf) < stop:
        return None
    body = bytes(buf[end + 4:stop])
    del buf[:stop]
    return action, body


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    sink = Sink(f"http://127.0.0.1:{port}")
    server = await loop.create_server(lambda: SinkConnection(sink), "127.0.0.1", port, backlog=2048)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ferrymq.bench.sqs.sink")
    ap.add_argument("--port", type=int, default=4599)
    args = ap.parse_args(argv)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        try:
            runner.run(serve(args.port))
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
