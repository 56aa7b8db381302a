"""/api/connections, /api/channels, /api/consumers and the health checks, with real pika clients,
and Debian's rabbitmqadmin reading them."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator

import pika
import pytest
import requests

from ferrymq import EmbeddedBroker

AUTH = ("guest", "guest")
RABBITMQADMIN = shutil.which("rabbitmqadmin") or "/usr/bin/rabbitmqadmin"


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def _get(broker: EmbeddedBroker, path: str) -> requests.Response:
    return requests.get(f"{broker.http_url}{path}", auth=AUTH, timeout=5)


def _admin(broker: EmbeddedBroker, *args: str) -> str:
    cmd = [RABBITMQADMIN, "-H", "127.0.0.1", "-P", str(broker.http_port), "-f", "raw_json", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=True).stdout


def test_connection_channel_and_consumer_are_listed_as_rabbitmq_names_them(broker: EmbeddedBroker) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=7)
    ch.queue_declare("c-q")
    ch.basic_consume("c-q", lambda *a: None, consumer_tag="ctag-1")
    local = conn._impl._transport._sock.getsockname()  # the client's end: the name's left side
    name = f"{local[0]}:{local[1]} -> 127.0.0.1:{broker.amqp_port}"
    conns = _get(broker, "/api/connections").json()
    mine = next(c for c in conns if c["name"] == name)
    assert (mine["user"], mine["vhost"], mine["protocol"], mine["channels"], mine["peer_port"],
            mine["port"], mine["ssl"]) == ("guest", "/", "AMQP 0-9-1", 1, local[1], broker.amqp_port, False)
    assert mine["client_properties"]["product"] == "Pika Python Client Library"
    assert mine["recv_oct"] > 0 and mine["send_oct"] > 0
    chans = _get(broker, f"/api/connections/{requests.utils.quote(name, safe='')}/channels").json()
    assert [(c["name"], c["number"], c["prefetch_count"], c["consumer_count"]) for c in chans] == [
        (f"{name} (1)", 1, 7, 1)]
    consumers = _get(broker, "/api/consumers/%2F").json()
    mine_c = next(c for c in consumers if c["consumer_tag"] == "ctag-1")
    assert mine_c["queue"] == {"name": "c-q", "vhost": "/"} and mine_c["ack_required"] is True
    assert mine_c["channel_details"]["name"] == f"{name} (1)"
    listed = json.loads(_admin(broker, "list", "connections", "name", "user"))
    assert {"name": name, "user": "guest"} in listed
    assert any(c["name"] == f"{name} (1)" for c in json.loads(_admin(broker, "list", "channels")))
    assert any(c["consumer_tag"] == "ctag-1" for c in json.loads(_admin(broker, "list", "consumers")))
    conn.close()


def test_delete_connection_closes_it_with_320_and_the_x_reason_text(broker: EmbeddedBroker) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    local = conn._impl._transport._sock.getsockname()
    name = f"{local[0]}:{local[1]} -> 127.0.0.1:{broker.amqp_port}"
    r = requests.delete(f"{broker.http_url}/api/connections/{requests.utils.quote(name, safe='')}",
                        headers={"X-Reason": "maintenance now"}, auth=AUTH, timeout=5)
    assert r.status_code == 204
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        conn.process_data_events(time_limit=2)
        conn.process_data_events(time_limit=2)
    assert (info.value.reply_code, info.value.reply_text) == (320, "CONNECTION_FORCED - maintenance now")
    assert _get(broker, f"/api/connections/{requests.utils.quote(name, safe='')}").status_code == 404


@pytest.mark.parametrize(("path", "status", "body"), [
    ("/api/health/checks/alarms", 200, {"status": "ok"}),
    ("/api/health/checks/local-alarms", 200, {"status": "ok"}),
    ("/api/health/checks/virtual-hosts", 200, {"status": "ok"}),
    ("/api/health/checks/node-is-quorum-critical", 200, {"status": "ok", "reason": "single node cluster"}),
    ("/api/health/checks/protocol-listener/amqp", 200, {"status": "ok", "protocol": "amqp"}),
    ("/api/health/checks/certificate-expiration/1/weeks", 200, {"status": "ok"}),
    ("/api/health/checks/certificate-expiration/1/eons", 400, {
        "error": "bad_request",
        "reason": "Time unit not recognised. Supported units: days, weeks, months, years."}),
    ("/api/health/checks/port-listener/abc", 400, {"error": "bad_request", "reason": "Invalid port"}),
    ("/api/aliveness-test/%2F", 200, {"status": "ok"}),
    ("/api/aliveness-test/nope", 404, {"error": "Object Not Found", "reason": "Not Found"}),
])
def test_health_checks_answer_as_rabbitmq(broker: EmbeddedBroker, path: str, status: int, body: dict) -> None:
    r = _get(broker, path)
    assert (r.status_code, r.json()) == (status, body)


def test_port_listener_knows_the_amqp_port_and_fails_for_others(broker: EmbeddedBroker) -> None:
    assert _get(broker, f"/api/health/checks/port-listener/{broker.amqp_port}").json() == {
        "status": "ok", "port": broker.amqp_port}
    r = _get(broker, "/api/health/checks/port-listener/1")
    assert r.status_code == 503 and r.json()["reason"] == "No active listener"
    assert _get(broker, "/api/health/checks/protocol-listener/stomp").status_code == 503


def test_alarms_check_fails_with_503_while_the_memory_alarm_is_on() -> None:
    with EmbeddedBroker(memory_high_watermark_bytes=1000) as b:
        conn = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = conn.channel()
        ch.queue_declare("alarm-q")
        ch.basic_publish("", "alarm-q", b"x" * 4000)
        deadline = time.monotonic() + 5
        r = _get(b, "/api/health/checks/alarms")
        while r.status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.1)
            r = _get(b, "/api/health/checks/alarms")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "failed" and [a["resource"] for a in body["alarms"]] == ["memory"]
        assert _get(b, "/api/health/checks/local-alarms").status_code == 503
        other = pika.BlockingConnection(pika.URLParameters(b.amqp_url))  # the publisher is blocked now
        other.channel().queue_purge("alarm-q")
        other.close()
        deadline = time.monotonic() + 5
        while _get(b, "/api/health/checks/alarms").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _get(b, "/api/health/checks/alarms").json() == {"status": "ok"}
        conn.close()
