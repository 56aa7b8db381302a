"""Routing: the topic trie, every exchange type, e2e bindings, alternates and delayed messages."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferrymq.core.exchange import (
    Binding,
    Exchange,
    delay_ms,
    equivalent,
    headers_match,
    make_exchange,
    resolve,
)
from ferrymq.core.topic import TopicTrie, split_words
from ferrymq.errors import AccessRefused, CommandInvalid, PreconditionFailed
from tests.unit.core_helpers import new_broker, open_channel, publish

# --- helpers ---------------------------------------------------------------------------------


def ex(name: str, type_: str, **arguments: Any) -> Exchange:
    return make_exchange(name, type_, False, False, False, arguments)


def to_q(source: str, queue: str, key: str = "", **arguments: Any) -> Binding:
    return Binding(source, queue, False, key, tuple(sorted(arguments.items())))


def to_ex(source: str, dest: str, key: str = "") -> Binding:
    return Binding(source, dest, True, key)


def topic_matches(pattern: str, key: str) -> bool:
    trie = TopicTrie()
    trie.add(pattern, "d")
    return trie.match(key) == {"d"}


def ref_match(pattern: list[str], key: list[str]) -> bool:
    """Reference topic matcher: plain recursion over word lists (exponential, but obviously right)."""
    if not pattern:
        return not key
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return ref_match(rest, key) or (bool(key) and ref_match(pattern, key[1:]))
    if not key:
        return False
    return (head == "*" or head == key[0]) and ref_match(rest, key[1:])


class Exchanges:
    """A lookup for resolve() over a small set of exchanges."""

    def __init__(self, *exchanges: Exchange) -> None:
        self.by_name = {e.name: e for e in exchanges}

    def bind(self, b: Binding) -> None:
        self.by_name[b.source].bind(b)

    def resolve(self, start: str, key: str = "", headers: dict | None = None, explain: bool = False):
        return resolve(self.by_name[start], key, headers, self.by_name.get, explain=explain)


# --- topic trie --------------------------------------------------------------------------------


@pytest.mark.parametrize(("pattern", "key", "expected"), [
    ("a.*", "a.b", True),
    ("a.*", "a", False),
    ("a.*", "a.b.c", False),
    ("*", "a", True),
    ("*", "", False),  # RabbitMQ 3.10: the empty key has no words
    ("*.*", "a", False),
    ("a.*.c", "a.b.c", True),
    ("a.*.c", "a..c", True),
])
def test_star_matches_exactly_one_word(pattern, key, expected):
    assert topic_matches(pattern, key) is expected


@pytest.mark.parametrize(("pattern", "key", "expected"), [
    ("#", "", True),
    ("#", "a", True),
    ("#", "a.b.c", True),
    ("a.#", "a", True),
    ("a.#", "a.b", True),
    ("a.#", "a.b.c", True),
    ("a.#", "b.a", False),
    ("#.b", "b", True),
    ("#.b", "a.b", True),
    ("#.b", "a.b.c", False),
    ("a.#.b", "a.b", True),
    ("a.#.b", "a.x.b", True),
    ("a.#.b", "a.x.y.b", True),
    ("a.#.b", "a.x.y", False),
    ("a.#.b", "b.x.b", False),
    ("#.#", "", True),
    ("#.#", "a", True),
    ("#.#", "a.b.c", True),
    ("#.a.#", "a", True),
    ("#.a.#", "b.a.b", True),
    ("#.a.#", "b.b", False),
    ("#.*", "", False),
    ("#.*.#", "a.b", True),
])
def test_hash_matches_zero_or_more_words(pattern, key, expected):
    assert topic_matches(pattern, key) is expected


@pytest.mark.parametrize(("pattern", "key", "expected"), [
    ("", "", True),
    ("", "a", False),
    ("a..b", "a..b", True),
    ("a..b", "a.b", False),
    ("a.*.b", "a..b", True),
    (".", ".", True),
    (".", "", False),
    ("a.", "a.", True),
    ("a.", "a", False),
    ("a.#", "a.", True),
    ("*.*", ".", True),
])
def test_empty_words_are_words(pattern, key, expected):
    assert topic_matches(pattern, key) is expected


def test_trie_matches_every_destination_of_every_matching_pattern():
    trie = TopicTrie()
    trie.add("a.*", 1)
    trie.add("a.#", 2)
    trie.add("#", 3)
    trie.add("b.*", 4)
    trie.add("a.b", 5)
    trie.add("a.b", 6)
    assert trie.match("a.b") == {1, 2, 3, 5, 6}
    assert trie.match("a") == {2, 3}
    assert trie.match("c") == {3}


def test_trie_add_is_idempotent_and_counts_pairs():
    trie = TopicTrie()
    assert trie.add("a.b", "x") is True
    assert trie.add("a.b", "x") is False
    assert trie.add("a.b", "y") is True
    assert len(trie) == 2


def test_trie_remove_unknown_returns_false_and_keeps_others():
    trie = TopicTrie()
    trie.add("a.b", "x")
    assert trie.remove("a.b", "y") is False
    assert trie.remove("a.c", "x") is False
    assert trie.remove("a.b.c", "x") is False
    assert trie.match("a.b") == {"x"} and len(trie) == 1


def test_trie_remove_prunes_empty_nodes():
    trie = TopicTrie()
    trie.add("a.b.c", "x")
    trie.add("a.#", "y")
    assert trie.remove("a.b.c", "x") is True
    assert set(trie._root.children) == {"a"}
    assert set(trie._root.children["a"].children) == {"#"}
    assert trie.remove("a.#", "y") is True
    assert trie._root.children == {}
    assert len(trie) == 0
    assert trie.match("a.b.c") == set()


def test_trie_remove_keeps_nodes_that_still_hold_destinations_or_children():
    trie = TopicTrie()
    trie.add("a", "x")
    trie.add("a.b", "y")
    trie.remove("a.b", "y")
    assert trie.match("a") == {"x"}
    trie.add("a.b", "y")
    trie.remove("a", "x")
    assert trie.match("a.b") == {"y"}
    assert trie.match("a") == set()


def test_trie_many_hashes_stay_fast():
    trie = TopicTrie()
    trie.add(".".join(["#"] * 12) + ".z", "d")
    key = ".".join(["a"] * 40)
    assert trie.match(key) == set()
    assert trie.match(key + ".z") == {"d"}


PATTERN_WORDS = st.sampled_from(["", "a", "b", "*", "#"])
KEY_WORDS = st.sampled_from(["", "a", "b"])
PATTERNS = st.lists(PATTERN_WORDS, min_size=1, max_size=6).map(".".join)
KEYS = st.lists(KEY_WORDS, min_size=1, max_size=6).map(".".join)


@settings(max_examples=300, deadline=None)
@given(patterns=st.lists(PATTERNS, min_size=1, max_size=6), keys=st.lists(KEYS, min_size=1, max_size=6))
def test_trie_match_agrees_with_reference_matcher(patterns, keys):
    trie = TopicTrie()
    for i, p in enumerate(patterns):
        trie.add(p, i)
    for key in keys:
        expected = {i for i, p in enumerate(patterns) if ref_match(split_words(p), split_words(key))}
        assert trie.match(key) == expected, (patterns, key)


OPS = st.lists(st.tuples(st.booleans(), PATTERNS, st.integers(0, 2)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(ops=OPS, keys=st.lists(KEYS, min_size=1, max_size=5))
def test_trie_add_remove_agree_with_set_model(ops, keys):
    trie = TopicTrie()
    model: set[tuple[str, int]] = set()
    for add, pattern, dest in ops:
        pair = (pattern, dest)
        if add:
            assert trie.add(pattern, dest) is (pair not in model)
            model.add(pair)
        else:
            assert trie.remove(pattern, dest) is (pair in model)
            model.discard(pair)
        assert len(trie) == len(model)
    for key in keys:
        expected = {d for p, d in model if ref_match(split_words(p), split_words(key))}
        assert trie.match(key) == expected
    for pattern, dest in list(model):
        trie.remove(pattern, dest)
    assert trie._root.children == {} and len(trie) == 0


# --- direct / fanout / topic exchanges -------------------------------------------------------------


def test_direct_routes_on_exact_key_only():
    e = ex("d", "direct")
    e.bind(to_q("d", "q1", "k"))
    e.bind(to_q("d", "q2", "k"))
    e.bind(to_q("d", "q3", "other"))
    assert [b.destination for b in e.route("k", None)] == ["q1", "q2"]
    assert e.route("K", None) == []
    assert e.route("k.x", None) == []


def test_direct_unbind_removes_only_that_binding():
    e = ex("d", "direct")
    b1, b2 = to_q("d", "q1", "k"), to_q("d", "q2", "k")
    e.bind(b1)
    e.bind(b2)
    assert e.bind(b1) is False
    assert e.unbind(b1) is True
    assert e.unbind(b1) is False
    assert e.route("k", None) == [b2]
    e.unbind(b2)
    assert e.route("k", None) == [] and not e.has_bindings()


def test_fanout_routes_to_every_binding_regardless_of_key():
    e = ex("f", "fanout")
    e.bind(to_q("f", "q1", "x"))
    e.bind(to_q("f", "q2", ""))
    assert {b.destination for b in e.route("anything", None)} == {"q1", "q2"}
    assert {b.destination for b in e.route("", {"h": 1})} == {"q1", "q2"}


def test_topic_exchange_routes_by_pattern_in_binding_order():
    e = ex("t", "topic")
    e.bind(to_q("t", "q1", "stock.#"))
    e.bind(to_q("t", "q2", "*.usd"))
    e.bind(to_q("t", "q3", "fx.eur"))
    assert [b.destination for b in e.route("stock.usd", None)] == ["q1", "q2"]
    assert [b.destination for b in e.route("fx.eur", None)] == ["q3"]
    e.unbind(to_q("t", "q1", "stock.#"))
    assert [b.destination for b in e.route("stock.usd", None)] == ["q2"]


def test_make_exchange_unknown_type_is_command_invalid():
    with pytest.raises(CommandInvalid, match="unknown exchange type 'nope'"):
        make_exchange("x", "nope", False, False, False, {})


def test_delayed_exchange_needs_a_valid_inner_type():
    with pytest.raises(PreconditionFailed, match="x-delayed-type"):
        ex("dl", "x-delayed-message")
    with pytest.raises(PreconditionFailed):
        ex("dl", "x-delayed-message", **{"x-delayed-type": "x-delayed-message"})
    e = ex("dl", "x-delayed-message", **{"x-delayed-type": b"topic"})
    e.bind(to_q("dl", "q", "a.#"))
    assert [b.destination for b in e.route("a.b", None)] == ["q"]


# --- headers exchange ----------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "headers", "expected"), [
    ({"x-match": "all", "a": 1, "b": "x"}, {"a": 1, "b": "x"}, True),
    ({"x-match": "all", "a": 1, "b": "x"}, {"a": 1, "b": "x", "c": 3}, True),
    ({"x-match": "all", "a": 1, "b": "x"}, {"a": 1}, False),
    ({"x-match": "all", "a": 1, "b": "x"}, {"a": 1, "b": "y"}, False),
    ({"a": 1}, {"a": 1}, True),  # all is the default
    ({"a": 1, "b": 2}, {"a": 1}, False),
    ({"x-match": "all"}, {}, True),  # nothing wanted: all of nothing
    ({"x-match": "any", "a": 1, "b": 2}, {"b": 2}, True),
    ({"x-match": "any", "a": 1, "b": 2}, {"a": 2, "b": 1}, False),
    ({"x-match": "any", "a": 1}, {}, False),
    ({"x-match": "any"}, {"a": 1}, False),  # any of nothing
    ({"x-match": b"any", "a": 1}, {"a": 1}, True),
])
def test_headers_all_and_any(args, headers, expected):
    assert headers_match(args, headers) is expected


@pytest.mark.parametrize(("args", "headers", "expected"), [
    ({"x-match": "all", "x-tenant": "t1", "a": 1}, {"a": 1}, True),
    ({"x-match": "all", "x-tenant": "t1", "a": 1}, {"a": 1, "x-tenant": "t2"}, True),
    ({"x-match": "any", "x-tenant": "t1"}, {"x-tenant": "t1"}, False),
    ({"x-match": "all-with-x", "x-tenant": "t1", "a": 1}, {"a": 1}, False),
    ({"x-match": "all-with-x", "x-tenant": "t1", "a": 1}, {"a": 1, "x-tenant": "t1"}, True),
    ({"x-match": "any-with-x", "x-tenant": "t1", "a": 1}, {"x-tenant": "t1"}, True),
    ({"x-match": "any-with-x", "x-tenant": "t1", "a": 1}, {"x-tenant": "t2", "a": 2}, False),
])
def test_headers_x_keys_ignored_unless_with_x(args, headers, expected):
    assert headers_match(args, headers) is expected


@pytest.mark.parametrize(("args", "headers", "expected"), [
    ({"a": None}, {"a": 1}, True),
    ({"a": None}, {"a": None}, True),
    ({"a": None}, {"b": 1}, False),
    ({"x-match": "any", "a": None, "b": 1}, {"a": "whatever"}, True),
])
def test_headers_none_binding_value_matches_on_presence(args, headers, expected):
    assert headers_match(args, headers) is expected


@pytest.mark.parametrize(("bound", "sent", "expected"), [
    (1, 1, True),
    (1, 1.0, True),  # Erlang compares values with ==, as RabbitMQ 3.10 does
    (1, True, False),
    (True, 1, False),
    ("1", 1, False),
    ("a", b"a", True),
    (b"a", b"a", True),
])
def test_headers_equality_follows_erlang_value_comparison(bound, sent, expected):
    assert headers_match({"k": bound}, {"k": sent}) is expected


def test_headers_exchange_routes_matching_bindings():
    e = ex("h", "headers")
    e.bind(to_q("h", "all", "", **{"x-match": "all", "fmt": "pdf", "type": "report"}))
    e.bind(to_q("h", "any", "", **{"x-match": "any", "fmt": "pdf", "type": "log"}))
    assert [b.destination for b in e.route("", {"fmt": "pdf", "type": "report"})] == ["all", "any"]
    assert [b.destination for b in e.route("", {"type": "log"})] == ["any"]
    assert e.route("ignored", None) == []


@pytest.mark.parametrize("mode", ["some", "ALL", "", b"none"])
def test_headers_invalid_x_match_is_rejected(mode):
    e = ex("h", "headers")
    with pytest.raises(PreconditionFailed, match="Invalid x-match field"):
        e.bind(to_q("h", "q", "", **{"x-match": mode}))
    assert not e.has_bindings()


# --- resolve: exchange-to-exchange, cycles, alternates, explain -------------------------------------


def test_resolve_follows_exchange_to_exchange_chain():
    xs = Exchanges(ex("a", "direct"), ex("b", "topic"), ex("c", "fanout"))
    xs.bind(to_ex("a", "b", "k.x"))
    xs.bind(to_ex("b", "c", "k.*"))
    xs.bind(to_q("b", "qb", "#"))
    xs.bind(to_q("c", "qc"))
    assert xs.resolve("a", "k.x").queues == ["qc", "qb"]
    assert xs.resolve("a", "k.y").queues == []


def test_resolve_delivers_to_each_queue_once_via_many_paths():
    xs = Exchanges(ex("a", "fanout"), ex("b", "fanout"), ex("c", "fanout"))
    xs.bind(to_q("a", "q"))
    xs.bind(to_ex("a", "b"))
    xs.bind(to_ex("a", "c"))
    xs.bind(to_q("b", "q"))
    xs.bind(to_q("c", "q"))
    xs.bind(to_q("c", "q2"))
    assert xs.resolve("a").queues == ["q", "q2"]


def test_resolve_survives_exchange_cycles():
    xs = Exchanges(ex("a", "fanout"), ex("b", "fanout"), ex("c", "fanout"))
    xs.bind(to_ex("a", "b"))
    xs.bind(to_ex("b", "c"))
    xs.bind(to_ex("c", "a"))
    xs.bind(to_ex("a", "a"))
    xs.bind(to_q("b", "qb"))
    xs.bind(to_q("c", "qc"))
    for start in "abc":
        route = xs.resolve(start)
        assert sorted(route.queues) == ["qb", "qc"]
        assert len(route.queues) == len(set(route.queues))


def test_resolve_ignores_bindings_to_missing_exchanges():
    xs = Exchanges(ex("a", "fanout"))
    xs.bind(to_ex("a", "gone"))
    xs.bind(to_q("a", "q"))
    assert xs.resolve("a").queues == ["q"]


def test_alternate_exchange_used_only_when_nothing_matched():
    xs = Exchanges(ex("main", "direct", **{"alternate-exchange": "ae"}), ex("ae", "fanout"))
    xs.bind(to_q("main", "q", "k"))
    xs.bind(to_q("ae", "unrouted"))
    hit = xs.resolve("main", "k", explain=True)
    assert hit.queues == ["q"] and hit.via_alternate == []
    miss = xs.resolve("main", "other", explain=True)
    assert miss.queues == ["unrouted"] and miss.via_alternate == ["ae"]


def test_alternate_exchange_chain_and_cycle_terminate():
    xs = Exchanges(
        ex("a", "direct", **{"alternate-exchange": "b"}),
        ex("b", "direct", **{"alternate-exchange": "a"}),
    )
    route = xs.resolve("a", "k", explain=True)
    assert route.queues == [] and route.via_alternate == ["b"]
    xs.bind(to_q("b", "qb", "k"))
    assert xs.resolve("a", "k").queues == ["qb"]


def test_missing_alternate_exchange_routes_nowhere():
    xs = Exchanges(ex("a", "direct", **{"alternate-exchange": "missing"}))
    route = xs.resolve("a", "k", explain=True)
    assert route.queues == [] and route.via_alternate == []


def test_alternate_of_downstream_exchange_is_used_when_it_matches_nothing():
    xs = Exchanges(ex("a", "fanout"), ex("b", "direct", **{"alternate-exchange": "ae"}), ex("ae", "fanout"))
    xs.bind(to_ex("a", "b"))
    xs.bind(to_q("ae", "qa"))
    route = xs.resolve("a", "k", explain=True)
    assert route.queues == ["qa"] and route.via_alternate == ["ae"]


def test_explain_trace_lists_every_matched_binding():
    xs = Exchanges(ex("a", "topic"), ex("b", "fanout"))
    b1 = to_q("a", "q1", "x.*")
    b2 = to_ex("a", "b", "#")
    b3 = to_q("b", "q2")
    b4 = to_q("a", "q3", "y")
    for b in (b1, b2, b3, b4):
        xs.bind(b)
    route = xs.resolve("a", "x.z", explain=True)
    assert route.queues == ["q1", "q2"]
    assert route.trace == [b1, b2, b3]


def test_explain_on_single_queue_fast_path_still_fills_trace():
    xs = Exchanges(ex("a", "direct"))
    b = to_q("a", "q", "k")
    xs.bind(b)
    assert xs.resolve("a", "k").queues == ["q"]
    explained = xs.resolve("a", "k", explain=True)
    assert explained.queues == ["q"] and explained.trace == [b]


# --- equivalence ---------------------------------------------------------------------------------


def test_equivalent_accepts_identical_redeclare():
    e = make_exchange("e", "topic", True, False, False, {"alternate-exchange": "ae"})
    equivalent(e, "topic", True, False, False, {"alternate-exchange": b"ae"}, "/")


@pytest.mark.parametrize(("type_", "durable", "auto_delete", "internal", "args", "what"), [
    ("direct", True, False, False, {}, "type"),
    ("topic", False, False, False, {}, "durable"),
    ("topic", True, True, False, {}, "auto_delete"),
    ("topic", True, False, True, {}, "internal"),
    ("topic", True, False, False, {"alternate-exchange": "other"}, "alternate-exchange"),
])
def test_equivalent_mismatch_is_precondition_failed(type_, durable, auto_delete, internal, args, what):
    e = make_exchange("e", "topic", True, False, False, {})
    with pytest.raises(PreconditionFailed, match=f"inequivalent arg '{what}' for exchange 'e' in vhost '/'"):
        equivalent(e, type_, durable, auto_delete, internal, args, "/")


def test_vhost_redeclare_with_other_type_fails_and_unknown_type_is_command_invalid():
    broker, _ = new_broker()
    vh = broker.vhosts["/"]
    vh.declare_exchange("e", "fanout", durable=True)
    with pytest.raises(PreconditionFailed, match="received 'direct' but current is 'fanout'"):
        vh.declare_exchange("e", "direct", durable=True)
    with pytest.raises(PreconditionFailed, match="durable"):
        vh.declare_exchange("e", "fanout", durable=False)
    with pytest.raises(CommandInvalid):
        vh.declare_exchange("f", "bogus")
    assert "f" not in vh.exchanges
    with pytest.raises(AccessRefused):
        vh.declare_exchange("amq.mine", "direct")


# --- x-delayed-message through the vhost -----------------------------------------------------------


def delayed_setup(inner: str = "direct"):
    broker, clock = new_broker()
    vh = broker.vhosts["/"]
    vh.declare_exchange("delayed", "x-delayed-message", arguments={"x-delayed-type": inner})
    vh.declare_queue("q", connection=None)
    vh.bind("q", "delayed", "k", None, to_exchange=False, connection=None)
    return broker, clock, vh, open_channel(broker)


def bodies(vh, queue: str = "q") -> list[bytes]:
    return [e.msg.body for e in vh.queues[queue].ready_entries()]


def test_delayed_message_is_held_until_clock_passes_delay_and_tick_runs():
    broker, clock, vh, ch = delayed_setup()
    publish(ch, "later", "k", "delayed", headers={"x-delay": 1000})
    assert bodies(vh) == []
    assert broker.next_deadline_ms() == clock.monotonic_ms() + 1000
    clock.advance(999)
    broker.tick()
    assert bodies(vh) == []
    clock.advance(1)
    assert bodies(vh) == []  # time alone does nothing: the tick routes
    broker.tick()
    assert bodies(vh) == [b"later"]
    assert len(vh.delayed) == 0 and broker.next_deadline_ms() is None


def test_delayed_messages_come_out_in_due_order():
    broker, clock, vh, ch = delayed_setup()
    publish(ch, "slow", "k", "delayed", headers={"x-delay": 300})
    publish(ch, "fast", "k", "delayed", headers={"x-delay": 100})
    publish(ch, "tie", "k", "delayed", headers={"x-delay": 300})
    clock.advance(300)
    broker.tick()
    assert bodies(vh) == [b"fast", b"slow", b"tie"]


@pytest.mark.parametrize("headers", [None, {}, {"x-delay": 0}, {"x-delay": -5}, {"x-delay": True}])
def test_delayed_exchange_without_positive_int_delay_routes_now(headers):
    _, _, vh, ch = delayed_setup()
    publish(ch, "now", "k", "delayed", headers=headers)
    assert bodies(vh) == [b"now"]


def test_delayed_message_still_routes_with_inner_type_after_delay():
    broker, clock, vh, ch = delayed_setup("direct")
    publish(ch, "miss", "other", "delayed", headers={"x-delay": 10})
    clock.advance(10)
    broker.tick()
    assert bodies(vh) == []


def test_delayed_message_to_deleted_exchange_is_dropped_on_tick():
    broker, clock, vh, ch = delayed_setup()
    publish(ch, "m", "k", "delayed", headers={"x-delay": 10})
    vh.delete_exchange("delayed")
    clock.advance(10)
    broker.tick()
    assert bodies(vh) == [] and len(vh.delayed) == 0


def test_delay_ms_reads_delays_as_the_plugin_does():
    assert delay_ms(None) == 0
    assert delay_ms({"x-delay": 250}) == 250
    assert delay_ms({"x-delay": -1}) == 0
    assert delay_ms({"x-delay": 2.5}) == 2  # the v3.10 plugin truncates floats
    assert delay_ms({"x-delay": False}) == 0


# --- routing through the vhost -------------------------------------------------------------------


def test_vhost_publish_through_e2e_binding_and_alternate():
    broker, _ = new_broker()
    vh = broker.vhosts["/"]
    ch = open_channel(broker)
    vh.declare_exchange("ae", "fanout")
    vh.declare_exchange("src", "topic", arguments={"alternate-exchange": "ae"})
    vh.declare_exchange("mid", "direct")
    for q in ("q", "lost"):
        vh.declare_queue(q, connection=None)
    vh.bind("mid", "src", "a.#", None, to_exchange=True, connection=None)
    vh.bind("q", "mid", "a.b", None, to_exchange=False, connection=None)
    vh.bind("lost", "ae", "", None, to_exchange=False, connection=None)
    publish(ch, "hit", "a.b", "src")
    publish(ch, "nomatch", "z", "src")
    assert bodies(vh, "q") == [b"hit"]
    assert bodies(vh, "lost") == [b"nomatch"]
