"""Our rabbitmq_* series are rabbitmq_prometheus's: same names, types and per-queue labels.

Differential: the same topology on a private RabbitMQ 3.10 (rabbitmq_prometheus's per-object
endpoint) and on FerryMQ, both scraped and read with prometheus_client's parser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pika
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ferrymq import EmbeddedBroker
from ferrymq.bench.rabbitmq_node import available, start_rabbitmq

pytestmark = pytest.mark.rabbitmq
# rabbitmq_prometheus labels this one by channel, exchange and queue_vhost too; ours: vhost, queue
LABELS_DIFFER = {"rabbitmq_queue_messages_published"}


@pytest.fixture(scope="module")
def rabbit() -> Iterator[Any]:
    if not available():
        pytest.skip("rabbitmq-server not installed")
    node = start_rabbitmq(management=True)
    yield node
    node.stop()


def families(text: str) -> dict[str, tuple[str, set[frozenset[str]]]]:
    """name -> (type, the label-name sets of its samples, 'le' aside)."""
    out: dict[str, tuple[str, set[frozenset[str]]]] = {}
    for fam in text_string_to_metric_families(text):
        labels = {frozenset(s.labels) - {"le"} for s in fam.samples}
        out[fam.name] = (fam.type, labels)
    return out


def populate(url: str) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.queue_declare("names.q")
    ch.basic_publish("", "names.q", b"x")
    ch.basic_publish("", "names.nowhere", b"x")
    method, _, _ = ch.basic_get("names.q")
    ch.basic_ack(method.delivery_tag)
    conn.close()


def test_rabbitmq_series_match_rabbitmq_prometheus(rabbit: Any) -> None:
    populate(rabbit.amqp_url)
    ours_text = ""
    with EmbeddedBroker() as broker:
        populate(broker.amqp_url)
        ours_text = requests.get(broker.http_url + "/metrics", timeout=10).text
    theirs = families(requests.get(rabbit.prometheus_url + "/metrics/per-object", timeout=10).text)
    # the node-wide alarm gauges (rabbitmq_alarms_*) are only on the aggregated /metrics
    aggregated = families(requests.get(rabbit.prometheus_url + "/metrics", timeout=10).text)
    theirs = {**aggregated, **theirs}
    ours = {n: v for n, v in families(ours_text).items() if n.startswith("rabbitmq_")}
    assert len(ours) >= 15
    for name, (kind, labels) in ours.items():
        assert name in theirs, f"{name} is not a rabbitmq_prometheus series"
        assert kind == theirs[name][0], name
        if name not in LABELS_DIFFER:
            assert labels <= theirs[name][1], (name, labels, theirs[name][1])
