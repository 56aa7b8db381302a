"""Limits against RabbitMQ 3.10 and FerryMQ side by side: the same management calls and the same pika
clients must get the same status codes, listings, reply codes and reply texts (vhost max-connections and
max-queues, user max-connections and max-channels), and the same answer to a frame that claims more than
4096 bytes before tune (a close without a close frame). /api/nodes carries the memory keys in both."""

from __future__ import annotations

import re
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
import pytest
import requests
from pamqp import commands as c
from pamqp import frame as pframe

from ferrymq import EmbeddedBroker
from ferrymq.bench.rabbitmq_node import available, start_rabbitmq

pytestmark = pytest.mark.rabbitmq
AUTH = ("guest", "guest")


@dataclass(frozen=True)
class Target:
    api: str
    amqp_port: int


@pytest.fixture(scope="module")
def rabbit() -> Iterator[Target]:
    if not available():
        pytest.skip("rabbitmq-server not installed: differential tests against RabbitMQ skipped")
    node = start_rabbitmq(management=True)
    try:
        yield Target(node.management_url + "/api", node.port)
    finally:
        node.stop()


@pytest.fixture(scope="module")
def ferry() -> Iterator[Target]:
    with EmbeddedBroker() as b:
        yield Target(b.http_url + "/api", b.amqp_port)


def _params(t: Target, vhost: str, user: str = "guest", password: str = "guest") -> pika.ConnectionParameters:
    return pika.ConnectionParameters("127.0.0.1", t.amqp_port, vhost, pika.PlainCredentials(user, password))


def _refused(t: Target, vhost: str, user: str = "guest", password: str = "guest") -> tuple[int, str]:
    try:
        pika.BlockingConnection(_params(t, vhost, user, password)).close()
    except pika.exceptions.AMQPConnectionError as exc:
        found = re.search(r'\((\d+)\) "(.*)"', str(exc))
        return (int(found.group(1)), found.group(2)) if found else (0, str(exc))
    return (0, "opened")


def _connection_limits(t: Target) -> list[Any]:
    put = lambda p, body=None: requests.put(t.api + p, json=body, auth=AUTH, timeout=10)  # noqa: E731
    seen: list[Any] = [put("/vhosts/dl-v").status_code]
    # RabbitMQ grants the vhost's creator its permissions (204 here), FerryMQ not yet (201): not compared
    put("/permissions/dl-v/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    seen += [put("/vhost-limits/dl-v/max-connections", {"value": 1}).status_code,
                       requests.get(t.api + "/vhost-limits/dl-v", auth=AUTH, timeout=10).json()]
    first = pika.BlockingConnection(_params(t, "dl-v"))
    seen.append(_refused(t, "dl-v"))
    first.close()
    seen.append(put("/vhost-limits/dl-v/max-connections", {"value": -1}).status_code)
    seen.append(_refused(t, "dl-v"))
    return seen


def _queue_limit(t: Target) -> list[Any]:
    put = lambda p, body=None: requests.put(t.api + p, json=body, auth=AUTH, timeout=10)  # noqa: E731
    seen: list[Any] = [put("/vhost-limits/dl-v/max-queues", {"value": 1}).status_code]
    conn = pika.BlockingConnection(_params(t, "dl-v"))
    ch = conn.channel()
    ch.queue_declare("dl-q1")
    ch.queue_declare("dl-q1")
    try:
        ch.queue_declare("dl-q2")
        seen.append("declared")
    except pika.exceptions.ChannelClosedByBroker as exc:
        seen.append((exc.reply_code, exc.reply_text))
    conn.close()
    seen.append(requests.get(t.api + "/vhost-limits", auth=AUTH, timeout=10).json())
    return seen


