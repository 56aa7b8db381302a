"""One table of permission checks, run by pika against any broker with a management API: the same
users, permissions and topic permissions are made through the HTTP API (as guest), then each call is
made on a fresh channel by user ``perm-u`` and its outcome recorded as ("ok",) or (code, text).

Used by the integration test (FerryMQ against the expected RabbitMQ answers) and by the differential
test (FerryMQ against RabbitMQ 3.10 itself)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pika
import pika.exceptions
import requests

GUEST = ("guest", "guest")
USER, PASSWORD = "perm-u", "perm-pw"
PERMISSION = {"configure": "^u-", "write": "^(u-|amq\\.topic|amq\\.default)",
              "read": "^(u-|amq\\.topic)"}
TOPIC = {"exchange": "amq.topic", "write": "^{username}\\.", "read": "^{username}\\.r"}
Op = Callable[[Any], Any]
HTTP_USER = "perm-h"  # a management user with the same permissions, for the HTTP table
# A management user who may configure r-* and write anything but read nothing: a declare naming a
# dead-letter or alternate exchange needs read on the declared object, so those declares are refused.
READLESS_USER = "perm-hr"
READLESS = {"configure": "^r-", "write": ".*", "read": ""}


def setup(api: str) -> None:
    """Users, vhosts, permissions and the guest-owned objects the table touches."""
    def put(path: str, body: dict[str, Any]) -> None:
        r = requests.put(api + path, json=body, auth=GUEST, timeout=10)
        assert r.status_code in (201, 204), (path, r.status_code, r.text)

    put(f"/users/{USER}", {"password": PASSWORD, "tags": ""})
    put("/vhosts/perm-other", {})
    put(f"/permissions/%2F/{USER}", PERMISSION)
    put(f"/topic-permissions/%2F/{USER}", {**TOPIC, "exchange": "amq.topic"})
    put(f"/users/{HTTP_USER}", {"password": PASSWORD, "tags": "management"})
    put(f"/permissions/%2F/{HTTP_USER}", PERMISSION)
    put(f"/users/{READLESS_USER}", {"password": PASSWORD, "tags": "management"})
    put(f"/permissions/%2F/{READLESS_USER}", READLESS)
    put("/queues/%2F/shared-q", {"durable": False})
    put("/exchanges/%2F/shared-x", {"type": "direct", "durable": False})


def _declare(ch: Any, queue: str, **kw: Any) -> Any:
    return ch.queue_declare(queue, **kw)


CALLS: list[tuple[str, Op]] = [
    ("queue.declare own", lambda ch: _declare(ch, "u-q")),
    ("queue.declare others'", lambda ch: _declare(ch, "shared-q")),
    ("queue.declare amq.*", lambda ch: _declare(ch, "amq.foo")),
    ("queue.declare amq.* passive missing", lambda ch: _declare(ch, "amq.foo", passive=True)),
    ("queue.declare server-named", lambda ch: _declare(ch, "")),
    ("queue.declare passive others'", lambda ch: _declare(ch, "shared-q", passive=True)),
    ("queue.declare dlx others'", lambda ch: _declare(
        ch, "u-dlq", arguments={"x-dead-letter-exchange": "shared-x"})),
    ("queue.declare dlx not a string", lambda ch: _declare(
        ch, "u-dlq", arguments={"x-dead-letter-exchange": 5})),
    ("queue.declare dlx a long", lambda ch: _declare(
        ch, "u-dlq", arguments={"x-dead-letter-exchange": 2**40})),
    ("exchange.declare own", lambda ch: ch.exchange_declare("u-x", "direct")),
    ("exchange.declare others'", lambda ch: ch.exchange_declare("shared-x", "direct")),
    ("exchange.declare amq.*", lambda ch: ch.exchange_declare("amq.foo", "direct")),
    ("exchange.declare passive amq.direct", lambda ch: ch.exchange_declare("amq.direct", passive=True)),
    ("exchange.declare ae others'", lambda ch: ch.exchange_declare(
        "u-ae", "direct", arguments={"alternate-exchange": "shared-x"})),
    ("exchange.declare ae not a string", lambda ch: ch.exchange_declare(
        "u-ae", "direct", arguments={"alternate-exchange": 7})),
    ("queue.bind to others' exchange", lambda ch: ch.queue_bind("u-q", "shared-x", "k")),
    ("queue.bind others' queue", lambda ch: ch.queue_bind("shared-q", "u-x", "k")),
    ("queue.bind topic allowed key", lambda ch: ch.queue_bind("u-q", "amq.topic", "perm-u.r.1")),
    ("queue.bind topic refused key", lambda ch: ch.queue_bind("u-q", "amq.topic", "other.r")),
    ("exchange.bind topic allowed", lambda ch: ch.exchange_bind("u-x", "amq.topic", "perm-u.r")),
    ("exchange.bind topic refused", lambda ch: ch.exchange_bind("u-x", "amq.topic", "perm-u.w")),
    ("queue.unbind others' exchange", lambda ch: ch.queue_unbind("u-q", "shared-x", "k")),
    ("publish topic allowed key", lambda ch: _publish(ch, "amq.topic", "perm-u.k")),
    ("publish topic refused key", lambda ch: _publish(ch, "amq.topic", "other.k")),
    ("publish others' exchange", lambda ch: _publish(ch, "shared-x", "k")),
    ("publish default exchange", lambda ch: _publish(ch, "", "u-q")),
    ("publish missing allowed exchange", lambda ch: _publish(ch, "u-nope", "k")),
    ("publish missing refused exchange", lambda ch: _publish(ch, "nope", "k")),
    ("consume others'", lambda ch: ch.basic_consume("shared-q", lambda *a: None)),
    ("consume own", lambda ch: ch.basic_consume("u-q", lambda *a: None)),
    ("get others'", lambda ch: ch.basic_get("shared-q")),
    ("get own", lambda ch: ch.basic_get("u-q", auto_ack=True)),
    ("purge others'", lambda ch: ch.queue_purge("shared-q")),
    ("purge own", lambda ch: ch.queue_purge("u-q")),
    ("queue.delete others'", lambda ch: ch.queue_delete("shared-q")),
    ("exchange.delete others'", lambda ch: ch.exchange_delete("shared-x")),
    ("exchange.delete amq.direct", lambda ch: ch.exchange_delete("amq.direct")),
    ("exchange.delete default", lambda ch: ch.exchange_delete("")),
    ("queue.delete own", lambda ch: ch.queue_delete("u-q")),
    ("exchange.delete own", lambda ch: ch.exchange_delete("u-x")),
]


def _publish(ch: Any, exchange: str, routing_key: str) -> None:
    ch.confirm_delivery()  # a refusal closes the channel: the publish then raises
    ch.basic_publish(exchange, routing_key, b"x")


def _normal(text: str) -> str:
    """Server-generated names differ run to run."""
    return re.sub(r"amq\.gen-[A-Za-z0-9_-]+", "amq.gen-*", text)


def outcome(host: str, port: int, op: Op, vhost: str = "/") -> tuple[Any, ...]:
    params = pika.ConnectionParameters(host, port, vhost, pika.PlainCredentials(USER, PASSWORD),
                                       connection_attempts=1, heartbeat=0)
    try:
        conn = pika.BlockingConnection(params)
    except pika.exceptions.AMQPConnectionError as exc:
        return _connection_refusal(exc)
    try:
        op(conn.channel())
        return ("ok",)
    except pika.exceptions.ChannelClosedByBroker as exc:
        return exc.reply_code, _normal(exc.reply_text)
    finally:
        if conn.is_open:
            conn.close()


def _connection_refusal(exc: BaseException) -> tuple[Any, ...]:
    """pika reports a connection.close during the handshake as text: ``...: (530) "NOT_ALLOWED - ..."``."""
    found = re.search(r'\((\d+)\) [\'"](.*)[\'"]$', str(exc.args[0]) if exc.args else "")
    return (int(found.group(1)), found.group(2)) if found else ("refused", type(exc).__name__)


def run_table(host: str, port: int) -> dict[str, tuple[Any, ...]]:
    out = {name: outcome(host, port, op) for name, op in CALLS}
    out["connection.open refused vhost"] = outcome(host, port, lambda ch: None, "perm-other")
    out["connection.open missing vhost"] = outcome(host, port, lambda ch: None, "perm-nowhere")
    return out


HTTP_CALLS: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("declare own queue", "PUT", "/queues/%2F/u-hq", {"durable": False}),
    ("declare others' queue", "PUT", "/queues/%2F/shared-q", {"durable": False}),
    ("declare own exchange", "PUT", "/exchanges/%2F/u-hx", {"type": "fanout"}),
    ("declare others' exchange", "PUT", "/exchanges/%2F/shared-x", {"type": "direct"}),
    ("declare own queue dlx others'", "PUT", "/queues/%2F/u-hdlq",
     {"arguments": {"x-dead-letter-exchange": "shared-x"}}),
    ("declare own queue dlx own", "PUT", "/queues/%2F/u-hdlq",
     {"arguments": {"x-dead-letter-exchange": "u-hx"}}),
    ("redeclare others' queue dlx others'", "PUT", "/queues/%2F/shared-q",
     {"arguments": {"x-dead-letter-exchange": "shared-x"}}),
    ("declare own exchange ae others'", "PUT", "/exchanges/%2F/u-hae",
     {"type": "direct", "arguments": {"alternate-exchange": "shared-x"}}),
    ("declare own exchange ae own", "PUT", "/exchanges/%2F/u-hae",
     {"type": "direct", "arguments": {"alternate-exchange": "u-hx"}}),
    ("declare own exchange ae default", "PUT", "/exchanges/%2F/u-hae2",
     {"type": "direct", "arguments": {"alternate-exchange": ""}}),
    ("declare others' exchange unknown type", "PUT", "/exchanges/%2F/shared-y", {"type": "no-such"}),
    ("declare own queue dlx not a string", "PUT", "/queues/%2F/u-hdlq3",
     {"arguments": {"x-dead-letter-exchange": 5}}),
    ("declare own exchange ae not a string", "PUT", "/exchanges/%2F/u-hae3",
     {"type": "direct", "arguments": {"alternate-exchange": 7}}),
    ("bind own to others' exchange", "POST", "/bindings/%2F/e/shared-x/q/u-hq", {"routing_key": "k"}),
    ("bind own", "POST", "/bindings/%2F/e/u-hx/q/u-hq", {"routing_key": "k"}),
    ("publish others' exchange", "POST", "/exchanges/%2F/shared-x/publish",
     {"properties": {}, "routing_key": "k", "payload": "x", "payload_encoding": "string"}),
    ("publish own exchange", "POST", "/exchanges/%2F/u-hx/publish",
     {"properties": {}, "routing_key": "k", "payload": "x", "payload_encoding": "string"}),
    ("get others'", "POST", "/queues/%2F/shared-q/get",
     {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"}),
    ("get own", "POST", "/queues/%2F/u-hq/get",
     {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"}),
    ("purge others'", "DELETE", "/queues/%2F/shared-q/contents", None),
    ("delete others' queue", "DELETE", "/queues/%2F/shared-q", None),
    ("delete own queue", "DELETE", "/queues/%2F/u-hq", None),
    ("delete own exchange", "DELETE", "/exchanges/%2F/u-hx", None),
]


READLESS_CALLS: list[tuple[str, str, str, dict[str, Any] | None]] = [
    ("readless declare queue", "PUT", "/queues/%2F/r-q", {}),
    ("readless declare queue dlx", "PUT", "/queues/%2F/r-dlq",
     {"arguments": {"x-dead-letter-exchange": "amq.direct"}}),
    ("readless declare exchange", "PUT", "/exchanges/%2F/r-x", {"type": "direct"}),
    ("readless declare exchange ae", "PUT", "/exchanges/%2F/r-ae",
     {"type": "direct", "arguments": {"alternate-exchange": "amq.direct"}}),
]


def run_http_table(api: str) -> dict[str, tuple[Any, ...]]:
    """Each call by its management user: its status, and the reason of a refusal."""
    out: dict[str, tuple[Any, ...]] = {}
    for user, calls in ((HTTP_USER, HTTP_CALLS), (READLESS_USER, READLESS_CALLS)):
        for name, method, path, body in calls:
            r = requests.request(method, api + path, json=body, auth=(user, PASSWORD), timeout=10)
            out[name] = (r.status_code, r.json().get("reason") if r.status_code >= 400 else None)
    return out


def quoted(vhost: str) -> str:
    return quote(vhost, safe="")
