"""The rare-method codec (every method pamqp describes), checked against pamqp both ways."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import commands as c
from pamqp import frame as pframe

from ferrymq.protocols.amqp.frames import frame
from ferrymq.protocols.amqp.methods import (
    MethodDecodeError,
    decode_method,
    encode_method,
    method_class,
)

# pamqp warns whenever it builds basic.recover-async, which is deprecated but still a method.
pytestmark = pytest.mark.filterwarnings("ignore:This command is deprecated:DeprecationWarning")

# Arguments pamqp pins to one value (it refuses to encode anything else).
_PINNED = {"ticket", "out_of_band", "channel_id", "known_hosts", "capabilities", "insist",
           "cluster_id"}
names = st.text(alphabet="abcXYZ019-_.:@#,/+ ", max_size=100)
table_values = st.recursive(
    st.one_of(st.booleans(), st.integers(-(2**31), 2**31 - 1), st.text(max_size=20)),
    lambda inner: st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=3),
    max_leaves=8)
_BY_TYPE = {
    "shortstr": names, "longstr": st.text(max_size=200), "octet": st.integers(0, 255),
    "short": st.integers(0, 65535), "long": st.integers(0, 2**32 - 1),
    "longlong": st.integers(0, 2**63 - 1), "bit": st.booleans(),
    "table": st.dictionaries(st.text(min_size=1, max_size=10), table_values, max_size=4),
}
CLASSES = sorted(c.INDEX_MAPPING.values(), key=lambda cls: cls.index)


_ZERO = {"shortstr": "", "longstr": "", "bit": False, "table": {}}


def _default(cls: type) -> Any:
    """pamqp's defaults, with its None defaults (which it cannot encode) made zero values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        method = cls()
    for attr in cls.__slots__:
        if getattr(method, attr) is None:
            setattr(method, attr, _ZERO.get(cls.amqp_type(attr), 0))
    return method


@st.composite
def methods(draw: st.DrawFn) -> Any:
    cls = draw(st.sampled_from(CLASSES))
    method = _default(cls)
    for attr in cls.__slots__:
        if attr not in _PINNED:
            setattr(method, attr, draw(_BY_TYPE[cls.amqp_type(attr)]))
    return method


def _pamqp_payload(method: Any) -> bytes:
    return pframe.marshal(method, 1)[7:-1]


@settings(max_examples=400, deadline=None)
@given(method=methods())
def test_our_encoding_decodes_with_pamqp_and_pamqps_with_ours(method: Any) -> None:
    ours = encode_method(method)
    _, _, theirs_decoded = pframe.unmarshal(frame(1, 1, ours))
    assert type(theirs_decoded) is type(method) and dict(theirs_decoded) == dict(method)
    payload = _pamqp_payload(method)
    decoded = decode_method(type(method), payload, 4, len(payload))
    assert dict(decoded) == dict(method)
    if not any(isinstance(v, dict) and v for _, v in method):  # tables: pamqp sorts keys and
        assert ours == payload  # picks the smallest integer type, RabbitMQ's encoder does not


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.name)
def test_every_method_with_defaults_encodes_as_pamqp_does(cls: type) -> None:
    method = _default(cls)
    assert encode_method(method) == _pamqp_payload(method)
    assert method_class(cls.index) is cls


def test_names_outside_pamqps_pattern_encode_and_decode() -> None:
    ok = c.Queue.DeclareOk(queue="q", message_count=3, consumer_count=1)
    ok.queue = "café ü?*"
    payload = encode_method(ok)
    decoded = decode_method(c.Queue.DeclareOk, payload, 4, len(payload))
    assert (decoded.queue, decoded.message_count, decoded.consumer_count) == ("café ü?*", 3, 1)


def test_consecutive_bits_share_one_octet() -> None:
    consume = c.Basic.Consume(queue="q", no_local=True, no_ack=False, exclusive=True, nowait=True)
    payload = encode_method(consume)
    assert payload == _pamqp_payload(consume)
    assert dict(decode_method(c.Basic.Consume, payload, 4, len(payload))) == dict(consume)


@pytest.mark.parametrize("mangle", [lambda p: p[:-1], lambda p: p + b"\x00", lambda p: p[:5]])
def test_truncated_or_overlong_arguments_do_not_decode(mangle: Any) -> None:
    payload = mangle(encode_method(c.Queue.Declare(queue="q", arguments={"a": 1})))
    with pytest.raises(MethodDecodeError):
        decode_method(c.Queue.Declare, payload, 4, len(payload))


def test_decoding_never_reads_past_the_frame_end() -> None:
    payload = encode_method(c.Basic.Qos(0, 10, False))
    following = b"\x00" * 16  # bytes of the next frame in the same buffer
    with pytest.raises(MethodDecodeError):
        decode_method(c.Basic.Qos, payload + following, 4, len(payload) - 1)
