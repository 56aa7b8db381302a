"""The small sans-IO client side used by tests and the load generator."""

from __future__ import annotations

from pamqp import commands as c
from pamqp import frame as pframe
from pamqp import header as pheader
from pamqp.body import ContentBody

from ferrymq.protocols.amqp import client
from ferrymq.protocols.amqp.frames import PROTOCOL_HEADER


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
