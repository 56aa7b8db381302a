"""Browser push over real sockets: aiohttp's WebSocket client and an SSE reader against an
EmbeddedBroker, messages published by pika and by the HTTP API, binding-key filtering, auth,
4xx before any upgrade, a client that does not read (lagged notice, its queue bounded, nothing
lost unaccounted), heartbeats, and the private queue removed when the socket closes."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pika
import pytest
import requests

from ferrymq import EmbeddedBroker
from ferrymq.http.push import bounds

AUTH = ("guest", "guest")
HEADERS = {"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()}
EXCHANGE = "comments"
WAIT_S = 10.0  # a functional bound on waits for the broker to act, never a measured time


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        r = requests.put(f"{b.http_url}/api/exchanges/%2F/{EXCHANGE}", json={"type": "topic"}, auth=AUTH)
        assert r.status_code == 201
        r = requests.put(f"{b.http_url}/api/exchanges/%2F/by-headers", json={"type": "headers"}, auth=AUTH)
        assert r.status_code == 201
        yield b


@pytest.fixture(autouse=True)
def no_subscription_left(broker: EmbeddedBroker) -> None:
    """Each test starts with no private queue left: an earlier test's closing SSE stream is seen
    gone within a second (sse.GONE_CHECK_S), so wait for that, bounded."""
    run(wait_until(lambda: push_queues(broker) == []))


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


def url(broker: EmbeddedBroker, path: str, **query: str) -> str:
    return f"{broker.http_url}{path}?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())


def http_publish(broker: EmbeddedBroker, key: str, payload: bytes, **properties: Any) -> None:
    data = {"routing_key": key, "properties": properties,
            "payload": base64.b64encode(payload).decode(), "payload_encoding": "base64"}
    r = requests.post(f"{broker.http_url}/api/exchanges/%2F/{EXCHANGE}/publish", json=data, auth=AUTH)
    assert r.status_code == 200 and r.json() == {"routed": True}, r.text


def amqp_publish(broker: EmbeddedBroker, items: list[tuple[str, bytes]], confirm: bool = True) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    try:
        ch = conn.channel()
        if confirm:
            ch.confirm_delivery()
        for key, body in items:
            ch.basic_publish(EXCHANGE, key, body, pika.BasicProperties(headers={"author": "ann"}))
    finally:
        conn.close()


def queue_state(broker: EmbeddedBroker, name: str) -> dict[str, Any] | None:
    r = requests.get(f"{broker.http_url}/api/queues/%2F/{quote(name, safe='')}", auth=AUTH)
    return r.json() if r.status_code == 200 else None


def push_queues(broker: EmbeddedBroker) -> list[str]:
    r = requests.get(f"{broker.http_url}/api/queues/%2F", auth=AUTH)
    return [q["name"] for q in r.json() if q["name"].startswith("amq.gen-")]


async def wait_until(check: Callable[[], bool]) -> None:
    """Poll the broker's own answer until it holds (bounded by WAIT_S: a hang fails, no timing)."""
    async def poll() -> None:
        while not await asyncio.to_thread(check):
            await asyncio.sleep(0.05)
    await asyncio.wait_for(poll(), WAIT_S)


async def ws_json(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), WAIT_S)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("data: "):
            yield json.loads(line[6:])


# --- delivery -----------------------------------------------------------------------------------


def test_ws_delivers_what_amqp_and_the_http_api_publish_with_text_or_base64_bodies(
        broker: EmbeddedBroker) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession(headers=HEADERS) as s, \
                s.ws_connect(url(broker, "/ws", exchange=EXCHANGE, key="post.42.#")) as ws:
            hello = await ws_json(ws)
            assert hello["type"] == "subscribed" and hello["key"] == "post.42.#"
            assert queue_state(broker, hello["queue"])["consumers"] == 1  # type: ignore[index]
            await asyncio.to_thread(amqp_publish, broker, [("post.42.new", "héllo ✓".encode())])
            got = await ws_json(ws)
            assert got["routing_key"] == "post.42.new" and got["exchange"] == EXCHANGE
            assert (got["body"], got["encoding"]) == ("héllo ✓", "text")
            assert got["properties"]["headers"] == {"author": "ann"}
            await asyncio.to_thread(http_publish, broker, "post.42.bin", b"\xff\x00\xfe",
                                    content_type="application/octet-stream")
            got = await ws_json(ws)
            assert got["encoding"] == "base64" and base64.b64decode(got["body"]) == b"\xff\x00\xfe"
            assert got["properties"]["content_type"] == "application/octet-stream"
    run(scenario())


