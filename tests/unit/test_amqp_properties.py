"""Basic properties and field tables: our codec against pamqp's, both ways, with hypothesis."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import commands as c
from pamqp import encode as pencode
from pamqp import header as pheader

from ferrymq import limits
from ferrymq.core.properties import EMPTY_PROPERTIES, Long, Properties
from ferrymq.errors import SyntaxError_
from ferrymq.protocols.amqp.properties import (
    EMPTY_RAW_PROPERTIES,
    decode_properties,
    encode_properties,
    intern_properties,
)
from ferrymq.protocols.amqp.tables import TableError, decode_table, encode_table

short = st.text(max_size=60).filter(lambda s: len(s.encode()) <= 255)
keys = st.text(min_size=1, max_size=20)
octet = st.integers(0, 255)
# Values both codecs carry without loss. pamqp writes Python floats as 32-bit, so only floats a
# float32 holds; it reads timestamps above 2**32 as milliseconds, and decimal mantissas unsigned.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), short,
    st.floats(width=32, allow_nan=False),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1),
                 timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0)),
    st.builds(lambda m, s: Decimal(m).scaleb(-s), st.integers(0, 2**31 - 1), st.integers(0, 9)),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)), max_leaves=12)
tables = st.dictionaries(keys, values, max_size=6)

properties = st.builds(
    Properties,
    content_type=st.none() | short, content_encoding=st.none() | short,
    headers=st.none() | tables, delivery_mode=st.none() | octet, priority=st.none() | octet,
    correlation_id=st.none() | short, reply_to=st.none() | short,
    expiration=st.none() | short, message_id=st.none() | short,
    timestamp=st.none() | st.integers(0, 2**32 - 1), type=st.none() | short,
    user_id=st.none() | short, app_id=st.none() | short, cluster_id=st.none() | short,
)


def _pamqp_can_say(props: Properties) -> Properties:
    """What pamqp accepts: delivery mode 1 or 2, no cluster id, and "" means absent to it."""
    changes: dict[str, Any] = {attr: None for attr in props.__slots__
                               if getattr(props, attr) == ""}
    changes["cluster_id"] = None
    changes["delivery_mode"] = None if props.delivery_mode is None else 1 + props.delivery_mode % 2
    return props.with_changes(**changes)


pamqp_properties = properties.map(_pamqp_can_say)
_NAMES = {"type": "message_type"}  # pamqp's attribute names where they differ from ours


def _pamqp_decode(raw: bytes) -> c.Basic.Properties:
    head = pheader.ContentHeader()
    head.unmarshal(struct.pack(">HHQ", 60, 0, 0) + raw)
    return head.properties


def _pamqp_props(props: Properties) -> c.Basic.Properties:
    kwargs = {_NAMES.get(attr, attr): getattr(props, attr) for attr in props.__slots__
              if attr != "cluster_id"}
    if props.timestamp is not None:
        kwargs["timestamp"] = datetime.fromtimestamp(props.timestamp, tz=UTC)
    return c.Basic.Properties(**kwargs)


def _same(ours: Properties, theirs: c.Basic.Properties) -> None:
    for attr in ours.__slots__:
        mine, other = getattr(ours, attr), getattr(theirs, _NAMES.get(attr, attr))
        if attr == "timestamp" and other is not None:
            other = int(other.timestamp())
        if attr == "cluster_id":  # pamqp has "" for absent
            mine, other = mine or None, other or None
        assert mine == other, attr


@settings(max_examples=300, deadline=None)
@given(props=properties)
def test_our_encoding_decodes_with_pamqp(props: Properties) -> None:
    _same(props, _pamqp_decode(encode_properties(props)))


@settings(max_examples=300, deadline=None)
@given(props=pamqp_properties)
def test_pamqp_encoding_decodes_with_ours(props: Properties) -> None:
    pamqp_props = _pamqp_props(props)
    raw = pheader.ContentHeader(0, 0, pamqp_props).marshal()[12:]
    _same(decode_properties(raw), pamqp_props)


@settings(max_examples=300, deadline=None)
@given(props=properties)
def test_properties_round_trip_through_our_codec(props: Properties) -> None:
    raw = encode_properties(props)
    assert decode_properties(raw) == props
    assert encode_properties(decode_properties(raw)) == raw


@given(raw=st.binary(max_size=255))
def test_short_string_properties_that_are_not_utf8_survive_byte_for_byte(raw: bytes) -> None:
    section = b"\x80\x00" + bytes((len(raw),)) + raw  # content_type only
    assert encode_properties(decode_properties(section)) == section


def test_empty_properties_are_the_shared_empty_value_both_ways() -> None:
    assert decode_properties(b"\x00\x00") is EMPTY_PROPERTIES
    assert encode_properties(EMPTY_PROPERTIES) == EMPTY_RAW_PROPERTIES
    assert encode_properties(Properties()) == EMPTY_RAW_PROPERTIES


def test_interning_shares_header_less_sections_only() -> None:
    raw = encode_properties(Properties(delivery_mode=2))
    first, second = intern_properties(bytes(raw)), intern_properties(bytes(raw))
    assert first[0] is second[0] and first[1] is second[1]
    with_headers = encode_properties(Properties(headers={"a": 1}))
    assert intern_properties(with_headers)[1] is not intern_properties(with_headers)[1]


@pytest.mark.parametrize("raw", [
    b"", b"\x00", b"\x00\x00\x00",  # short, or bytes after empty flags
    b"\x80\x00\x05ab",  # content type overruns
    b"\x10\x00",  # delivery mode missing
    b"\x20\x00\x00\x00\x00\x09\x01a",  # headers overrun
    b"\x20\x00\x00\x00\x00\x03\x01a?",  # unknown field type
    b"\x10\x00\x02\x01",  # trailing byte
])
def test_malformed_property_sections_are_a_syntax_error(raw: bytes) -> None:
    with pytest.raises(SyntaxError_) as err:
        decode_properties(raw)
    assert err.value.code == 502


def test_continuation_bit_is_ignored_as_rabbitmq_does() -> None:
    assert decode_properties(b"\x10\x01\x02") == Properties(delivery_mode=2)


def test_property_values_that_do_not_fit_are_refused_on_encode() -> None:
    with pytest.raises(ValueError):
        encode_properties(Properties(content_type="x" * 256))
    with pytest.raises(ValueError):
        encode_properties(Properties(priority=256))


# --- field tables ----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(table=tables)
def test_tables_round_trip_and_decode_like_pamqp(table: dict[str, Any]) -> None:
    raw = encode_table(table)
    assert decode_table(raw, 4, len(raw)) == table
    from pamqp import decode as pdecode

    assert pdecode.field_table(raw)[1] == table


@settings(max_examples=200, deadline=None)
@given(table=tables)
def test_pamqp_tables_decode_with_ours(table: dict[str, Any]) -> None:
    raw = pencode.field_table(table)
    assert decode_table(raw, 4, len(raw)) == table


def test_table_types_follow_rabbitmq() -> None:
    raw = (b"\x01lL\xff\xff\xff\xff\xff\xff\xff\xff"  # L is signed 64-bit, as in RabbitMQ
           b"\x01xx\x00\x00\x00\x02\x00\xff"  # byte array
           b"\x01SS\x00\x00\x00\x01\xff"  # longstr that is not UTF-8 stays bytes
           b"\x01DD\x02\x00\x00\x30\x39"  # decimal 123.45
           b"\x01TT\x00\x00\x00\x00\x00\x00\x00\x3c"  # timestamp
           b"\x01VV")
    assert decode_table(raw, 0, len(raw)) == {
        "l": -1, "x": b"\x00\xff", "S": b"\xff", "D": Decimal("123.45"),
        "T": datetime(1970, 1, 1, 0, 1, tzinfo=UTC), "V": None,
    }


def test_encoding_picks_rabbitmqs_types() -> None:
    assert encode_table({"i": 1})[4:] == b"\x01iI\x00\x00\x00\x01"
    assert encode_table({"i": 2**40})[4:] == b"\x01il" + (2**40).to_bytes(8, "big")
    assert encode_table({"f": 0.5})[4:] == b"\x01fd" + struct.pack(">d", 0.5)
    assert encode_table({"b": b"\x00"})[4:] == b"\x01bx\x00\x00\x00\x01\x00"


def test_long_values_keep_their_64_bit_type_through_decode_and_encode() -> None:
    """RabbitMQ keeps a field's type when it passes headers on; so do we, though 1 fits in 'I'."""
    raw = b"\x01nl" + (1).to_bytes(8, "big")
    table = decode_table(raw, 0, len(raw))
    assert table == {"n": 1} and isinstance(table["n"], Long)
    assert encode_table(table)[4:] == raw
    assert encode_table({"n": Long(-2)})[4:] == b"\x01nl" + (-2).to_bytes(8, "big", signed=True)


def test_tables_nested_deeper_than_the_limit_are_refused_both_ways() -> None:
    deep: dict[str, Any] = {}
    for _ in range(limits.HEADERS_DEPTH_MAX + 2):
        deep = {"n": deep}
    with pytest.raises(TableError):
        encode_table(deep)
    raw = b""
    for _ in range(limits.HEADERS_DEPTH_MAX + 2):
        raw = b"\x01nF" + struct.pack(">I", len(raw)) + raw
    with pytest.raises(TableError):
        decode_table(raw, 0, len(raw))


@pytest.mark.parametrize("raw", [b"\x05ab", b"\x01aI\x00", b"\x01a?", b"\x01aS\x00\x00\x00\x09x",
                                 b"\x01a"])
def test_malformed_tables_raise_table_error(raw: bytes) -> None:
    with pytest.raises(TableError):
        decode_table(raw, 0, len(raw))


def test_values_tables_cannot_hold_are_refused() -> None:
    for bad in ({"x": object()}, {"x": 2**64}, {"x": Decimal("-1.5")}, {"k" * 256: 1}):
        with pytest.raises(TableError):
            encode_table(bad)
