"""The lab's network between clients and a broker: a TCP proxy on loopback whose knobs make the link
slow (``set_delay``), lossy (``set_loss``) or gone (``cut`` / ``heal``), for QueueLab's faults.

What "loss" means here, honestly: the proxy sits above TCP, so it sees a byte stream, not packets.
Dropping bytes would corrupt the stream (no real network does that to a TCP connection); what a lost
segment costs a TCP connection is time — the sender retransmits after a timeout, and everything
behind the lost segment waits for it (head-of-line blocking). So a "lost" chunk is delivered intact
and in order, but held back an extra ``LOSS_PENALTY_S`` (200 ms, Linux's minimum retransmission
timeout), and every chunk behind it in the same direction waits behind it. No byte is ever dropped,
duplicated or reordered.

Each direction of each connection is a lane: a queue of (due time, chunk) drained in order by one
timer, so a delay or a hold never reorders. Due times are on the event loop's own scheduler clock
(``loop.time()``), the clock its timers fire by; the only randomness (which chunk is "lost") comes
from the injected ``Rng``, so a seeded run holds the same chunks.

Backpressure: a side stops reading while the other side's write buffer is above its high-water mark
(asyncio's ``pause_writing``), or while more than ``LANE_HIGH_BYTES`` sit delayed in its lane.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from ferrymq.clock import Rng

LOSS_PENALTY_S = 0.2  # what a lost segment costs: Linux's minimum RTO (TCP_RTO_MIN, 200 ms)
LANE_HIGH_BYTES = 1 << 20  # stop reading a side while this much of its data waits delayed
LANE_LOW_BYTES = 1 << 18
_EOF = b""  # queued in a lane: the source half-closed; pass the EOF on after the data before it
_CLOSE = None  # queued in a lane: the source is gone; close the far side after the data before it

STAT_KEYS = ("connections", "bytes_up", "bytes_down", "cut_connections", "held_chunks", "refused")


class _Side(asyncio.Protocol):
    """One socket of a pair: the client's (accepted) or the broker's (dialled)."""

    def __init__(self, pair: _Pair, upstream: bool) -> None:
        self.pair, self.upstream = pair, upstream
        self.transport: asyncio.Transport | None = None
        self.holds: set[str] = set()  # why reading is paused: "peer-buffer", "lane"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.pair.side_ready(self)

    def data_received(self, data: bytes) -> None:
        self.pair.lane_from(self).push(data)

    def eof_received(self) -> bool:
        self.pair.lane_from(self).push(_EOF)
        return True  # half-open: the other direction may still carry data

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.pair.side_lost(self)

    def pause_writing(self) -> None:
        self.pair.peer(self).hold("peer-buffer")

    def resume_writing(self) -> None:
        self.pair.peer(self).release("peer-buffer")

    def hold(self, why: str) -> None:
        if not self.holds and self.transport is not None:
            self.transport.pause_reading()
        self.holds.add(why)

    def release(self, why: str) -> None:
        if why not in self.holds:
            return
        self.holds.discard(why)
        if not self.holds and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class _Lane:
    """One direction of a pair: chunks wait here until due, then go out in arrival order."""

    def __init__(self, proxy: Proxy, src: _Side, dst: _Side, stat: str) -> None:
        self.proxy, self.src, self.dst, self.stat = proxy, src, dst, stat
        self.chunks: deque[tuple[float, bytes | None]] = deque()
        self.queued_bytes = 0
        self.last_due = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.eof_sent = False

    def push(self, data: bytes | None) -> None:
        now = self.proxy.loop.time()
        due = max(now + self.proxy.delay_s + self.proxy.penalty_s(data), self.last_due)
        self.last_due = due
        self.chunks.append((due, data))
        if data:
            self.proxy.stats[self.stat] += len(data)
            self.queued_bytes += len(data)
            if self.queued_bytes > LANE_HIGH_BYTES:
                self.src.hold("lane")
        if self.timer is None:  # else the armed timer reaches this chunk: it is due no sooner
            self.flush()

    def flush(self) -> None:
        """Send every chunk now due (if the far side is connected); arm the timer for the next."""
        self.timer = None
        now = self.proxy.loop.time()
        while self.chunks and self.chunks[0][0] <= now and self.dst.transport is not None:
            _, data = self.chunks.popleft()
            self.queued_bytes -= len(data or b"")
            self._send(data)
        if self.queued_bytes < LANE_LOW_BYTES:
            self.src.release("lane")
        if self.chunks and self.dst.transport is not None:
            self.timer = self.proxy.loop.call_at(self.chunks[0][0], self.flush)

    def _send(self, data: bytes | None) -> None:
        t = self.dst.transport
        assert t is not None
        if data:
            t.write(data)
        elif data is _CLOSE:
            t.close()  # after what is buffered: a FIN, as the source's own close was
        elif t.can_write_eof():
            t.write_eof()
            self.eof_sent = True
            self.proxy.loop.call_soon(self.src.pair.both_half_closed)

    def drop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.chunks.clear()
        self.queued_bytes = 0


class _Pair:
    """A client connection and the broker connection dialled for it."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.client, self.broker = _Side(self, upstream=False), _Side(self, upstream=True)
        self.up = _Lane(proxy, self.client, self.broker, "bytes_up")
        self.down = _Lane(proxy, self.broker, self.client, "bytes_down")
        self.dial: asyncio.Task[Any] | None = None
        self.closed = False

    def peer(self, side: _Side) -> _Side:
        return self.client if side is self.broker else self.broker

    def lane_from(self, side: _Side) -> _Lane:
        return self.up if side is self.client else self.down

    def side_ready(self, side: _Side) -> None:
        if self.closed:  # cut while the broker was being dialled: the dial won the race
            side.abort()
        elif side is self.client:
            self.dial = self.proxy.loop.create_task(self._dial())
        else:
            self.up.flush()  # what the client sent while the broker was being dialled

    async def _dial(self) -> None:
        try:
            await self.proxy.loop.create_connection(lambda: self.broker, self.proxy.upstream_host,
                                                    self.proxy.upstream_port)
        except OSError:
            self.abort()

    def both_half_closed(self) -> None:
        """Each side has sent its EOF and the other has received it: nothing more can flow."""
        if self.up.eof_sent and self.down.eof_sent:
            for side in (self.client, self.broker):
                if side.transport is not None:
                    side.transport.close()

    def side_lost(self, side: _Side) -> None:
        """One socket is gone: the other gets what was already on its way, then a close."""
        was_closed, self.closed = self.closed, True
        if self.peer(side).transport is None:  # both are gone now, or the broker was still being dialled
            self.abort()
        elif not was_closed:
            self.lane_from(self.peer(side)).drop()  # toward the closed side: nowhere to go
            self.lane_from(side).push(_CLOSE)

    def abort(self) -> None:
        """Both sides at once, with a reset (no FIN, buffered data discarded): what a cut does."""
        self.closed = True
        self.up.drop()
        self.down.drop()
        if self.dial is not None:
            self.dial.cancel()
        self.client.abort()
        self.broker.abort()
        self.proxy.pairs.discard(self)