def _user_limits(t: Target) -> list[Any]:
    put = lambda p, body=None: requests.put(t.api + p, json=body, auth=AUTH, timeout=10)  # noqa: E731
    seen: list[Any] = [put("/users/dl-u", {"password": "pw", "tags": ""}).status_code,
                       put("/permissions/%2F/dl-u", {"configure": ".*", "write": ".*", "read": ".*"})
                       .status_code,
                       put("/user-limits/dl-u/max-channels", {"value": 1}).status_code,
                       put("/user-limits/dl-u/max-connections", {"value": 1}).status_code,
                       requests.get(t.api + "/user-limits/dl-u", auth=AUTH, timeout=10).json()]
    conn = pika.BlockingConnection(_params(t, "/", "dl-u", "pw"))
    seen.append(_refused(t, "/", "dl-u", "pw"))
    conn.channel()
    try:
        conn.channel()
        seen.append("opened")
    except pika.exceptions.ConnectionClosedByBroker as exc:
        seen.append((exc.reply_code, exc.reply_text))
    return seen


def _big_frame_before_tune(t: Target) -> bytes:
    with socket.create_connection(("127.0.0.1", t.amqp_port), timeout=15) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        sock.recv(65536)  # connection.start
        sock.sendall(struct.pack(">BHI", 1, 0, 5000))
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:  # RabbitMQ resets after its 3 s silent-close delay
            pass
        return data


def _node_with_stats(t: Target) -> dict[str, Any]:
    """RabbitMQ's node stats arrive a few seconds after start: poll until mem_used is there."""
    deadline = time.monotonic() + 20
    while True:
        node: dict[str, Any] = requests.get(t.api + "/nodes", auth=AUTH, timeout=10).json()[0]
        if "mem_used" in node or time.monotonic() > deadline:
            return node
        time.sleep(0.25)


def _frames(sock: socket.socket) -> list[tuple[int, Any]]:
    data, out = sock.recv(65536), []
    while data:
        size, channel, frame = pframe.unmarshal(data)
        out.append((channel, frame))
        data = data[size:]
    return out


def _channel_max_probe(t: Target) -> list[Any]:
    """channel_max 3 in tune-ok, then channel.open on 5, 1, 2, 3: what each gets back."""
    with socket.create_connection(("127.0.0.1", t.amqp_port), timeout=10) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        _frames(sock)
        sock.sendall(pframe.marshal(c.Connection.StartOk(client_properties={}, mechanism="PLAIN",
                                                         response="\0guest\0guest", locale="en_US"), 0))
        _frames(sock)
        sock.sendall(pframe.marshal(c.Connection.TuneOk(channel_max=3, frame_max=131072, heartbeat=0), 0)
                     + pframe.marshal(c.Connection.Open(virtual_host="/"), 0))
        _frames(sock)
        seen: list[Any] = []
        for number in (5, 1, 2, 3):
            sock.sendall(pframe.marshal(c.Channel.Open(), number))
            seen += [(ch, f.name, getattr(f, "reply_code", None), getattr(f, "reply_text", None),
                      getattr(f, "class_id", None), getattr(f, "method_id", None)) for ch, f in _frames(sock)]
        return seen


def test_channel_max_counts_open_channels_as_rabbitmq_does(rabbit: Target, ferry: Target) -> None:
    assert _channel_max_probe(ferry) == _channel_max_probe(rabbit)


def test_vhost_connection_limits_match_rabbitmq(rabbit: Target, ferry: Target) -> None:
    assert _connection_limits(ferry) == _connection_limits(rabbit)


def test_vhost_queue_limit_matches_rabbitmq(rabbit: Target, ferry: Target) -> None:
    assert _queue_limit(ferry) == _queue_limit(rabbit)


def test_user_limits_match_rabbitmq(rabbit: Target, ferry: Target) -> None:
    assert _user_limits(ferry) == _user_limits(rabbit)


def test_frame_above_4096_bytes_before_tune_is_a_silent_close_in_both(rabbit: Target, ferry: Target) -> None:
    assert _big_frame_before_tune(ferry) == _big_frame_before_tune(rabbit) == b""


def test_nodes_carry_the_memory_keys_in_both(rabbit: Target, ferry: Target) -> None:
    for t in (rabbit, ferry):
        node = _node_with_stats(t)
        assert {"mem_used", "mem_limit", "mem_alarm", "disk_free", "disk_free_limit",
                "disk_free_alarm"} <= set(node)
        assert node["mem_alarm"] is False and 0 < node["mem_used"] < node["mem_limit"]
