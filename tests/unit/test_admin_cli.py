"""The admin commands against a stub HTTP server that answers with the API's contracts: what is
sent (paths, percent-encoding, bodies, basic auth) and how answers and failures are printed.

The real brokers are in tests/compat/test_admin_cli.py; this covers what a healthy broker rarely
shows (a failed alarms check, an HTML 500, a socket closed mid-request) and FerryMQ's extensions.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from ferrymq.cli import app

Answer = tuple[int, Any]  # status, JSON body (or bytes, sent as they are)
NOT_FOUND: Answer = (404, {"error": "Object Not Found", "reason": "Not Found"})


class Stub:
    """Canned answers by (method, path); every request is recorded with its body and headers."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], Answer] = {}
        self.requests: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.requests.append({"method": self.command, "path": self.path,
                                      "body": json.loads(body) if body else None,
                                      "auth": self.headers.get("Authorization")})
                status, payload = stub.answers.get((self.command, self.path), NOT_FOUND)
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_DELETE = answer

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = Stub()
    thread = threading.Thread(target=server.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


def invoke(stub: Stub, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--url", stub.url])


ROUTE = {"exchange": "orders", "routing_key": "eu.invoice",
         "steps": [{"exchange": "orders", "type": "topic", "bindings": [
             {"destination": "eu", "destination_type": "queue", "routing_key": "eu.*", "arguments": {},
              "matched": True, "why": "'eu.*' matches 'eu.invoice'"},
             {"destination": "us", "destination_type": "queue", "routing_key": "us.#", "arguments": {},
              "matched": False, "why": "'us' != 'eu'"}]}],
         "queues": ["eu"], "streams": [], "alternate_exchange": None, "unroutable": False,
         "dead_letter": {"eu": {"exchange": "dlx", "routing_key": "eu.invoice"}}}


def test_route_posts_the_contract_body_to_the_encoded_path_and_prints_why(stub: Stub) -> None:
    stub.answers[("POST", "/api/ferrymq/route/my%2Fvh/orders")] = (200, ROUTE)
    result = invoke(stub, "route", "orders", "eu.invoice", "--vhost", "my/vh", "--header", "a=1=2")
    assert result.exit_code == 0, result.output
    assert stub.requests[0]["body"] == {"routing_key": "eu.invoice", "headers": {"a": "1=2"},
                                        "properties": {}}
    assert result.stdout.splitlines() == [
        "routing key 'eu.invoice' at exchange 'orders'",
        "  exchange 'orders' (topic)",
        "    matched queue 'eu' (binding key 'eu.*'): 'eu.*' matches 'eu.invoice'",
        "    1 other binding(s) did not match",
        "queues: eu",
        "dead letters of 'eu' go to exchange 'dlx' with routing key 'eu.invoice'",
    ]


def test_route_of_the_default_exchange_uses_amq_default_and_unroutable_exits_0(stub: Stub) -> None:
    answer = {**ROUTE, "exchange": "", "steps": [], "queues": [], "dead_letter": {}, "unroutable": True}
    stub.answers[("POST", "/api/ferrymq/route/%2F/amq.default")] = (200, answer)
    result = invoke(stub, "route", "", "nowhere")
    assert result.exit_code == 0, result.output
    assert "queues: (none)" in result.stdout and "UNROUTABLE" in result.stdout


def test_dlq_replay_sends_the_count_and_prints_counts_before_and_after(stub: Stub) -> None:
    stub.answers[("POST", "/api/ferrymq/dlq/%2F/dead/replay")] = (200, {
        "replayed": 2, "before": {"dlq": 3, "targets": {"src": 0}},
        "after": {"dlq": 1, "targets": {"src": 2}}})
    result = invoke(stub, "dlq", "replay", "dead", "--count", "2")
    assert result.exit_code == 0, result.output
    assert stub.requests[0]["body"] == {"count": 2}
    assert result.stdout.splitlines() == ["replayed 2 message(s) from 'dead'",
                                          "  dead (dead letters): 3 -> 1", "  src: 0 -> 2"]
    invoke(stub, "dlq", "replay", "dead")
    assert stub.requests[1]["body"] == {"count": None}


def test_dlq_list_keeps_the_chosen_vhost(stub: Stub) -> None:
    stub.answers[("GET", "/api/ferrymq/dlq")] = (200, [
        {"vhost": "/", "name": "dead", "messages": 3, "sources": ["a", "b"]},
        {"vhost": "other", "name": "dead2", "messages": 1, "sources": []}])
    result = invoke(stub, "dlq", "list", "--json")
    assert [d["name"] for d in json.loads(result.stdout)] == ["dead"]
    assert "a, b" in invoke(stub, "dlq", "list").stdout


def test_status_exits_1_and_prints_the_alarm_when_the_health_check_answers_503(stub: Stub) -> None:
    stub.answers[("GET", "/api/overview")] = (200, {
        "product_name": "FerryMQ", "product_version": "0.1.0", "node": "ferrymq@host",
        "listeners": [{"protocol": "amqp", "ip_address": "127.0.0.1", "port": 5672}],
        "object_totals": {"queues": 2}, "queue_totals": {"messages": 5, "messages_details": {"rate": 0.0}}})
    stub.answers[("GET", "/api/health/checks/alarms")] = (503, {
        "status": "failed", "reason": "resource alarm(s) in effect",
        "alarms": [{"resource": "memory", "node": "ferrymq@host"}]})
    result = invoke(stub, "status")
    assert result.exit_code == 1
    assert "FAILED: resource alarm(s) in effect" in result.stdout and '"resource":"memory"' in result.stdout
    assert "messages_details" not in result.stdout
    assert json.loads(invoke(stub, "status", "--json").stdout)["alarms"]["status"] == "failed"


def test_basic_auth_carries_the_user_and_password(stub: Stub) -> None:
    stub.answers[("GET", "/api/queues/%2F")] = (200, [])
    assert invoke(stub, "queues", "--user", "ann", "--password", "p:w").exit_code == 0
    assert stub.requests[0]["auth"] == "Basic " + base64.b64encode(b"ann:p:w").decode()


def test_an_html_error_page_becomes_one_line_and_exit_1(stub: Stub) -> None:
    stub.answers[("GET", "/api/exchanges/%2F")] = (500, b"<html>\n<body>Internal\n error</body></html>")
    result = invoke(stub, "exchanges")
    assert result.exit_code == 1
    assert result.stderr == "ferrymq: GET /api/exchanges/%2F: 500 <html> <body>Internal error</body></html>\n"


def test_a_socket_closed_without_an_answer_exits_3() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"

    def close_each() -> None:
        conn, _ = listener.accept()
        conn.close()

    threading.Thread(target=close_each, daemon=True).start()
    try:
        result = CliRunner().invoke(app, ["queues", "--url", url])
    finally:
        listener.close()
    assert result.exit_code == 3
    assert result.stderr.startswith(f"ferrymq: cannot reach the broker at {url}: ")