class _Refused(asyncio.Protocol):
    """A connection accepted while the link is cut: reset at once, as an unreachable peer would."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.abort()


class Proxy:
    """A TCP proxy from ``127.0.0.1:port`` to one upstream; knobs are sync and act at once on every
    open and future connection. Call them from the loop the proxy runs on."""

    def __init__(self, upstream_host: str, upstream_port: int, rng: Rng) -> None:
        self.upstream_host, self.upstream_port, self.rng = upstream_host, upstream_port, rng
        self.loop = asyncio.get_running_loop()
        self.pairs: set[_Pair] = set()
        self.delay_s = 0.0
        self.loss = 0.0
        self.is_cut = False
        self.stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)
        self.server: asyncio.Server | None = None
        self.port = 0

    @classmethod
    async def start(cls, upstream_host: str, upstream_port: int, rng: Rng | None = None,
                    port: int = 0) -> Proxy:
        """Listen on ``port`` (0: any free one); a Kafka broker is told to advertise it beforehand."""
        proxy = cls(upstream_host, upstream_port, rng if rng is not None else Rng())
        proxy.server = await proxy.loop.create_server(proxy._accept, "127.0.0.1", port)
        proxy.port = int(proxy.server.sockets[0].getsockname()[1])
        return proxy

    def _accept(self) -> asyncio.Protocol:
        if self.is_cut:
            self.stats["refused"] += 1
            return _Refused()
        pair = _Pair(self)
        self.pairs.add(pair)
        self.stats["connections"] += 1
        return pair.client

    def penalty_s(self, data: bytes | None) -> float:
        """The extra hold for a chunk "lost" on the way (see the module docstring)."""
        if data and self.loss > 0.0 and self.rng.random() * 100.0 < self.loss:
            self.stats["held_chunks"] += 1
            return LOSS_PENALTY_S
        return 0.0

    def buffered_bytes(self) -> int:
        """Bytes the proxy holds now (delayed in lanes, or in its sockets' write buffers): bounded
        by backpressure however fast a side sends and however slowly the other reads."""
        total = 0
        for pair in self.pairs:
            total += pair.up.queued_bytes + pair.down.queued_bytes
            for side in (pair.client, pair.broker):
                if side.transport is not None:
                    total += side.transport.get_write_buffer_size()
        return total

    def set_delay(self, ms: float) -> None:
        """Every chunk sent from now on, both ways, arrives ``ms`` later (0 for none)."""
        self.delay_s = max(0.0, ms) / 1000.0

    def set_loss(self, pct: float) -> None:
        """From now on each chunk, with probability ``pct`` %, is held an extra 200 ms."""
        self.loss = min(100.0, max(0.0, pct))

    def cut(self) -> None:
        """Reset every open connection, both sides at once, and refuse new ones until ``heal``."""
        self.is_cut = True
        for pair in list(self.pairs):
            self.stats["cut_connections"] += 1
            pair.abort()

    def heal(self) -> None:
        self.is_cut = False

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for pair in list(self.pairs):
            pair.abort()
        await asyncio.sleep(0)  # the aborted sockets close on the next loop turn
        if self.server is not None:
            await self.server.wait_closed()
