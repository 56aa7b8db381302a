"""One process of WebSocket subscribers for the push fan-out benchmark (``push_fanout``).

The clients are a bare asyncio Protocol each (uvloop when present): the upgrade by hand, then
server frames read in place — unmasked, so a text frame is two to ten header bytes and the JSON —
and the publisher's stamp taken from the body. A general client (aiohttp's) costs several times as
much per frame, and the generator shares the machine with the broker it measures.

Talks to its parent over stdin/stdout, one line each: ``ready`` once every client is subscribed,
then it reads ``go <origin_ns> <interval_ms>`` (the measured window's start) and ``stop``, and
writes one JSON object to ``--out``: deliveries, skipped (``lagged`` frames), closes, histograms
(a file, not stdout: the histograms run to hundreds of KiB).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import struct
import sys
import time
from typing import Any
from urllib.parse import urlparse

from ferrymq.bench.histogram import IntervalHistograms

BODY = b'"body":"'
OPEN_AT_ONCE = 50  # handshakes in flight per process: the broker's listen backlog is 1024
PONG_MASK = b"\x00\x00\x00\x00"  # a client frame must be masked; a zero mask leaves the bytes as they are


class Tally:
    """What every client of this process saw; latencies bucketed once the window's origin is known."""

    def __init__(self) -> None:
        self.hist: IntervalHistograms | None = None
        self.delivered = 0
        self.skipped = 0
        self.closed = 0
        self.subscribed = 0


class Subscriber(asyncio.Protocol):
    def __init__(self, request: bytes, tally: Tally, ready: asyncio.Future[None]) -> None:
        self.request = request
        self.tally = tally
        self.ready = ready
        self.buf = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.tally.closed += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before subscribing"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded and not self._upgrade():
            return
        now = time.monotonic_ns()
        stamps: list[int] = []
        pos = self._frames(buf, stamps)
        del buf[:pos]
        if stamps and self.tally.hist is not None:
            self.tally.hist.record(now, stamps)
        self.tally.delivered += len(stamps)

    def _upgrade(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        status = bytes(self.buf[:end]).split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise SystemExit(f"upgrade refused: {status.decode(errors='replace')}")
        del self.buf[:end + 4]
        self.upgraded = True
        return True

    def _frames(self, buf: bytearray, stamps: list[int]) -> int:
        """Parse every complete frame from the start of ``buf``; how many bytes they took."""
        pos, size = 0, len(buf)
        while size - pos >= 2:
            opcode, n = buf[pos] & 0x0F, buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n, head = struct.unpack_from(">H", buf, pos + 2)[0], 4
            elif n == 127:
                if size - pos < 10:
                    break
                n, head = struct.unpack_from(">Q", buf, pos + 2)[0], 10
            if size - pos < head + n:
                break
            start = pos + head
            pos = start + n
            if opcode == 1:
                self._text(buf, start, pos, stamps)
            elif opcode == 9 and self.transport is not None:  # ping: pong with the same payload
                self.transport.write(bytes([0x8A, 0x80 | n]) + PONG_MASK + bytes(buf[start:pos]))
        return pos

    def _text(self, buf: bytearray, start: int, end: int, stamps: list[int]) -> None:
        at = buf.find(BODY, start, end)
        if at >= 0 and buf.startswith(b'{"type":"message"', start):
            at += len(BODY)
            stamps.append(int(buf[at:buf.index(b'"', at, end)]))
        elif buf.startswith(b'{"type":"lagged"', start):
            self.tally.skipped += json.loads(bytes(buf[start:end]))["skipped"]
        elif buf.startswith(b'{"type":"subscribed"', start) and not self.ready.done():
            self.tally.subscribed += 1
            self.ready.set_result(None)


def upgrade_request(url: str, exchange: str, key: str, user: str, password: str) -> bytes:
    u = urlparse(url)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    return (f"GET /ws?exchange={exchange}&key={key} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
            f"Authorization: Basic {auth}\r\n\r\n").encode()


async def open_clients(args: argparse.Namespace, tally: Tally) -> list[asyncio.Transport]:
    loop = asyncio.get_running_loop()
    u = urlparse(args.url)
    gate = asyncio.Semaphore(OPEN_AT_ONCE)
    request = upgrade_request(args.url, args.exchange, args.key, args.user, args.password)

    async def one() -> asyncio.Transport:
        async with gate:
            ready: asyncio.Future[None] = loop.create_future()
            transport, _ = await loop.create_connection(
                lambda: Subscriber(request, tally, ready), u.hostname, u.port)
            await ready
            return transport
    return list(await asyncio.gather(*(one() for _ in range(args.clients))))


async def commands(tally: Tally) -> None:
    """``go`` sets the window's origin; ``stop`` (or the parent going away) ends the run."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().split():
        if line[0] == "go":
            tally.hist = IntervalHistograms(int(line[1]), int(line[2]) * 1_000_000)
        elif line[0] == "stop":
            return


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tally = Tally()
    transports = await open_clients(args, tally)
    print("ready", flush=True)
    await commands(tally)
    closed_early = tally.closed
    for transport in transports:
        transport.close()
    hist = tally.hist.encode() if tally.hist is not None else {}
    return {"delivered": tally.delivered, "skipped": tally.skipped, "closed_early": closed_early,
            "subscribed": tally.subscribed, "hist": {k: v.decode() for k, v in hist.items()}}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="WebSocket subscribers for ferrymq.bench.push_fanout")
    p.add_argument("--url", required=True, help="the broker's HTTP listener, http://host:port")
    p.add_argument("--clients", type=int, required=True)
    p.add_argument("--exchange", required=True)
    p.add_argument("--key", default="%23")
    p.add_argument("--user", default="guest")
    p.add_argument("--password", default="guest")
    p.add_argument("--out", required=True, help="where the JSON result goes")
    return p.parse_args(argv)


if __name__ == "__main__":
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    arguments = parse()
    result = asyncio.run(main(arguments))
    with open(arguments.out, "w") as f:
        json.dump(result, f)
