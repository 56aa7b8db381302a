"""Exchanges, bindings and resolve: RabbitMQ 3.10.8's routing rules and texts (checked on a node)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ferrymq.core.exchange import (
    DELAY_MAX_MS,
    Binding,
    DelayedExchange,
    DirectExchange,
    Exchange,
    FanoutExchange,
    HeadersExchange,
    Route,
    TopicExchange,
    delay_ms,
    equivalent,
    freeze_args,
    headers_match,
    make_exchange,
    resolve,
)
from ferrymq.errors import COMMAND_INVALID, PRECONDITION_FAILED, CommandInvalid, PreconditionFailed


def ex(name: str, type_: str = "direct", **arguments: Any) -> Exchange:
    return make_exchange(name, type_, False, False, False, arguments)


def to_q(source: Exchange, queue: str, key: str = "", **arguments: Any) -> Binding:
    b = Binding.of(source.name, queue, False, key, arguments)
    source.bind(b)
    return b


def to_x(source: Exchange, dest: Exchange, key: str = "", **arguments: Any) -> Binding:
    b = Binding.of(source.name, dest.name, True, key, arguments)
    source.bind(b)
    return b


def dests(bindings: list[Binding]) -> list[str]:
    return [b.destination for b in bindings]


class Registry(dict[str, Exchange]):
    def add(self, *exchanges: Exchange) -> Registry:
        for e in exchanges:
            self[e.name] = e
        return self

    def resolve(self, name: str, key: str = "", headers: dict | None = None, **kw: Any) -> Route:
        return resolve(self[name], key, headers, self.get, **kw)


# --- bindings ---------------------------------------------------------------------------------


def test_binding_args_are_frozen_sorted_and_round_trip() -> None:
    args = {"b": [1, {"k": bytearray(b"v")}], "a": {"z": 1, "y": [2]}}
    b = Binding.of("x", "q", False, "k", args)
    assert [k for k, _ in b.arguments] == ["a", "b"]
    assert hash(b) == hash(Binding.of("x", "q", False, "k", dict(reversed(args.items()))))
    assert b.args() == {"b": [1, {"k": b"v"}], "a": {"z": 1, "y": [2]}}


def test_bindings_differing_only_in_args_are_distinct() -> None:
    assert Binding.of("x", "q", False, "k", {"a": 1}) != Binding.of("x", "q", False, "k")
    assert freeze_args(None) == freeze_args({}) == ()


def test_bind_twice_returns_false_and_unbind_unknown_returns_false() -> None:
    d = ex("d")
    b = Binding.of("d", "q", False, "k")
    assert d.bind(b)
    assert not d.bind(b)
    assert d.bindings() == [b]
    assert d.unbind(b)
    assert not d.unbind(b)
    assert not d.has_bindings()


# --- direct, fanout, topic --------------------------------------------------------------------


def test_direct_routes_exact_key_only() -> None:
    d = ex("d")
    to_q(d, "q1", "a.b")
    to_q(d, "q2", "a")
    assert dests(d.route("a.b", None)) == ["q1"]
    assert d.route("a.*", None) == []
    assert d.route("", None) == []


def test_direct_unbind_removes_the_route() -> None:
    d = ex("d")
    b1, b2 = to_q(d, "q1", "k"), to_q(d, "q2", "k")
    d.unbind(b1)
    assert d.route("k", None) == [b2]
    d.unbind(b2)
    assert d.route("k", None) == []
    assert d.route_queues("k", None) == []


def test_fanout_routes_every_binding_whatever_the_key() -> None:
    f = ex("f", "fanout")
    b1, b2 = to_q(f, "q1", "x"), to_q(f, "q2")
    assert f.route("anything", None) == [b1, b2]
    f.unbind(b1)
    assert f.route("", None) == [b2]


def test_topic_routes_by_pattern_in_binding_order() -> None:
    t = ex("t", "topic")
    to_q(t, "late", "#")
    to_q(t, "orders", "orders.*")
    to_q(t, "eu", "*.eu.#")
    assert dests(t.route("orders.eu", None)) == ["late", "orders", "eu"]
    assert dests(t.route("orders.us.x", None)) == ["late"]


def test_topic_binding_matching_several_ways_is_returned_once() -> None:
    t = ex("t", "topic")
    to_q(t, "q", "#.#.#")
    assert dests(t.route("a.b.c", None)) == ["q"]


def test_topic_unbind_stops_matching() -> None:
    t = ex("t", "topic")
    b = to_q(t, "q", "a.#")
    t.unbind(b)
    assert t.route("a.b", None) == []


# --- headers ----------------------------------------------------------------------------------


def routes(binding_args: dict[str, Any], headers: dict[str, Any] | None) -> bool:
    h = ex("h", "headers")
    to_q(h, "q", "", **binding_args)
    result = bool(h.route("ignored", headers))
    assert result == headers_match(binding_args, headers)
    return result


def test_headers_default_x_match_is_all() -> None:
    assert routes({"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3})
    assert not routes({"a": 1, "b": 2}, {"a": 1})


def test_headers_any_needs_one_match() -> None:
    assert routes({"x-match": "any", "a": 1, "b": 2}, {"b": 2})
    assert not routes({"x-match": "any", "a": 1, "b": 2}, {"a": 2, "b": 1})


def test_headers_all_and_any_ignore_x_keys_in_the_binding() -> None:
    assert routes({"x-match": "all", "a": 1, "x-foo": "bar"}, {"a": 1})
    assert not routes({"x-match": "any", "x-foo": "bar"}, {"x-foo": "bar"})


def test_headers_all_with_x_compares_x_keys_but_not_x_match() -> None:
    args = {"x-match": "all-with-x", "a": 1, "x-foo": "bar"}
    assert routes(args, {"a": 1, "x-foo": "bar"})
    assert not routes(args, {"a": 1})


def test_headers_any_with_x_matches_on_an_x_key() -> None:
    assert routes({"x-match": "any-with-x", "x-foo": "bar"}, {"x-foo": "bar"})
    assert not routes({"x-match": "any-with-x", "x-foo": "bar"}, {"x-foo": "baz"})


def test_headers_empty_binding_all_matches_everything_any_nothing() -> None:
    assert routes({}, None)
    assert routes({"x-match": "all", "x-only": 1}, {})
    assert not routes({"x-match": "any"}, {"a": 1})


def test_headers_void_binding_value_matches_presence() -> None:
    assert routes({"a": None}, {"a": "anything"})
    assert routes({"a": None}, {"a": None})
    assert not routes({"a": None}, {"b": 1})


def test_headers_empty_string_is_a_value_not_presence() -> None:
    assert routes({"a": ""}, {"a": ""})
    assert not routes({"a": ""}, {"a": "x"})


@pytest.mark.parametrize(("bound", "sent", "expected"), [
    ("hi", b"hi", True),  # longstr and byte array are both Erlang binaries
    (b"hi", bytearray(b"hi"), True),
    (1, 1.0, True),  # Erlang's == compares numbers arithmetically
    (1, "1", False),
    (True, 1, False),  # a bool is an atom, never a number
    (True, True, True),
    (2**40, 2**40, True),
    (1, datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), True),  # a timestamp is its seconds
    (Decimal("1.5"), Decimal("1.5"), True),
    (Decimal("1"), 1, False),
    ({"k": 1}, {"k": 1}, True),
    ([1, "x"], [1, "x"], True),
    ([1, "x"], [1, b"x"], False),  # inside arrays the field types count
])
def test_headers_values_compare_as_rabbitmq_does(bound: Any, sent: Any, expected: bool) -> None:
    assert routes({"a": bound}, {"a": sent}) is expected


def test_headers_several_bindings_route_in_binding_order() -> None:
    h = ex("h", "headers")
    to_q(h, "q2", "", a=1)
    to_q(h, "q1", "", **{"x-match": "any", "a": 2, "b": 2})
    assert dests(h.route("", {"a": 1, "b": 2})) == ["q2", "q1"]


@pytest.mark.parametrize(("x_match", "text"), [
    ("foo", 'Invalid x-match field value <<"foo">>; expected all, any, all-with-x, or any-with-x'),
    ("ALL", 'Invalid x-match field value <<"ALL">>; expected all, any, all-with-x, or any-with-x'),
    ("", "Invalid x-match field value <<>>; expected all, any, all-with-x, or any-with-x"),
    ("héllo", 'Invalid x-match field value <<"héllo">>; expected all, any, all-with-x, or any-with-x'),
    ('a"b\\c\t', 'Invalid x-match field value <<"a\\"b\\\\c\\t">>; expected all, any, all-with-x, or '
                 "any-with-x"),
    (5, "Invalid x-match field type signedint (value 5); expected longstr"),
    (True, "Invalid x-match field type bool (value true); expected longstr"),
    (b"all", 'Invalid x-match field type binary (value <<"all">>); expected longstr'),
])
def test_headers_invalid_x_match_is_precondition_failed(x_match: Any, text: str) -> None:
    h = ex("h", "headers")
    with pytest.raises(PreconditionFailed) as err:
        to_q(h, "q", "", **{"x-match": x_match})
    assert err.value.text == f"PRECONDITION_FAILED - {text}"
    assert not h.has_bindings()


# --- x-delayed-message ------------------------------------------------------------------------


def test_delayed_exchange_routes_as_its_delayed_type() -> None:
    d = ex("dl", "x-delayed-message", **{"x-delayed-type": "topic"})
    assert isinstance(d, DelayedExchange)
    assert isinstance(d.inner, TopicExchange)
    b = to_q(d, "q", "a.#")
    assert d.route("a.b", None) == [b]
    assert d.bindings() == [b]
    d.unbind(b)
    assert d.route("a.b", None) == []


def test_delayed_headers_type_validates_x_match() -> None:
    d = ex("dl", "x-delayed-message", **{"x-delayed-type": "headers"})
    with pytest.raises(PreconditionFailed):
        to_q(d, "q", "", **{"x-match": "nope"})
    assert not d.has_bindings()


@pytest.mark.parametrize("arguments", [{}, {"x-delayed-type": 5}])
def test_delayed_exchange_needs_x_delayed_type(arguments: dict[str, Any]) -> None:
    with pytest.raises(PreconditionFailed) as err:
        ex("dl", "x-delayed-message", **arguments)
    assert err.value.detail == "Invalid argument, 'x-delayed-type' must be an existing exchange type"


def test_delayed_exchange_cannot_delay_through_itself() -> None:
    with pytest.raises(PreconditionFailed) as err:
        ex("dl", "x-delayed-message", **{"x-delayed-type": "x-delayed-message"})
    assert err.value.detail == "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'"


def test_delayed_exchange_with_unknown_inner_type_is_command_invalid() -> None:
    with pytest.raises(CommandInvalid) as err:
        ex("dl", "x-delayed-message", **{"x-delayed-type": "nosuch"})
    assert err.value.detail == "unknown exchange type 'nosuch'"


@pytest.mark.parametrize(("headers", "expected"), [
    (None, 0), ({}, 0), ({"x-delay": 5000}, 5000), ({"x-delay": 0}, 0), ({"x-delay": -5000}, 0),
    ({"x-delay": True}, 0), ({"x-delay": 1500.9}, 1500), ({"x-delay": Decimal("2.5")}, 2),
    ({"x-delay": "250"}, 250), ({"x-delay": "2.5s"}, 0), ({"x-delay": b"250"}, 0),
    ({"x-delay": float("inf")}, 0), ({"x-delay": DELAY_MAX_MS}, DELAY_MAX_MS),
    ({"x-delay": DELAY_MAX_MS + 1}, 0), ({"other": 5}, 0),
])
def test_delay_ms_reads_x_delay_as_the_plugin_does(headers: dict | None, expected: int) -> None:
    assert delay_ms(headers) == expected


# --- declare and redeclare --------------------------------------------------------------------


@pytest.mark.parametrize(("type_", "cls"), [
    ("direct", DirectExchange), ("fanout", FanoutExchange), ("topic", TopicExchange),
    ("headers", HeadersExchange),
])
def test_make_exchange_builds_each_type(type_: str, cls: type[Exchange]) -> None:
    e = make_exchange("e", type_, True, True, True, {"alternate-exchange": "ae", "foo": 1})
    assert isinstance(e, cls)
    assert (e.name, e.type, e.durable, e.auto_delete, e.internal) == ("e", type_, True, True, True)
    assert e.arguments == {"alternate-exchange": "ae", "foo": 1}
    assert e.alternate == "ae"


@pytest.mark.parametrize(("type_", "text"), [
    ("ZZwwInvalid", "unknown exchange type 'ZZwwInvalid'"),
    ("Direct", "unknown exchange type 'Direct'"),
    ("foo", "invalid exchange type 'foo'"),  # 'foo' is an Erlang atom in a RabbitMQ node
    ("", "invalid exchange type ''"),
])
def test_invalid_exchange_type_is_connection_level_command_invalid(type_: str, text: str) -> None:
    with pytest.raises(CommandInvalid) as err:
        ex("e", type_)
    assert err.value.code == COMMAND_INVALID
    assert err.value.connection_level
    assert err.value.text == f"COMMAND_INVALID - {text}"


def test_alternate_exchange_must_be_a_longstr() -> None:
    with pytest.raises(PreconditionFailed) as err:
        make_exchange("aei", "direct", False, False, False, {"alternate-exchange": 5}, vhost="v")
    assert err.value.detail == (
        "invalid type 'signedint' for arg 'alternate-exchange' in exchange 'aei' in vhost 'v'")


def redeclare(existing: dict[str, Any], **changes: Any) -> str:
    spec = {"type_": "direct", "durable": False, "auto_delete": False, "internal": False,
            "arguments": {}} | existing
    e = make_exchange("logs", spec["type_"], spec["durable"], spec["auto_delete"],
                      spec["internal"], spec["arguments"])
    new = spec | changes
    with pytest.raises(PreconditionFailed) as err:
        equivalent(e, new["type_"], new["durable"], new["auto_delete"], new["internal"],
                   new["arguments"], "/")
    assert err.value.code == PRECONDITION_FAILED
    return err.value.text


def test_redeclare_with_other_type_is_inequivalent() -> None:
    assert redeclare({"durable": True}, type_="fanout") == (
        "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'logs' in vhost '/': "
        "received 'fanout' but current is 'direct'")


@pytest.mark.parametrize("flag", ["durable", "auto_delete", "internal"])
def test_redeclare_with_other_flag_is_inequivalent(flag: str) -> None:
    assert redeclare({flag: True}, **{flag: False}) == (
        f"PRECONDITION_FAILED - inequivalent arg '{flag}' for exchange 'logs' in vhost '/': "
        "received 'false' but current is 'true'")


@pytest.mark.parametrize(("old", "new", "tail"), [
    ("a", "b", "received 'b' but current is 'a'"),
    ("a", None, "received none but current is the value 'a' of type 'longstr'"),
    (None, "b", "received the value 'b' of type 'longstr' but current is none"),
])
def test_redeclare_with_other_alternate_exchange_is_inequivalent(
    old: str | None, new: str | None, tail: str
) -> None:
    def args(ae: str | None) -> dict[str, Any]:
        return {} if ae is None else {"alternate-exchange": ae}

    text = redeclare({"arguments": args(old)}, arguments=args(new))
    assert text == ("PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange "
                    f"'logs' in vhost '/': {tail}")


def test_redeclare_ignores_other_arguments_and_string_kinds() -> None:
    e = make_exchange("logs", "direct", False, False, False, {"alternate-exchange": "a"})
    equivalent(e, "direct", False, False, False, {"alternate-exchange": b"a", "foo": 1}, "/")


def test_redeclare_with_unknown_type_is_command_invalid_first() -> None:
    e = ex("logs")
    with pytest.raises(CommandInvalid):
        equivalent(e, "nosuchtype", True, False, False, {}, "/")


# --- resolve ----------------------------------------------------------------------------------


def test_resolve_direct_one_queue() -> None:
    reg = Registry().add(d := ex("d"))
    to_q(d, "q", "k")
    assert reg.resolve("d", "k") == Route(["q"], [], [])
    assert reg.resolve("d", "other") == Route([], [], [])


def test_resolve_delivers_once_per_queue() -> None:
    reg = Registry().add(h := ex("h", "headers"))
    to_q(h, "q", "", a=1)
    to_q(h, "q", "", b=1)
    assert reg.resolve("h", "", {"a": 1, "b": 1}).queues == ["q"]


def test_resolve_returns_a_fresh_queue_list() -> None:
    reg = Registry().add(d := ex("d"), f := ex("f", "fanout"))
    to_q(d, "q", "k")
    to_q(f, "q")
    for name in ("d", "f"):
        reg.resolve(name, "k").queues.append("junk")
        assert reg.resolve(name, "k").queues == ["q"]


def test_resolve_follows_exchange_to_exchange_chain() -> None:
    reg = Registry().add(a := ex("a"), b := ex("b", "topic"), c := ex("c", "fanout"))
    to_x(a, b, "k")
    to_x(b, c, "#")
    to_q(a, "qa", "k")
    to_q(c, "qc")
    assert reg.resolve("a", "k").queues == ["qc", "qa"]  # depth first, in binding order
    assert reg.resolve("a", "z").queues == []


def test_resolve_survives_exchange_cycles_and_delivers_once() -> None:
    reg = Registry().add(e1 := ex("e1", "fanout"), e2 := ex("e2", "fanout"))
    to_x(e1, e2)
    to_x(e2, e1)
    to_x(e1, e1)
    to_q(e1, "q")
    to_q(e2, "q")
    route = reg.resolve("e1", explain=True)
    assert route.queues == ["q"]
    assert len(route.trace) == 5  # every matching binding, even those not followed


def test_resolve_ignores_binding_to_missing_exchange() -> None:
    a, gone = ex("a", "fanout"), ex("gone")
    reg = Registry().add(a)
    to_x(a, gone)
    to_q(a, "q")
    assert reg.resolve("a").queues == ["q"]


def test_alternate_exchange_takes_unroutable_messages() -> None:
    reg = Registry().add(x := ex("x", **{"alternate-exchange": "ae"}), ae := ex("ae", "fanout"))
    to_q(x, "q", "k")
    to_q(ae, "unrouted")
    assert reg.resolve("x", "k") == Route(["q"], [], [])
    assert reg.resolve("x", "other") == Route(["unrouted"], [], ["ae"])


def test_alternate_not_used_when_a_binding_to_an_exchange_matched() -> None:
    reg = Registry().add(x := ex("x", **{"alternate-exchange": "ae"}), y := ex("y"),
                         ae := ex("ae", "fanout"))
    to_x(x, y, "k")
    to_q(ae, "unrouted")
    assert reg.resolve("x", "k") == Route([], [], [])


def test_alternate_of_a_downstream_exchange_is_used() -> None:
    reg = Registry().add(x := ex("x"), y := ex("y", **{"alternate-exchange": "ae"}),
                         ae := ex("ae", "fanout"))
    to_x(x, y, "k")
    to_q(ae, "unrouted")
    assert reg.resolve("x", "k").queues == ["unrouted"]


def test_alternates_chain_and_cycles_end() -> None:
    reg = Registry().add(ex("c1", **{"alternate-exchange": "c2"}),
                         ex("c2", **{"alternate-exchange": "c3"}),
                         ex("c3", **{"alternate-exchange": "c1"}),
                         ex("self", **{"alternate-exchange": "self"}))
    assert reg.resolve("c1", "k") == Route([], [], ["c2", "c3"])
    assert reg.resolve("self", "k") == Route([], [], [])


def test_alternate_that_routes_back_is_visited_once() -> None:
    reg = Registry().add(w1 := ex("w1", **{"alternate-exchange": "w2"}), w2 := ex("w2", "fanout"))
    to_x(w2, w1)
    to_q(w2, "q")
    assert reg.resolve("w1", "zz").queues == ["q"]


def test_missing_alternate_exchange_is_ignored() -> None:
    reg = Registry().add(ex("x", **{"alternate-exchange": "nope"}))
    assert reg.resolve("x", "k") == Route([], [], [])


def test_explain_traces_every_matching_binding_depth_first() -> None:
    reg = Registry().add(a := ex("a", "topic", **{"alternate-exchange": "ae"}), b := ex("b"),
                         ae := ex("ae", "fanout"))
    ab = to_x(a, b, "k.#")
    aq = to_q(a, "qa", "*.x")
    bq = to_q(b, "qb", "k.x")
    aeq = to_q(ae, "qae")
    assert reg.resolve("a", "k.x", explain=True) == Route(["qb", "qa"], [ab, bq, aq], [])
    assert reg.resolve("a", "k.x").trace == []
    assert reg.resolve("a", "z", explain=True) == Route(["qae"], [aeq], ["ae"])


def test_explain_on_the_fast_path_gives_the_same_queues() -> None:
    reg = Registry().add(d := ex("d"))
    b = to_q(d, "q", "k")
    assert reg.resolve("d", "k", explain=True) == Route(["q"], [b], [])


def test_resolve_when_lookup_knows_nothing() -> None:
    x = ex("x", **{"alternate-exchange": ""})
    to_x(x, ex("y"), "k")
    assert resolve(x, "k", None, lambda name: None) == Route([], [], [])
    assert resolve(x, "z", None, lambda name: None) == Route([], [], [])
