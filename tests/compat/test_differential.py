"""Differential tests: the same pika scenario on FerryMQ and on a real RabbitMQ must give the
same observable outcome (routing, dead-letter headers, TTL, length limits, priorities,
confirms, redelivery order, reply codes and texts)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
import pytest

Scenario = Callable[[Any, str], Any]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


def drain(ch: Any, queue: str) -> list[Any]:
    out = []
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append((body, props, method))


def wait_drain(ch: Any, queue: str, count: int, timeout_s: float = 3.0) -> list[Any]:
    """RabbitMQ dead-letters asynchronously: poll until ``count`` messages arrived."""
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < count and time.monotonic() < deadline:
        out.extend(drain(ch, queue))
        if len(out) < count:
            time.sleep(0.02)
    return out


def bodies(ch: Any, queue: str) -> list[bytes]:
    return [b for b, _, _ in drain(ch, queue)]


@scenario
def routing_every_exchange_type(ch: Any, p: str) -> Any:
    for kind in ("direct", "topic", "fanout", "headers"):
        ch.exchange_declare(f"{p}-{kind}", kind, auto_delete=True)
    binds = [("direct", "a", "k1", None), ("direct", "b", "k2", None),
             ("topic", "a", "*.x.#", None), ("topic", "b", "#.y", None), ("topic", "c", "#", None),
             ("topic", "d", "a..b", None), ("fanout", "a", "", None), ("fanout", "b", "ignored", None),
             ("headers", "a", "", {"x-match": "all", "h": "1", "g": "2"}),
             ("headers", "b", "", {"x-match": "any", "h": "1", "g": "2"}),
             ("headers", "c", "", {"x-match": "all", "x-k": "v"})]
    for q in "abcd":
        ch.queue_declare(f"{p}-{q}", auto_delete=True)
    for kind, q, key, args in binds:
        ch.queue_bind(f"{p}-{q}", f"{p}-{kind}", key, arguments=args)
    sends = [("direct", "k1", None), ("direct", "k2", None), ("direct", "zz", None),
             ("topic", "q.x", None), ("topic", "q.x.r.s", None), ("topic", "y", None),
             ("topic", "x.y", None), ("topic", "", None), ("topic", "a..b", None),
             ("fanout", "whatever", None), ("headers", "", {"h": "1", "g": "2"}),
             ("headers", "", {"h": "1"}), ("headers", "", {"x-k": "v"}), ("headers", "", {})]
    for i, (kind, key, headers) in enumerate(sends):
        ch.basic_publish(f"{p}-{kind}", key, f"{i}".encode(),
                         pika.BasicProperties(headers=headers))
    return {q: sorted(bodies(ch, f"{p}-{q}")) for q in "abcd"}


@scenario
def topic_patterns_against_empty_and_odd_keys(ch: Any, p: str) -> Any:
    ex = f"{p}-t"
    ch.exchange_declare(ex, "topic", auto_delete=True)
    patterns = ["*", "#.*", "#", "*.#", "", "a.*", "a.#", "#.a", "a..b", "*.*"]
    for i, pattern in enumerate(patterns):
        ch.queue_declare(f"{p}-{i}", auto_delete=True)
        ch.queue_bind(f"{p}-{i}", ex, pattern)
    for key in ["", "a", "a.", ".a", "a..b", "a.b.c", "*", "#"]:
        ch.basic_publish(ex, key, key.encode() or b"<empty>")
    return {patterns[i]: sorted(bodies(ch, f"{p}-{i}")) for i in range(len(patterns))}


@scenario
def dead_letter_headers_on_reject(ch: Any, p: str) -> Any:
    ch.exchange_declare(f"{p}-dlx", "direct", auto_delete=True)
    ch.queue_declare(f"{p}-dead", auto_delete=True)
    ch.queue_bind(f"{p}-dead", f"{p}-dlx", "rk")
    ch.queue_declare(f"{p}-q", auto_delete=True, arguments={"x-dead-letter-exchange": f"{p}-dlx"})
    ch.queue_bind(f"{p}-q", "amq.direct", "rk")
    ch.basic_publish("amq.direct", "rk", b"m", pika.BasicProperties(expiration="60000"))
    method, _, _ = ch.basic_get(f"{p}-q")
    ch.basic_reject(method.delivery_tag, requeue=False)
    (body, props, m), = wait_drain(ch, f"{p}-dead", 1)
    headers = dict(props.headers)
    deaths = [{k: v for k, v in d.items() if k != "time"} for d in headers.pop("x-death")]
    return body, m.exchange, m.routing_key, props.expiration, deaths, sorted(headers.items())


@scenario
def ttl_expiry_dead_letters_and_keeps_original_expiration(ch: Any, p: str) -> Any:
    ch.queue_declare(f"{p}-dead", auto_delete=True)
    ch.queue_declare(f"{p}-q", auto_delete=True, arguments={
        "x-message-ttl": 100, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"{p}-dead"})
    ch.basic_publish("", f"{p}-q", b"queue-ttl")
    ch.basic_publish("", f"{p}-q", b"msg-ttl", pika.BasicProperties(expiration="50"))
    time.sleep(0.4)
    ch.queue_declare(f"{p}-q", passive=True)
    out = []
    for body, props, _ in drain(ch, f"{p}-dead"):
        death = props.headers["x-death"][0]
        out.append((body, death["reason"], death.get("original-expiration"), props.expiration))
    return sorted(out)


@scenario
def max_length_overflow_modes(ch: Any, p: str) -> Any:
    ch.confirm_delivery()
    ch.queue_declare(f"{p}-dead", auto_delete=True)
    out = {}
    for mode in ("drop-head", "reject-publish", "reject-publish-dlx"):
        q = f"{p}-{mode}"
        ch.queue_declare(q, auto_delete=True, arguments={
            "x-max-length": 2, "x-overflow": mode, "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": f"{p}-dead"})
        nacked = []
        for i in range(4):
            try:
                ch.basic_publish("", q, f"{mode}-{i}".encode())
            except pika.exceptions.NackError:
                nacked.append(i)
        out[mode] = (bodies(ch, q), nacked)
    out["dead"] = sorted(b for b, _, _ in wait_drain(ch, f"{p}-dead", 4))
    return out


@scenario
def priorities_deliver_highest_first(ch: Any, p: str) -> Any:
    q = f"{p}-q"
    ch.queue_declare(q, auto_delete=True, arguments={"x-max-priority": 5})
    for i, prio in enumerate([None, 1, 9, 5, 3, 5, 0]):
        ch.basic_publish("", q, f"{i}".encode(), pika.BasicProperties(priority=prio))
    return bodies(ch, q)


@scenario
def mandatory_unroutable_is_returned_then_confirmed(ch: Any, p: str) -> Any:
    ch.confirm_delivery()
    returned = []
    ch.add_on_return_callback(lambda _c, m, _p, body: returned.append((m.reply_code, m.reply_text, body)))
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish("", f"{p}-nowhere", b"lost", mandatory=True)
    ch.basic_publish("", f"{p}-nowhere", b"quiet")  # not mandatory: dropped silently
    ch.connection.process_data_events(0.1)
    return returned


@scenario
def redelivery_order_after_nack_multiple(ch: Any, p: str) -> Any:
    q = f"{p}-q"
    ch.queue_declare(q, auto_delete=True)
    for i in range(5):
        ch.basic_publish("", q, f"{i}".encode())
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(3)]
    ch.basic_nack(tags[1], multiple=True, requeue=True)
    return [(b, m.redelivered) for b, _, m in drain(ch, q)], tags[2]


ERROR_CASES: dict[str, Callable[[Any, str], Any]] = {
    "passive_missing_queue": lambda ch, p: ch.queue_declare(f"{p}-missing", passive=True),
    "passive_missing_exchange": lambda ch, p: ch.exchange_declare(f"{p}-missing", passive=True),
    "redeclare_exchange_type": lambda ch, p: (ch.exchange_declare(f"{p}-x", "direct", auto_delete=True),
                                              ch.exchange_declare(f"{p}-x", "topic", auto_delete=True)),
    "redeclare_queue_durable": lambda ch, p: (ch.queue_declare(f"{p}-q", auto_delete=True),
                                              ch.queue_declare(f"{p}-q", durable=True, auto_delete=True)),
    "redeclare_queue_args": lambda ch, p: (
        ch.queue_declare(f"{p}-q", auto_delete=True, arguments={"x-max-length": 1}),
        ch.queue_declare(f"{p}-q", auto_delete=True, arguments={"x-max-length": 2})),
    "redeclare_queue_args_added": lambda ch, p: (
        ch.queue_declare(f"{p}-q", auto_delete=True),
        ch.queue_declare(f"{p}-q", auto_delete=True, arguments={"x-message-ttl": 5})),
    "redeclare_queue_args_removed": lambda ch, p: (
        ch.queue_declare(f"{p}-q", auto_delete=True, arguments={"x-dead-letter-exchange": "a"}),
        ch.queue_declare(f"{p}-q", auto_delete=True)),
    "invalid_exchange_type": lambda ch, p: ch.exchange_declare(f"{p}-x", "ZZwwInvalid"),
    "reserved_queue_name": lambda ch, p: ch.queue_declare(f"amq.{p}"),
    "reserved_exchange_name": lambda ch, p: ch.exchange_declare(f"amq.{p}", "direct"),
    "ack_unknown_tag": lambda ch, p: (ch.basic_ack(42), ch.queue_declare(f"{p}-q", auto_delete=True)),
    "publish_missing_exchange": lambda ch, p: (ch.basic_publish(f"{p}-nope", "k", b"x"),
                                               ch.queue_declare(f"{p}-q", auto_delete=True)),
    "bind_missing_queue": lambda ch, p: ch.queue_bind(f"{p}-missing", "amq.direct", "k"),
    "delete_queue_if_empty": lambda ch, p: (ch.queue_declare(f"{p}-q", auto_delete=True),
                                            ch.basic_publish("", f"{p}-q", b"x"),
                                            ch.queue_delete(f"{p}-q", if_empty=True)),
    "invalid_max_length_arg": lambda ch, p: ch.queue_declare(f"{p}-q", arguments={"x-max-length": -1}),
}


def _connect(url: str) -> tuple[Any, Any]:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    return conn, conn.channel()


def _outcome(url: str, fn: Callable[[Any, str], Any], prefix: str) -> Any:
    conn, ch = _connect(url)
    try:
        return fn(ch, prefix)
    except pika.exceptions.ChannelClosedByBroker as exc:
        return ("channel closed", exc.reply_code, exc.reply_text.replace(prefix, "<p>"))
    except pika.exceptions.ConnectionClosedByBroker as exc:
        return ("connection closed", exc.reply_code, exc.reply_text.replace(prefix, "<p>"))
    finally:
        if conn.is_open:
            conn.close()


def _both(ferry_url: str, rabbit_url: str, fn: Callable[[Any, str], Any]) -> tuple[Any, Any]:
    prefix = f"d{uuid.uuid4().hex[:6]}"
    return _outcome(ferry_url, fn, prefix), _outcome(rabbit_url, fn, prefix)


@pytest.mark.rabbitmq
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_outcome_as_rabbitmq(name, amqp_url, rabbitmq_url):
    ours, theirs = _both(amqp_url, rabbitmq_url, SCENARIOS[name])
    assert ours == theirs


@pytest.mark.rabbitmq
@pytest.mark.parametrize("name", sorted(ERROR_CASES))
def test_same_reply_code_and_text_as_rabbitmq(name, amqp_url, rabbitmq_url):
    ours, theirs = _both(amqp_url, rabbitmq_url, ERROR_CASES[name])
    assert ours == theirs
    assert ours[0].endswith("closed"), "the scenario must provoke an error"
