"""One keep-alive HTTP connection per concurrent loop, one call in flight on it (as SDK clients
use theirs). Two implementations with one interface, measured against each other (see
BENCHMARKS.md): ``raw`` — an asyncio Protocol writing pre-built bytes and parsing replies itself;
``aiohttp`` — aiohttp's client session, kept to show what a general client costs."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from ferrymq.bench.sqs.http11 import Response, ResponseParser, request

CLIENTS = ("raw", "aiohttp")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop, as the broker runs; not ferrymq.server.app's twin of this, whose import brings
    the whole broker (0.8 s per generator process)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Client(Protocol):
    reconnects: int

    async def connect(self) -> None: ...

    async def call(self, action: str, body: bytes) -> Response: ...

    async def close(self) -> None: ...


class _Wire(asyncio.Protocol):
    """The socket side: hands each complete response to the one waiting call."""

    def __init__(self) -> None:
        self.parser = ResponseParser()
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Response] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            responses = self.parser.feed(data)
        except Exception as exc:
            self._fail(exc)
            return
        for r in responses:
            w, self.waiter = self.waiter, None
            if w is None or w.done():
                self._fail(ConnectionError(f"unsolicited response (status {r.status})"))
                return
            w.set_result(r)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(ConnectionError(f"server closed the connection ({exc})"))

    def _fail(self, exc: Exception) -> None:
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


class RawClient:
    """Keep-alive over raw sockets; reopens (and counts it) only when the server closes."""

    def __init__(self, host: str, port: int, heads: dict[str, bytes]) -> None:
        self.host, self.port, self.heads = host, port, heads
        self.reconnects = -1  # the first open is not a reconnect
        self._wire: _Wire | None = None

    async def _open(self) -> _Wire:
        loop = asyncio.get_running_loop()
        _, wire = await loop.create_connection(_Wire, self.host, self.port)
        self.reconnects += 1
        return wire

    async def connect(self) -> None:
        if self._wire is None or self._wire.lost:
            self._wire = await self._open()

    async def call(self, action: str, body: bytes) -> Response:
        wire = self._wire
        if wire is None or wire.lost:
            wire = self._wire = await self._open()
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        wire.waiter = fut
        assert wire.transport is not None
        wire.transport.write(request(self.heads[action], body))
        r = await fut
        if r.close:
            wire.lost = True
            assert wire.transport is not None
            wire.transport.close()
        return r

    async def close(self) -> None:
        if self._wire is not None and self._wire.transport is not None:
            self._wire.transport.close()


class AiohttpClient:
    """The same calls through one shared aiohttp ClientSession (keep-alive pool)."""

    def __init__(self, base_url: str, headers: dict[str, dict[str, str]], session: Any) -> None:
        self.url, self.headers, self.session = base_url + "/", headers, session
        self.reconnects = 0

    async def connect(self) -> None:
        return None  # the session's pool opens connections as calls need them

    async def call(self, action: str, body: bytes) -> Response:
        async with self.session.post(self.url, data=body, headers=self.headers[action]) as resp:
            return Response(resp.status, await resp.read(), False)

    async def close(self) -> None:
        return None
