"""The load generator's accounting is consistent: against FerryMQ nothing is lost, against the
null sink every publish is confirmed."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from ferrymq.bench.amqp_load import Options, run


def test_generator_against_ferrymq_loses_nothing(ferry):
    report = run(Options(url=ferry.amqp_url, seconds=1.0, queue="loadgen-test"))
    producer, consumer = report["producer"], report["consumer"]
    assert producer["sent"] > 1000
    assert producer["nacked"] == 0
    assert consumer["received"] == producer["sent"]
    assert consumer["latency_ns"]["count"] == producer["sent"]


def test_generator_against_sink_is_confirmed_in_full():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = subprocess.Popen([sys.executable, "-m", "ferrymq.bench.sink", "--port", str(port)])
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
        report = Options(url=url, seconds=1.0)
        producer = run(report)["producer"]
        assert producer["sent"] > 10_000
        assert producer["sent"] - producer["confirmed"] <= 500  # at most the open window
    finally:
        sink.terminate()
        sink.wait(5)
