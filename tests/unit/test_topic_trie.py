"""TopicTrie: RabbitMQ's topic matching, checked against an independent reference matcher and a
fingerprint of what RabbitMQ 3.10.8 itself routed."""

from __future__ import annotations

import hashlib
import itertools
import json
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferrymq.core.exchange.trie import TopicTrie, split_words


def reference_match(pattern: str, key: str) -> bool:
    """Pattern-driven backtracking over word lists: slow, obviously right, independent of the trie."""
    p, k = split_words(pattern), split_words(key)

    @cache
    def go(i: int, j: int) -> bool:
        if i == len(p):
            return j == len(k)
        if p[i] == "#":
            return any(go(i + 1, jj) for jj in range(j, len(k) + 1))
        return j < len(k) and p[i] in ("*", k[j]) and go(i + 1, j + 1)

    return go(0, 0)


def trie_of(*patterns: str) -> TopicTrie:
    trie = TopicTrie()
    for pattern in patterns:
        trie.add(pattern, pattern)
    return trie


def matches(pattern: str, key: str) -> bool:
    return bool(trie_of(pattern).match(key))


# --- words ----------------------------------------------------------------------------------


def test_empty_key_has_no_words() -> None:
    assert split_words("") == []
    assert split_words(".") == ["", ""]
    assert split_words("a..b") == ["a", "", "b"]


def test_star_matches_exactly_one_word() -> None:
    assert matches("a.*", "a.b")
    assert not matches("a.*", "a")
    assert not matches("a.*", "a.b.c")


def test_star_matches_an_empty_word_but_not_the_empty_key() -> None:
    assert matches("*", ".") is False  # "." is two empty words
    assert matches("*.*", ".")
    assert matches("a.*", "a.")
    assert not matches("*", "")


def test_hash_matches_everything_including_the_empty_key() -> None:
    for key in ("", "a", "a.b.c", ".", "a..b"):
        assert matches("#", key)


def test_empty_pattern_matches_only_the_empty_key() -> None:
    assert matches("", "")
    assert not matches("", ".")
    assert not matches("", "a")


def test_hash_in_middle_matches_zero_words() -> None:
    assert matches("a.#.b", "a.b")


def test_hash_in_middle_matches_one_or_more_words() -> None:
    assert matches("a.#.b", "a.x.b")
    assert matches("a.#.b", "a.x.y.b")
    assert not matches("a.#.b", "a.x.y.c")


def test_trailing_hash_matches_zero_words() -> None:
    assert matches("a.#", "a")
    assert matches("a.#", "a.b.c")
    assert not matches("a.#", "b")


def test_star_hash_needs_at_least_one_word() -> None:
    assert matches("*.#", "a")
    assert not matches("*.#", "")


def test_empty_words_are_words() -> None:
    assert matches("a..b", "a..b")
    assert not matches("a..b", "a.b")
    assert matches("a.*.b", "a..b")


def test_wildcards_in_a_routing_key_are_plain_words() -> None:
    assert not matches("a", "*")
    assert matches("*", "#")
    assert matches("#", "*")


# --- add / remove / len -------------------------------------------------------------------------


def test_add_twice_returns_false() -> None:
    trie = TopicTrie()
    assert trie.add("a.*", 1)
    assert not trie.add("a.*", 1)
    assert trie.add("a.*", 2)
    assert len(trie) == 2


def test_remove_returns_whether_it_was_there() -> None:
    trie = TopicTrie()
    trie.add("a.#.b", 1)
    assert not trie.remove("a.#.b", 2)
    assert not trie.remove("a.#", 1)
    assert not trie.remove("x.y", 1)
    assert trie.remove("a.#.b", 1)
    assert not trie.remove("a.#.b", 1)
    assert len(trie) == 0
    assert trie.match("a.b") == set()


def test_remove_keeps_patterns_sharing_a_prefix() -> None:
    trie = trie_of("a.b", "a.b.c", "a")
    trie.remove("a.b", "a.b")
    assert trie.match("a.b.c") == {"a.b.c"}
    assert trie.match("a") == {"a"}
    assert trie.match("a.b") == set()


def test_empty_pattern_can_be_removed() -> None:
    trie = trie_of("")
    assert trie.remove("", "")
    assert trie.match("") == set()


def test_destination_reached_by_several_patterns_is_returned_once() -> None:
    trie = TopicTrie()
    for pattern in ("#", "a.#", "*.b", "a.b", "#.#"):
        trie.add(pattern, "q")
    assert trie.match("a.b") == {"q"}


@pytest.mark.timeout(10)
def test_many_hashes_stay_polynomial_on_long_keys() -> None:
    trie = trie_of("#." * 30 + "z", ".".join(["#"] * 30))
    key = ".".join(["w"] * 250)
    assert trie.match(key) == {".".join(["#"] * 30)}
    assert trie.match(key + ".z") == {"#." * 30 + "z", ".".join(["#"] * 30)}


# --- against RabbitMQ and the reference ---------------------------------------------------------


def _all_joins(words: list[str], max_words: int) -> list[str]:
    out = {".".join(c) for n in range(max_words + 1) for c in itertools.product(words, repeat=n)}
    return sorted(out)


# Every pattern and key of up to three words over {a, b, "", *, #}, bound to a topic exchange on
# RabbitMQ 3.10.8: it routed 3550 (pattern, key) pairs, whose sorted JSON list hashes to this.
RABBITMQ_PAIRS = 3550
RABBITMQ_SHA256 = "44a13715a3634556d987078643b611c76b010a73d871c71221147d932158c754"


def test_agrees_with_what_rabbitmq_routed() -> None:
    patterns = keys = _all_joins(["a", "b", "", "*", "#"], 3)
    trie = trie_of(*patterns)
    pairs = sorted((p, k) for k in keys for p in trie.match(k))
    assert len(pairs) == RABBITMQ_PAIRS
    assert hashlib.sha256(json.dumps(pairs).encode()).hexdigest() == RABBITMQ_SHA256


def test_reference_matcher_agrees_with_what_rabbitmq_routed() -> None:
    patterns = keys = _all_joins(["a", "b", "", "*", "#"], 3)
    pairs = sorted((p, k) for k in keys for p in patterns if reference_match(p, k))
    assert hashlib.sha256(json.dumps(pairs).encode()).hexdigest() == RABBITMQ_SHA256


WORDS = st.sampled_from(["a", "b", "", "*", "#"])
TOPICS = st.lists(WORDS, max_size=7).map(".".join)


@settings(max_examples=400, deadline=None)
@given(patterns=st.lists(TOPICS, max_size=8), keys=st.lists(TOPICS, min_size=1, max_size=6))
def test_trie_agrees_with_reference(patterns: list[str], keys: list[str]) -> None:
    trie = TopicTrie()
    for i, pattern in enumerate(patterns):
        trie.add(pattern, i)
    for key in keys:
        want = {i for i, pattern in enumerate(patterns) if reference_match(pattern, key)}
        assert trie.match(key) == want


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.tuples(st.booleans(), TOPICS, st.integers(0, 3)), max_size=30), key=TOPICS)
def test_add_and_remove_track_a_model(ops: list[tuple[bool, str, int]], key: str) -> None:
    trie, model = TopicTrie(), set()
    for adding, pattern, dest in ops:
        if adding:
            assert trie.add(pattern, dest) == ((pattern, dest) not in model)
            model.add((pattern, dest))
        else:
            assert trie.remove(pattern, dest) == ((pattern, dest) in model)
            model.discard((pattern, dest))
    assert len(trie) == len(model)
    assert trie.match(key) == {d for p, d in model if reference_match(p, key)}
