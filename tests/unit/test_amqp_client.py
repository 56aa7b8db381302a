"""The small sans-IO client side used by tests and the load generator."""

from __future__ import annotations

import pytest
from pamqp import commands as c
from pamqp import frame as pframe
from pamqp import header as pheader
from pamqp.body import ContentBody

from ferrymq.core.message import Message
from ferrymq.protocols.amqp import client
from ferrymq.protocols.amqp.frames import BASIC_DELIVER, FRAME_HEAD, METHOD_ID, PROTOCOL_HEADER
from ferrymq.protocols.amqp.hotpath import confirm_frame, deliver_frames


def test_protocol_header_is_amqp_0_9_1() -> None:
    assert client.protocol_header() == PROTOCOL_HEADER == b"AMQP\x00\x00\x09\x01"


def test_encode_method_matches_pamqp() -> None:
    method = c.Basic.Qos(prefetch_size=0, prefetch_count=50, global_=True)
    assert client.encode_method(3, method) == pframe.marshal(method, 3)


def test_encode_ack_matches_pamqp() -> None:
    assert client.encode_ack(2, 99, multiple=True) == pframe.marshal(
        c.Basic.Ack(delivery_tag=99, multiple=True), 2)


def test_encode_publish_splits_the_body_at_frame_max_and_reads_back() -> None:
    body = bytes(range(256)) * 40  # 10240 bytes
    data = client.encode_publish(5, "ex", "rk", body, b"\x10\x00\x02", frame_max=4096,
                                 mandatory=True)
    frames = list(client.FrameReader().feed(data))
    assert {ch for ch, _ in frames} == {5}
    publish, header, *bodies = (f for _, f in frames)
    assert isinstance(publish, c.Basic.Publish)
    assert (publish.exchange, publish.routing_key, publish.mandatory) == ("ex", "rk", True)
    assert isinstance(header, pheader.ContentHeader) and header.body_size == len(body)
    assert header.properties.delivery_mode == 2
    assert all(isinstance(b, ContentBody) and len(b.value) <= 4088 for b in bodies)
    assert b"".join(b.value for b in bodies) == body  # type: ignore[attr-defined]


def test_frame_reader_waits_for_whole_frames_across_feeds() -> None:
    data = client.encode_method(1, c.Channel.OpenOk()) + b"\x08\x00\x00\x00\x00\x00\x00\xce"
    reader = client.FrameReader()
    got = []
    for i in range(len(data)):
        got += list(reader.feed(data[i:i + 1]))
    assert [type(f) for _, f in got] == [c.Channel.OpenOk, type(got[1][1])]
    assert len(got) == 2


def test_encode_acks_is_one_single_ack_per_tag() -> None:
    assert client.encode_acks(1, [3, 4, 2**40]) == b"".join(
        pframe.marshal(c.Basic.Ack(delivery_tag=t, multiple=False), 1) for t in (3, 4, 2**40))
    assert client.encode_acks(1, []) == b""


def test_encode_reject_matches_pamqp() -> None:
    for requeue in (False, True):
        assert client.encode_reject(4, 77, requeue) == pframe.marshal(
            c.Basic.Reject(delivery_tag=77, requeue=requeue), 4)


def _payload_start(frame: bytes) -> tuple[int, int]:
    return 7, len(frame) - 1  # after type, channel, size; before the end octet


def test_decode_deliver_reads_what_the_server_encoder_wrote() -> None:
    out: list[bytes] = []
    deliver_frames(out, 3, 131072, "ctag-é", 2**33 + 5, True, "ex", "a.key", Message("", "", b"xy"))
    data = b"".join(bytes(p) for p in out)
    size = FRAME_HEAD.unpack_from(data, 0)[2]
    assert METHOD_ID.unpack_from(data, 7)[0] == BASIC_DELIVER
    assert client.decode_deliver(data, 7, 7 + size) == ("ctag-é", 2**33 + 5, True, "ex", "a.key")
    assert client.decode_deliver_tag(data, 7) == 2**33 + 5
    # pamqp agrees on the same bytes
    _, _, theirs = pframe.unmarshal(data[:size + 8])
    assert (theirs.consumer_tag, theirs.delivery_tag, theirs.routing_key) == ("ctag-é", 2**33 + 5, "a.key")


def test_decode_deliver_refuses_arguments_that_do_not_fill_the_frame() -> None:
    frame = pframe.marshal(c.Basic.Deliver("t", 1, False, "", "rk"), 1)
    start, end = _payload_start(frame)
    with pytest.raises(ValueError):
        client.decode_deliver(frame, start, end - 1)


@pytest.mark.parametrize(("ack", "multiple"), [(True, False), (True, True), (False, True)])
def test_decode_confirm_reads_the_servers_confirms(ack: bool, multiple: bool) -> None:
    frame = confirm_frame(1, 2**40 + 1, multiple, ack)
    assert client.decode_confirm(frame, 7) == (2**40 + 1, multiple)
    method = (c.Basic.Ack if ack else c.Basic.Nack)(delivery_tag=9, multiple=multiple)
    assert client.decode_confirm(pframe.marshal(method, 1), 7) == (9, multiple)


@pytest.mark.parametrize("method", [
    c.Connection.Close(320, "CONNECTION_FORCED - bye", 0, 0),
    c.Channel.Close(404, "NOT_FOUND - no queue 'q'", 50, 10),
])
def test_decode_close_gives_code_and_text(method: c.Connection.Close | c.Channel.Close) -> None:
    assert client.decode_close(pframe.marshal(method, 1), 7) == (method.reply_code, method.reply_text)


def test_take_pending_hands_over_frames_not_yet_read() -> None:
    first = client.encode_method(1, c.Basic.ConsumeOk("t"))
    rest = client.encode_ack(1, 5) + b"\x01\x00"
    reader = client.FrameReader()
    frames = reader.feed(first + rest)
    assert isinstance(next(frames)[1], c.Basic.ConsumeOk)
    assert reader.take_pending() == rest
    assert reader.pending == 0 and reader.take_pending() == b""
