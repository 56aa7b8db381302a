"""aio-pika (aiormq underneath: confirms on by default) against FerryMQ."""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_aio_pika_publish_confirmed_and_consume(amqp_url):
    async def main():
        conn = await aio_pika.connect_robust(amqp_url)
        async with conn:
            ch = await conn.channel()
            await ch.set_qos(prefetch_count=10)
            q = await ch.declare_queue(_name("q"), auto_delete=True)
            for i in range(20):
                await ch.default_exchange.publish(aio_pika.Message(f"{i}".encode()), q.name)
            got = []
            async with q.iterator() as it:
                async for message in it:
                    async with message.process():
                        got.append(int(message.body))
                    if len(got) == 20:
                        break
            return got

    assert run(main()) == list(range(20))


def test_aio_pika_rpc_over_direct_reply_to(amqp_url):
    async def main():
        conn = await aio_pika.connect(amqp_url)
        async with conn:
            server_ch = await conn.channel()
            rpc_q = await server_ch.declare_queue(_name("rpc"), auto_delete=True)

            async def serve(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                async with message.process():
                    await server_ch.default_exchange.publish(
                        aio_pika.Message(message.body.upper(),
                                         correlation_id=message.correlation_id),
                        routing_key=message.reply_to,
                    )

            await rpc_q.consume(serve)
            client_ch = await conn.channel()
            reply_q = await client_ch.get_queue("amq.rabbitmq.reply-to", ensure=False)
            future = asyncio.get_running_loop().create_future()

            async def on_reply(message):
                future.set_result(message.body)

            await reply_q.consume(on_reply, no_ack=True)
            await client_ch.default_exchange.publish(
                aio_pika.Message(b"ping", reply_to="amq.rabbitmq.reply-to",
                                 correlation_id="1"),
                routing_key=rpc_q.name,
            )
            return await future

    assert run(main()) == b"PING"


def test_aio_pika_fanout_reaches_every_bound_queue(amqp_url):
    async def main():
        conn = await aio_pika.connect(amqp_url)
        async with conn:
            ch = await conn.channel()
            ex = await ch.declare_exchange(_name("fan"), aio_pika.ExchangeType.FANOUT,
                                           auto_delete=True)
            queues = [await ch.declare_queue(exclusive=True) for _ in range(3)]
            for q in queues:
                await q.bind(ex)
            await ex.publish(aio_pika.Message(b"all"), routing_key="")
            bodies = []
            for q in queues:
                m = await q.get(timeout=5)
                await m.ack()
                bodies.append(m.body)
            return bodies

    assert run(main()) == [b"all"] * 3


@pytest.mark.parametrize("missing", ["exchange"])
def test_aio_pika_publish_to_missing_exchange_closes_channel_404(amqp_url, missing):
    async def main():
        conn = await aio_pika.connect(amqp_url)
        async with conn:
            ch = await conn.channel()
            ex = await ch.get_exchange(_name("nope"), ensure=False)
            with pytest.raises(aio_pika.exceptions.ChannelClosed) as info:
                await ex.publish(aio_pika.Message(b"x"), routing_key="k")
            return info.value

    err = run(main())
    assert "404" in str(err) or "NOT_FOUND" in str(err)
