"""The routing explainer: the same routing as publish, with words for why each binding matched."""

from __future__ import annotations

from ferrymq.core.explain import explain_publish
from ferrymq.core.vhost import VHost
from tests.support.core import msg, new_broker


def _vhost() -> VHost:
    broker, _ = new_broker()
    return broker.vhosts["/"]


def _bind(vh: VHost, queue: str, exchange: str, key: str, args: dict | None = None) -> None:
    if queue not in vh.queues:
        vh.declare_queue(queue, connection=None)
    vh.bind(queue, exchange, key, args, to_exchange=False, connection=None)


def _matched(answer: dict) -> dict[str, bool]:
    return {b["destination"] + ":" + b["routing_key"]: b["matched"]
            for s in answer["steps"] for b in s["bindings"]}


def test_topic_explains_which_words_the_wildcards_took() -> None:
    vh = _vhost()
    vh.declare_exchange("t", "topic")
    _bind(vh, "eu", "t", "orders.*.eu")
    _bind(vh, "all", "t", "orders.#")
    _bind(vh, "us", "t", "orders.*.us")
    got = explain_publish(vh, "t", "orders.new.eu", None)
    assert got["queues"] == ["eu", "all"] == vh.route(vh.exchanges["t"], "orders.new.eu", None)
    assert _matched(got) == {"eu:orders.*.eu": True, "all:orders.#": True, "us:orders.*.us": False}
    why = {b["destination"]: b["why"] for b in got["steps"][0]["bindings"]}
    assert "'*' took 'new'" in why["eu"] and "'eu' equals 'eu'" in why["eu"]
    assert "'#' took 2 word(s) 'new.eu'" in why["all"]
    assert "word 3 is 'eu' where the pattern wants 'us'" in why["us"]
    assert got["unroutable"] is False and got["alternate_exchange"] is None


def test_topic_misfits_say_what_does_not_line_up() -> None:
    from ferrymq.core.exchange.explain import topic_why
    assert topic_why("a.#.b.c", "a.b", False).endswith("needs at least 3 word(s), the key has 2")
    assert topic_why("a.*", "a.b.c", False).endswith("the pattern has 2 word(s), the key 3")
    assert topic_why("#", "", True) == "topic: pattern '#' matches key '': '#' took 0 word(s)"


def test_direct_and_fanout_say_key_equality_and_always() -> None:
    vh = _vhost()
    vh.declare_exchange("d", "direct")
    vh.declare_exchange("f", "fanout")
    _bind(vh, "a", "d", "k1")
    _bind(vh, "b", "d", "k2")
    _bind(vh, "b", "f", "ignored")
    got = explain_publish(vh, "d", "k1", None)
    assert got["queues"] == ["a"] and _matched(got) == {"a:k1": True, "b:k2": False}
    assert "equals the binding key" in got["steps"][0]["bindings"][0]["why"]
    assert "differs from binding key 'k2'" in got["steps"][0]["bindings"][1]["why"]
    fan = explain_publish(vh, "f", "anything", None)
    assert fan["queues"] == ["b"] and "fanout" in fan["steps"][0]["bindings"][0]["why"]


def test_headers_explains_x_match_and_each_pair() -> None:
    vh = _vhost()
    vh.declare_exchange("h", "headers")
    _bind(vh, "all", "h", "", {"x-match": "all", "format": "pdf", "type": "report"})
    _bind(vh, "any", "h", "", {"x-match": "any", "format": "pdf", "type": "report"})
    got = explain_publish(vh, "h", "", {"format": "pdf", "type": "log"})
    assert got["queues"] == ["any"]
    why = {b["destination"]: b["why"] for b in got["steps"][0]["bindings"]}
    assert "x-match all" in why["all"] and "type='report' differs (message has 'log')" in why["all"]
    assert "format='pdf' matched" in why["any"] and why["any"].endswith("-> matched")


def test_follows_exchange_bindings_and_the_alternate_exchange_like_publish() -> None:
    vh = _vhost()
    vh.declare_exchange("ae", "fanout")
    vh.declare_exchange("front", "direct", arguments={"alternate-exchange": "ae"})
    vh.declare_exchange("inner", "topic")
    vh.bind("inner", "front", "k", None, to_exchange=True, connection=None)
    _bind(vh, "deep", "inner", "#")
    _bind(vh, "lost", "ae", "")
    via = explain_publish(vh, "front", "k", None)
    assert [s["exchange"] for s in via["steps"]] == ["front", "inner"]
    assert via["queues"] == ["deep"] and via["steps"][0]["bindings"][0]["destination_type"] == "exchange"
    alt = explain_publish(vh, "front", "other", None)
    assert alt["alternate_exchange"] == "ae" and alt["queues"] == ["lost"]
    assert [s["exchange"] for s in alt["steps"]] == ["front", "ae"]


def test_unroutable_default_exchange_streams_and_dead_letter_targets() -> None:
    vh = _vhost()
    vh.declare_queue("work", connection=None, arguments={"x-dead-letter-exchange": "",
                                                         "x-dead-letter-routing-key": "dlq"})
    got = explain_publish(vh, "amq.default", "work", None)
    assert got["queues"] == ["work"]
    assert got["dead_letter"] == {"work": {"exchange": "", "routing_key": "dlq"}}
    vh.declare_exchange("e", "direct")
    assert explain_publish(vh, "e", "nowhere", None)["unroutable"] is True


def test_explaining_publishes_nothing() -> None:
    vh = _vhost()
    vh.declare_exchange("f", "fanout")
    _bind(vh, "q", "f", "")
    explain_publish(vh, "f", "", None)
    assert vh.queues["q"].message_count == 0
    vh.publish("f", "", msg("x"))
    assert vh.queues["q"].message_count == 1
