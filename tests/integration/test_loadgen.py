"""The old entry points that scripts/ still use (``ferrymq.bench.amqp_load.run`` and the
``ferrymq.bench.wire`` names) run on the one generator and report in their old shape."""

from __future__ import annotations

from pamqp import commands as c

from ferrymq.bench.amqp_load import Options, run
from ferrymq.bench.wire import Wire, publish_template


def test_old_options_run_on_the_new_generator(ferry):
    report = run(Options(url=ferry.amqp_url, seconds=0.6))
    producer, consumer = report["producer"], report["consumer"]
    assert producer["sent"] > 1000 and producer["nacked"] == 0
    assert consumer["received"] == producer["sent"] == producer["confirmed"]
    assert consumer["latency_ns"]["count"] > 0 and report["consumed_per_s"] > 0


def test_wire_names_still_publish(ferry):
    wire = Wire(ferry.amqp_url).open()
    wire.declare("loadgen-wire", False)
    head, tail = publish_template("loadgen-wire", 100, False)
    wire.sock.sendall(head + (7).to_bytes(8, "big") + tail)
    wire.send(c.Queue.Declare(queue="loadgen-wire", passive=True))
    assert wire.expect(c.Queue.DeclareOk).message_count == 1
    wire.close()
