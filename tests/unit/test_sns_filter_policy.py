"""The SNS filter-policy evaluator against AWS's documented examples, and against small reference
models (hypothesis) for exact matching, anything-but and numeric ranges."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferrymq.protocols.aws.attributes import Attribute
from ferrymq.protocols.sns.filter_policy import (
    ATTRIBUTES,
    BODY,
    PolicyError,
    attribute_document,
    body_document,
    matches,
    parse,
)


def _attrs(**values: Any) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        if isinstance(value, list):
            out[name] = Attribute("String.Array", json.dumps(value))
        elif isinstance(value, int | float):
            out[name] = Attribute("Number", str(value))
        elif isinstance(value, bytes):
            out[name] = Attribute("Binary", value)
        else:
            out[name] = Attribute("String", value)
    return attribute_document(out)


def _ok(policy: dict[str, Any], scope: str = ATTRIBUTES, **values: Any) -> bool:
    return matches(parse(json.dumps(policy), scope), _attrs(**values))


def test_exact_strings_and_numbers_match_by_type() -> None:
    assert _ok({"store": ["example_corp"]}, store="example_corp")
    assert not _ok({"store": ["example_corp"]}, store="other")
    assert _ok({"price": [100]}, price=100.0)
    assert not _ok({"price": ["100"]}, price=100)  # a Number attribute is not the string "100"
    assert not _ok({"price": [100]}, price="100")  # nor a String attribute the number 100


def test_prefix_suffix_and_equals_ignore_case() -> None:
    assert _ok({"event": [{"prefix": "order-"}]}, event="order-placed")
    assert not _ok({"event": [{"prefix": "order-"}]}, event="refund-order-")
    assert _ok({"file": [{"suffix": ".png"}]}, file="cat.png")
    assert _ok({"name": [{"equals-ignore-case": "ALICE"}]}, name="aLiCe")


def test_anything_but_values_prefixes_and_suffixes() -> None:
    assert _ok({"colour": [{"anything-but": ["red", "blue"]}]}, colour="green")
    assert not _ok({"colour": [{"anything-but": ["red", "blue"]}]}, colour="red")
    assert not _ok({"colour": [{"anything-but": "red"}]})  # absent is not "anything but"
    assert _ok({"n": [{"anything-but": [100, 200]}]}, n=150)
    assert not _ok({"event": [{"anything-but": {"prefix": "order-"}}]}, event="order-x")
    assert _ok({"file": [{"anything-but": {"suffix": ".tmp"}}]}, file="a.txt")


def test_numeric_ranges_and_equality() -> None:
    policy = {"price": [{"numeric": [">", 0, "<=", 150]}]}
    assert _ok(policy, price=150) and _ok(policy, price=0.5)
    assert not _ok(policy, price=0) and not _ok(policy, price=150.01)
    assert _ok({"price": [{"numeric": ["=", 3.5]}]}, price=3.5)
    assert not _ok(policy, price="100")  # strings are never numeric


def test_exists_and_absent_keys() -> None:
    assert _ok({"store": [{"exists": True}]}, store="x")
    assert not _ok({"store": [{"exists": True}]})
    assert _ok({"store": [{"exists": False}]}, other="x")
    assert not _ok({"store": [{"exists": False}]}, store="x")
    assert not _ok({"blob": [{"exists": True}]}, blob=b"\x00")  # Binary attributes are not matched


def test_string_arrays_match_when_one_element_does() -> None:
    assert _ok({"tags": ["b"]}, tags=["a", "b"])
    assert not _ok({"tags": ["c"]}, tags=["a", "b"])
    assert _ok({"tags": [{"prefix": "x"}]}, tags=["a", "xy"])


def test_every_key_must_match_and_or_joins_alternatives() -> None:
    policy = {"a": ["1"], "b": ["2"]}
    assert _ok(policy, a="1", b="2") and not _ok(policy, a="1", b="3")
    either = {"kind": ["x"], "$or": [{"size": [{"numeric": [">", 10]}]}, {"colour": ["red"]}]}
    assert _ok(either, kind="x", size=11) and _ok(either, kind="x", colour="red")
    assert not _ok(either, kind="x", size=5, colour="blue") and not _ok(either, kind="y", colour="red")


def test_cidr_matches_addresses_in_the_network() -> None:
    assert _ok({"ip": [{"cidr": "10.0.0.0/24"}]}, ip="10.0.0.7")
    assert not _ok({"ip": [{"cidr": "10.0.0.0/24"}]}, ip="10.0.1.7")


def test_body_scope_matches_nested_fields_arrays_and_null() -> None:
    policy = parse(json.dumps({"order": {"status": ["paid"], "items": {"sku": [{"prefix": "A"}]}},
                               "note": [None]}), BODY)
    good = {"order": {"status": "paid", "items": [{"sku": "B1"}, {"sku": "A7"}]}, "note": None}
    assert matches(policy, body_document(json.dumps(good)))
    bad = {"order": {"status": "paid", "items": [{"sku": "B1"}]}, "note": None}
    assert not matches(policy, body_document(json.dumps(bad)))
    assert not matches(policy, body_document("plain text, not JSON"))
    assert matches(parse('{"a": [{"exists": false}]}', BODY), body_document('{"b": 1}'))
    assert matches(parse('{"on": [true]}', BODY), body_document('{"on": true}'))
    assert not matches(parse('{"on": [true]}', BODY), body_document('{"on": 1}'))


@pytest.mark.parametrize("text, scope", [
    ('{"a": "x"}', ATTRIBUTES), ('{"a": []}', ATTRIBUTES), ('{"a": [{"prefix": 1}]}', ATTRIBUTES),
    ('{"a": [{"nope": "x"}]}', ATTRIBUTES), ('{"a": [{"numeric": ["<", 5, ">", 1]}]}', ATTRIBUTES),
    ('{"a": [{"numeric": [">", 5, "<", 1]}]}', ATTRIBUTES), ('{"a": [{"exists": "yes"}]}', ATTRIBUTES),
    ('{"a": {"b": ["c"]}}', ATTRIBUTES), ('{"a": [null]}', ATTRIBUTES), ('{"$or": [{"a": ["b"]}]}', BODY),
    ('{"a": [{"anything-but": ["x", 1]}]}', ATTRIBUTES), ('[]', ATTRIBUTES),
    (json.dumps({k: ["v"] for k in "abcdef"}), ATTRIBUTES),
    (json.dumps({k: list(range(6)) for k in "abc"}), ATTRIBUTES),
])
def test_policies_aws_refuses_are_refused(text: str, scope: str) -> None:
    with pytest.raises(PolicyError):
        parse(text, scope)


_words = st.sampled_from(["a", "b", "c", "ab", "ba"])
_keys = st.sampled_from(["k1", "k2", "k3"])


@given(st.dictionaries(_keys, st.lists(_words, min_size=1, max_size=3), min_size=1, max_size=3),
       st.dictionaries(_keys, _words))
def test_exact_policies_match_as_the_reference_model_says(policy: dict[str, list[str]],
                                                          attrs: dict[str, str]) -> None:
    expected = all(key in attrs and attrs[key] in allowed for key, allowed in policy.items())
    assert _ok(policy, **attrs) == expected


@given(st.lists(_words, min_size=1, max_size=3), st.one_of(st.none(), _words))
def test_anything_but_is_present_and_not_listed(refused: list[str], value: str | None) -> None:
    values = {} if value is None else {"k": value}
    assert _ok({"k": [{"anything-but": refused}]}, **values) == (value is not None and value not in refused)


_bounds = st.integers(-1000, 1000)


@given(_bounds, _bounds, st.sampled_from([">", ">="]), st.sampled_from(["<", "<="]),
       st.integers(-1200, 1200))
def test_numeric_ranges_match_as_comparisons_do(low: int, high: int, low_op: str, high_op: str,
                                                value: int) -> None:
    if low >= high:
        return
    above = value > low if low_op == ">" else value >= low
    below = value < high if high_op == "<" else value <= high
    assert _ok({"n": [{"numeric": [low_op, low, high_op, high]}]}, n=value) == (above and below)