def test_binding_key_filters_what_a_subscription_receives(broker: EmbeddedBroker) -> None:
    """Published in order: the first frame is the first matching message, so the others never came."""
    async def scenario() -> None:
        async with aiohttp.ClientSession(headers=HEADERS) as s, \
                s.ws_connect(url(broker, "/ws", exchange=EXCHANGE, key="post.7.*")) as seven, \
                s.ws_connect(url(broker, "/ws", exchange=EXCHANGE, key="post.#")) as every:
            await ws_json(seven), await ws_json(every)
            await asyncio.to_thread(amqp_publish, broker, [
                ("post.8.a", b"8a"), ("post.7.a.deep", b"7deep"), ("post.7.b", b"7b")])
            assert (await ws_json(seven))["body"] == "7b"
            assert [(await ws_json(every))["body"] for _ in range(3)] == ["8a", "7deep", "7b"]
    run(scenario())


def test_sse_delivers_published_messages_as_data_lines(broker: EmbeddedBroker) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession(headers=HEADERS) as s, \
                s.get(url(broker, "/sse", exchange=EXCHANGE, key="news.*")) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "text/event-stream"
            events = sse_events(r)
            hello = await asyncio.wait_for(anext(events), WAIT_S)
            assert hello["type"] == "subscribed"
            await asyncio.to_thread(http_publish, broker, "news.today", b"first\nline two")
            got = await asyncio.wait_for(anext(events), WAIT_S)
            assert (got["routing_key"], got["body"]) == ("news.today", "first\nline two")
    run(scenario())


# --- auth and bad requests ----------------------------------------------------------------------


def test_push_endpoints_refuse_missing_or_wrong_credentials_before_upgrading(broker: EmbeddedBroker) -> None:
    target = {"exchange": EXCHANGE, "key": "#"}
    for path in ("/ws", "/sse"):
        assert requests.get(url(broker, path, **target)).status_code == 401
        wrong = requests.get(url(broker, path, **target), auth=("guest", "nope"))
        assert wrong.status_code == 401 and wrong.json()["reason"] == "Login failed"
    async def scenario() -> None:
        async with aiohttp.ClientSession() as s:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await s.ws_connect(url(broker, "/ws", **target))
            assert refused.value.status == 401
    run(scenario())
    assert push_queues(broker) == []


def test_the_dashboard_login_cookie_authenticates_a_websocket(broker: EmbeddedBroker) -> None:
    """What a page served by the broker itself uses: browsers send cookies on the upgrade."""
    async def scenario() -> None:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:  # an IP host
            login = await s.post(broker.http_url + "/dashboard/login",
                                 data={"user": "guest", "password": "guest"})
            assert login.status == 200
            async with s.ws_connect(url(broker, "/ws", exchange=EXCHANGE, key="#")) as ws:
                assert (await ws_json(ws))["type"] == "subscribed"
    run(scenario())


@pytest.mark.parametrize(("query", "status", "reason"), [
    ({"key": "#"}, 400, "missing query parameter(s): exchange"),
    ({"exchange": EXCHANGE}, 400, "missing query parameter(s): key"),
    ({"exchange": "nope", "key": "#"}, 404, "no exchange 'nope' in vhost '/'"),
    ({"exchange": EXCHANGE, "key": "#", "vhost": "elsewhere"}, 404, "no vhost 'elsewhere'"),
    ({"exchange": EXCHANGE, "key": "k" * 256}, 400, "key is longer than 255 bytes"),
    ({"exchange": "", "key": "#"}, 400, "the default exchange cannot be subscribed to"),
    ({"exchange": "by-headers", "key": "#"}, 400, "exchange 'by-headers' is of type headers"),
])
def test_bad_subscription_parameters_get_one_json_4xx_and_leave_no_queue(
        broker: EmbeddedBroker, query: dict[str, str], status: int, reason: str) -> None:
    for path in ("/ws", "/sse"):
        r = requests.get(url(broker, path, **query), auth=AUTH, headers={"Connection": "Upgrade",
                         "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                         "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode()})
        assert r.status_code == status and r.headers["Content-Type"].startswith("application/json")
        assert r.json()["reason"].startswith(reason), r.json()
    assert push_queues(broker) == []


def test_a_plain_get_of_the_websocket_path_is_told_to_upgrade(broker: EmbeddedBroker) -> None:
    r = requests.get(url(broker, "/ws", exchange=EXCHANGE, key="#"), auth=AUTH)
    assert r.status_code == 400 and "WebSocket upgrade" in r.json()["reason"]
    assert push_queues(broker) == []


# --- bounds, heartbeats, clean-up ----------------------------------------------------------------

BIG = 32 * 1024  # bodies big enough that socket buffers fill after a few MB
FLOOD = 400  # 12.5 MB: three times what the socket buffers between broker and client can hide
RCVBUF = 64 * 1024  # the slow client's receive buffer, fixed (no autotuning up to tcp_rmem's max)


