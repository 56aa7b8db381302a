"""What scripts/ drive, on the one generator: ``bench_persistent.py``'s workload through
``run.run_workload``, and ``backlog.py``'s raw publish and in-order drain on the bench's client
and the project's codec."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from ferrymq.bench.run import run_workload
from ferrymq.bench.targets import Target
from ferrymq.bench.traffic import PublishTemplate
from ferrymq.client.connection import Client

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", SCRIPTS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_persistent_scripts_workload_runs_on_the_generator(ferry):
    w = _script("bench_persistent").workload(0.6, size=100, prefetch=500)
    report = run_workload(Target("ferrymq", ferry.amqp_url, "amqp", os.getpid()), w)
    assert report["errors"] == []
    producer, consumer = report["producers"][0], report["consumers"][0]
    assert producer["published"] > 1000 and producer["nacked"] == 0
    assert consumer["consumed"] == producer["published"] == producer["confirmed"]
    assert report["latency_ms"]["samples"] > 0 and report["consumed_per_s"] > 0


def test_the_backlog_scripts_publish_and_drain_keep_order(ferry):
    backlog = _script("backlog")
    out = backlog.publish(ferry.amqp_url, "loadgen-backlog", 3000, 1024)
    assert out["publish_per_s"] > 0
    out = backlog.drain(ferry.amqp_url, "loadgen-backlog", 3000, prefetch=200)
    assert out["left"] == 0


def test_a_template_publish_is_one_message(ferry):
    client = Client(ferry.amqp_url).open()
    client.declare_queue("loadgen-wire", False)
    tmpl = PublishTemplate("loadgen-wire", 100)
    client.sock.sendall(tmpl.one(7))
    assert client.declare_queue("loadgen-wire", False, passive=True).message_count == 1
    client.close()
