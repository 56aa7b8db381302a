"""The lab's TCP proxy, proven with real sockets: an echo server and asyncio clients for the knobs,
and pika against a real FerryMQ for a client that speaks AMQP through it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

from ferrymq.chaos.broker import BrokerProcess, free_port
from ferrymq.clock import Rng
from ferrymq.lab.proxy import LANE_HIGH_BYTES, LOSS_PENALTY_S, Proxy
from ferrymq.testing import EmbeddedBroker


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def with_echo_proxy(body: Callable[[Proxy], Awaitable[None]], seed: int = 7) -> None:
    """Run ``body`` against a proxy in front of a real echo server, then close both."""
    async def main() -> None:
        server = await asyncio.start_server(_echo, "127.0.0.1", 0)
        proxy = await Proxy.start("127.0.0.1", server.sockets[0].getsockname()[1], rng=Rng(seed))
        try:
            await asyncio.wait_for(body(proxy), 20)
        finally:
            await proxy.close()
            server.close()
            await server.wait_closed()
    asyncio.run(main())


async def round_trip(proxy: Proxy, chunks: list[bytes]) -> tuple[bytes, float]:
    """Send every chunk on one connection and read the echo of all of them; (echo, seconds)."""
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    start = loop.time()
    for c in chunks:
        writer.write(c)
    await writer.drain()
    echo = await reader.readexactly(sum(map(len, chunks)))
    took = loop.time() - start
    writer.close()
    return echo, took


def numbered_chunks(n: int) -> list[bytes]:
    return [f"<{i}:{'x' * (i % 97)}>".encode() for i in range(n)]


def test_bytes_pass_both_ways_in_order() -> None:
    async def body(proxy: Proxy) -> None:
        chunks = [*numbered_chunks(500), bytes(range(256)) * 800]
        echo, _ = await round_trip(proxy, chunks)
        assert echo == b"".join(chunks)
        await asyncio.sleep(0.05)
        assert proxy.stats["connections"] == 1
        assert proxy.stats["bytes_up"] == proxy.stats["bytes_down"] == len(echo)
    with_echo_proxy(body)


def test_a_half_close_is_passed_on_after_the_data_before_it() -> None:
    async def body(proxy: Proxy) -> None:
        proxy.set_delay(20)
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"last words")
        writer.write_eof()  # the echo server sees EOF only after the data, echoes it and closes
        assert await reader.read() == b"last words"  # ...then its EOF comes back through the proxy
        writer.close()
        await asyncio.sleep(0.05)
        assert not proxy.pairs  # both EOFs passed: the proxy closed its two sockets
    with_echo_proxy(body)


def test_delay_holds_every_chunk_both_ways() -> None:
    async def body(proxy: Proxy) -> None:
        proxy.set_delay(50)
        echo, took = await round_trip(proxy, [b"ping"])
        assert echo == b"ping"
        assert took >= 2 * 0.050  # out and back: each crossing waits 50 ms
        proxy.set_delay(0)
        chunks = numbered_chunks(200)
        assert (await round_trip(proxy, chunks))[0] == b"".join(chunks)
    with_echo_proxy(body)


def test_delay_lowered_mid_stream_never_reorders() -> None:
    async def body(proxy: Proxy) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        proxy.set_delay(200)
        writer.write(b"first-")
        await asyncio.sleep(0.02)
        proxy.set_delay(0)  # the next chunk is due sooner, but must not overtake the first
        writer.write(b"second")
        assert await reader.readexactly(12) == b"first-second"
        writer.close()
    with_echo_proxy(body)


def test_total_loss_delivers_every_byte_in_order_only_later() -> None:
    async def body(proxy: Proxy) -> None:
        proxy.set_loss(100)
        chunks = numbered_chunks(50)
        echo, took = await round_trip(proxy, chunks)
        assert echo == b"".join(chunks)
        assert proxy.stats["held_chunks"] >= 2  # at least one chunk each way
        assert took >= 2 * LOSS_PENALTY_S
    with_echo_proxy(body)


def test_partial_loss_is_decided_by_the_seeded_rng() -> None:
    held: list[int] = []
    for _ in range(2):
        async def body(proxy: Proxy) -> None:
            proxy.set_loss(30)
            for c in numbered_chunks(6):  # one chunk per round trip, so the chunking is fixed
                assert (await round_trip(proxy, [c]))[0] == c
            held.append(proxy.stats["held_chunks"])
        with_echo_proxy(body, seed=42)
    assert held[0] == held[1] and 0 < held[0] < 12


def test_a_reader_that_stops_reading_stops_the_sender_and_the_proxy_buffers_a_bounded_amount() -> None:
    async def body(proxy: Proxy) -> None:
        proxy.set_delay(1)
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        block = bytes(range(256)) * 4096  # 1 MiB
        total = 64 * len(block)

        async def send() -> None:
            for _ in range(64):
                writer.write(block)
                await writer.drain()
        sender = asyncio.create_task(send())
        await asyncio.sleep(1.0)  # nobody reads the echo: every buffer on the way fills, then stops
        assert not sender.done()
        assert proxy.buffered_bytes() < 4 * LANE_HIGH_BYTES
        assert proxy.stats["bytes_up"] < total
        echo = await reader.readexactly(total)
        await sender
        assert echo == block * 64
        writer.close()
    with_echo_proxy(body)


async def closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """True if the connection ends (EOF or reset) without a byte arriving."""
    try:
        return await asyncio.wait_for(reader.read(1), 5) == b""
    except ConnectionError:
        return True


def test_cut_resets_open_connections_and_refuses_new_ones_until_heal() -> None:
    async def body(proxy: Proxy) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"hello")
        assert await reader.readexactly(5) == b"hello"
        proxy.cut()
        assert await closed_by_peer(reader)
        assert proxy.stats["cut_connections"] == 1
        r2, w2 = await asyncio.open_connection("127.0.0.1", proxy.port)  # accepted, then reset
        with pytest.raises(ConnectionError):
            w2.write(b"anyone?")
            await w2.drain()
            if await closed_by_peer(r2):
                raise ConnectionResetError("closed")
        proxy.heal()
        echo, _ = await round_trip(proxy, [b"back again"])
        assert echo == b"back again"
        writer.close()
        w2.close()
    with_echo_proxy(body)


class ProxyThread:
    """A proxy on an event loop in a thread of its own, for blocking clients such as pika."""

    def __init__(self, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy: Proxy = self.run(Proxy.start("127.0.0.1", port, rng=Rng(1)))

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def call(self, fn: Callable[[], None]) -> None:
        async def on_loop() -> None:
            fn()
        self.run(on_loop())

    def close(self) -> None:
        self.run(self.proxy.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def proxied_ferry(ferry: EmbeddedBroker) -> Iterator[ProxyThread]:
    pt = ProxyThread(ferry.amqp_port)
    try:
        yield pt
    finally:
        pt.close()


def pika_via(pt: ProxyThread) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", pt.proxy.port,
                                                             connection_attempts=1, socket_timeout=5))


def test_pika_publishes_and_consumes_through_a_slow_lossy_proxy(proxied_ferry: ProxyThread) -> None:
    proxied_ferry.call(lambda: proxied_ferry.proxy.set_delay(5))
    proxied_ferry.call(lambda: proxied_ferry.proxy.set_loss(10))
    conn = pika_via(proxied_ferry)
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare("lab-proxy-pika", durable=True)
    for i in range(10):
        ch.basic_publish("", "lab-proxy-pika", f"m{i}".encode(),
                         pika.BasicProperties(delivery_mode=2), mandatory=True)
    got = []
    for _ in range(10):
        method, _, body = ch.basic_get("lab-proxy-pika")
        assert method is not None
        got.append(body)
        ch.basic_ack(method.delivery_tag)
    assert got == [f"m{i}".encode() for i in range(10)]
    conn.close()
    assert proxied_ferry.proxy.stats["held_chunks"] > 0


def test_pika_connection_fails_during_cut_and_a_new_one_works_after_heal(proxied_ferry: ProxyThread) -> None:
    conn = pika_via(proxied_ferry)
    ch = conn.channel()
    ch.queue_declare("lab-proxy-cut")
    proxied_ferry.call(proxied_ferry.proxy.cut)
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        ch.queue_declare("lab-proxy-cut", passive=True)
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika_via(proxied_ferry)
    proxied_ferry.call(proxied_ferry.proxy.heal)
    conn2 = pika_via(proxied_ferry)
    ch2 = conn2.channel()
    ch2.basic_publish("", "lab-proxy-cut", b"after heal")
    method, _, body = ch2.basic_get("lab-proxy-cut", auto_ack=True)
    assert method is not None and body == b"after heal"
    conn2.close()


def test_kafka_clients_stay_behind_the_proxy_when_the_broker_advertises_it(tmp_path: Path) -> None:
    """kafka_advertised_port (Kafka's advertised.listeners): after bootstrap, a client dials the
    address the broker advertises, so a broker that advertises the proxy keeps its clients behind it."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    listen, kafka_port = free_port(), free_port()
    broker = BrokerProcess(tmp_path / "data", free_port(), kafka_port=kafka_port,
                           env={"FERRYMQ_KAFKA_ADVERTISED_PORT": str(listen)})
    broker.start()

    async def main() -> None:
        proxy = await Proxy.start("127.0.0.1", kafka_port, rng=Rng(3), port=listen)
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{proxy.port}", request_timeout_ms=1000)
        await producer.start()
        try:
            await producer.send_and_wait("lab-proxy-kafka", b"through the proxy")
            proxy.cut()
            with pytest.raises((KafkaError, TimeoutError)):  # the link is cut: nothing may get through
                await asyncio.wait_for(producer.send_and_wait("lab-proxy-kafka", b"during the cut"), 3)
        finally:
            await producer.stop()
            await proxy.close()
    try:
        asyncio.run(main())
    finally:
        broker.stop()