def small_receive_buffer(addr_info: Any) -> socket.socket:
    family, kind, proto = addr_info[0], addr_info[1], addr_info[2]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    return sock


def test_a_client_that_does_not_read_is_told_it_lagged_and_its_queue_stays_bounded(
        broker: EmbeddedBroker) -> None:
    """Every published message is either received or counted in a ``lagged`` frame; while the
    client is not reading, its private queue never holds more than the bounds."""
    async def scenario() -> None:
        connector = aiohttp.TCPConnector(socket_factory=small_receive_buffer)
        async with aiohttp.ClientSession(headers=HEADERS, connector=connector) as s, \
                s.ws_connect(url(broker, "/ws", exchange=EXCHANGE, key="flood.#"), max_msg_size=0) as ws:
            name = (await ws_json(ws))["queue"]
            bodies = [(f"flood.{i}", str(i).encode().ljust(BIG, b".")) for i in range(FLOOD)]
            await asyncio.to_thread(amqp_publish, broker, bodies)
            await wait_until(lambda: queue_state(broker, name)["messages_ready"] > 0)  # type: ignore[index]
            state = queue_state(broker, name)
            assert state is not None and state["messages_ready"] <= bounds.QUEUE_MAX_MESSAGES
            assert state["message_bytes_ready"] <= bounds.QUEUE_MAX_BYTES
            received, skipped, lagged = [], 0, 0
            while len(received) + skipped < FLOOD:
                frame = await ws_json(ws)
                if frame["type"] == "lagged":
                    skipped, lagged = skipped + frame["skipped"], lagged + 1
                else:
                    received.append(int(frame["body"].rstrip(".")))
            assert lagged >= 1 and skipped > 0
            assert received == sorted(received) and received[-1] == FLOOD - 1  # skipped ahead, in order
            assert len(received) + skipped == FLOOD
    run(scenario())


def test_closing_the_websocket_removes_its_queue_and_binding(broker: EmbeddedBroker) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession(headers=HEADERS) as s:
            ws = await s.ws_connect(url(broker, "/ws", exchange=EXCHANGE, key="bye.#"))
            name = (await ws_json(ws))["queue"]
            assert queue_state(broker, name) is not None
            await ws.close()
            await wait_until(lambda: queue_state(broker, name) is None)
            async with s.get(url(broker, "/sse", exchange=EXCHANGE, key="bye.#")) as r:
                name = (await asyncio.wait_for(anext(sse_events(r)), WAIT_S))["queue"]
                assert queue_state(broker, name) is not None
            await wait_until(lambda: queue_state(broker, name) is None)
    run(scenario())
    bindings = requests.get(f"{broker.http_url}/api/exchanges/%2F/{EXCHANGE}/bindings/source", auth=AUTH)
    assert [b for b in bindings.json() if b["routing_key"] == "bye.#"] == []


def test_idle_streams_get_heartbeats(broker: EmbeddedBroker, monkeypatch: pytest.MonkeyPatch) -> None:
    """WebSocket pings and SSE comment lines (interval shortened: the broker runs in this process)."""
    monkeypatch.setattr(bounds, "HEARTBEAT_S", 0.2)

    async def scenario() -> None:
        async with aiohttp.ClientSession(headers=HEADERS) as s:
            async with s.ws_connect(url(broker, "/ws", exchange=EXCHANGE, key="quiet"), autoping=False) as ws:
                await ws_json(ws)
                ping = await asyncio.wait_for(ws.receive(), WAIT_S)
                assert ping.type == aiohttp.WSMsgType.PING
            async with s.get(url(broker, "/sse", exchange=EXCHANGE, key="quiet")) as r:
                lines = [(await asyncio.wait_for(r.content.readline(), WAIT_S)).decode() for _ in range(6)]
                assert ": ping\n" in lines
    run(scenario())


def test_deleting_the_private_queue_ends_the_subscription_with_a_closed_frame(broker: EmbeddedBroker) -> None:
    async def scenario() -> None:
        async with aiohttp.ClientSession(headers=HEADERS) as s, \
                s.ws_connect(url(broker, "/ws", exchange=EXCHANGE, key="gone.#")) as ws:
            name = (await ws_json(ws))["queue"]
            r = await s.delete(f"{broker.http_url}/api/queues/%2F/{quote(name, safe='')}")
            assert r.status == 204
            assert (await ws_json(ws)) == {"type": "closed", "reason": "the subscription's queue was deleted"}
            assert (await asyncio.wait_for(ws.receive(), WAIT_S)).type == aiohttp.WSMsgType.CLOSE
    run(scenario())
