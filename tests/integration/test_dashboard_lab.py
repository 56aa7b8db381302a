"""The lab page's two ends over real HTTP, without a browser: /dashboard/lab serves the shell for
the lab page (with its nav entry), and the push URL the page opens, authorised by the login cookie
as EventSource is, delivers a progress snapshot published the lab's way (pika, amq.topic,
ferrymq.lab.progress, application/json) as a message frame whose body is the snapshot."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pika
import pytest
import requests

from ferrymq import EmbeddedBroker

LAB_SSE = "/sse?exchange=amq.topic&key=ferrymq.lab.%23"  # what static/app.js opens


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def test_lab_page_route_serves_the_shell_with_a_lab_nav_entry(broker: EmbeddedBroker) -> None:
    r = requests.get(broker.http_url + "/dashboard/lab", timeout=10)
    assert r.status_code == 200 and 'data-page="lab"' in r.text
    assert '<a href="/dashboard/lab" data-nav="lab">Lab</a>' in r.text
    unknown = requests.get(broker.http_url + "/dashboard/labs", auth=("guest", "guest"), timeout=10)
    assert unknown.status_code == 404


def test_lab_push_url_delivers_a_published_snapshot_to_a_cookie_session(broker: EmbeddedBroker) -> None:
    snap = {"run": "r1", "scenario": "s", "target": "ferrymq (queue mode)", "series": "queue", "t": 1.0,
            "duration": 60.0, "in_per_s": 10.0, "out_per_s": 9.5, "p99_ms": None, "depth": 3, "sent": 10,
            "received": 9, "lost": None, "duplicates": 0, "events": [], "state": "running", "report": ""}
    s = requests.Session()
    assert s.post(broker.http_url + "/dashboard/login", data={"user": "guest", "password": "guest"},
                  timeout=10).status_code == 200
    with s.get(broker.http_url + LAB_SSE, stream=True, timeout=10) as r:
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        frames = (json.loads(line[6:]) for line in r.iter_lines() if line.startswith(b"data: "))
        hello = next(frames)
        assert hello["type"] == "subscribed" and hello["key"] == "ferrymq.lab.#"
        conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        conn.channel().basic_publish("amq.topic", "ferrymq.lab.progress", json.dumps(snap).encode(),
                                     pika.BasicProperties(content_type="application/json"))
        conn.close()
        got = next(frames)
    assert (got["type"], got["routing_key"], got["encoding"]) == ("message", "ferrymq.lab.progress", "text")
    assert got["properties"]["content_type"] == "application/json"
    assert json.loads(got["body"]) == snap
