"""`ferrymq queues | exchanges | ... | status` run as subprocesses against RabbitMQ 3.10 (management
plugin) and against FerryMQ: the same commands, output and exit codes on both.

The RabbitMQ-compatible commands run on both targets; `route` and `dlq` are FerryMQ extensions and
run against FerryMQ only. RabbitMQ's management database fills counters a few seconds late, so
listings are polled until they show what pika did.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pytest

from ferrymq.bench.rabbitmq_node import RabbitNode, available, free_port, start_rabbitmq
from ferrymq.testing import EmbeddedBroker

ROOT = Path(__file__).resolve().parents[2]
STATS_WAIT_S = 15.0  # RabbitMQ's collect_statistics_interval is 5 s


@dataclass(frozen=True)
class Target:
    name: str
    http_url: str
    amqp_url: str


@pytest.fixture(scope="module")
def rabbit_node() -> Iterator[RabbitNode]:
    if not available():
        pytest.skip("rabbitmq-server not installed")
    try:
        node = start_rabbitmq(management=True)
    except RuntimeError:  # a port taken between choosing and binding it: choose again, once
        node = start_rabbitmq(management=True)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module", params=[pytest.param("rabbitmq", marks=pytest.mark.rabbitmq), "ferrymq"])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "rabbitmq":
        node: RabbitNode = request.getfixturevalue("rabbit_node")
        return Target("rabbitmq", node.management_url, node.amqp_url)
    broker: EmbeddedBroker = request.getfixturevalue("ferry")
    return Target("ferrymq", broker.http_url, broker.amqp_url)


def cli(*args: str, env: dict[str, str] | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FERRYMQ_")}
    environ.update(env or {}, PYTHONPATH=str(ROOT), COLUMNS="200")  # usage errors unwrapped
    return subprocess.run([sys.executable, "-m", "ferrymq.cli", *args], capture_output=True, text=True,
                          timeout=60, env=environ, cwd=cwd or ROOT)


def run(target: Target, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(*args, "--url", target.http_url)


def run_json(target: Target, *args: str) -> Any:
    done = run(target, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def eventually(fetch: Callable[[], Any], ok: Callable[[Any], bool], wait_s: float = STATS_WAIT_S) -> Any:
    deadline = time.monotonic() + wait_s
    while True:
        value = fetch()
        if ok(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def row_of(table: str, name: str, column: int = 0) -> list[str]:
    """The cells of the table row whose cell ``column`` is ``name``."""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) > column and cells[column] == name:
            return cells
    raise AssertionError(f"no row {name!r} in:\n{table}")


@pytest.fixture
def channel(target: Target) -> Iterator[Any]:
    conn = pika.BlockingConnection(pika.URLParameters(target.amqp_url))
    try:
        yield conn.channel()
    finally:
        conn.close()


def publish(ch: Any, queue: str, count: int) -> None:
    ch.confirm_delivery()
    for i in range(count):
        ch.basic_publish("", queue, f"m{i}".encode())


def ready(ch: Any, queue: str) -> int:
    return int(ch.queue_declare(queue, passive=True).method.message_count)


# --- listings ------------------------------------------------------------------------------------
def test_queues_shows_a_queue_with_its_message_count_as_a_table_and_as_json(target: Target,
                                                                            channel: Any) -> None:
    channel.queue_declare("cli.count")
    publish(channel, "cli.count", 3)
    rows = eventually(lambda: run_json(target, "queues"),
                      lambda rows: any(r["name"] == "cli.count" and r.get("messages") == 3 for r in rows))
    assert [r.get("messages") for r in rows if r["name"] == "cli.count"] == [3]
    done = run(target, "queues")
    assert done.returncode == 0, done.stderr
    cells = row_of(done.stdout, "cli.count")
    assert cells[1:4] == ["classic", "no", "3"]  # type, durable, messages


def test_exchanges_shows_a_declared_exchange_its_type_and_the_default_exchange(target: Target,
                                                                               channel: Any) -> None:
    channel.exchange_declare("cli.topic", "topic", durable=True)
    done = run(target, "exchanges")
    assert done.returncode == 0, done.stderr
    assert row_of(done.stdout, "cli.topic")[1:3] == ["topic", "yes"]
    assert row_of(done.stdout, "(AMQP default)")[1] == "direct"
    names = {e["name"]: e["type"] for e in run_json(target, "exchanges")}
    assert names["cli.topic"] == "topic" and names[""] == "direct"


def test_bindings_shows_a_binding_with_its_routing_key(target: Target, channel: Any) -> None:
    channel.exchange_declare("cli.bind.ex", "topic")
    channel.queue_declare("cli.bind.q")
    channel.queue_bind("cli.bind.q", "cli.bind.ex", "cli.key.#")
    found = [(b["source"], b["destination"], b["destination_type"], b["routing_key"])
             for b in run_json(target, "bindings")]
    assert ("cli.bind.ex", "cli.bind.q", "queue", "cli.key.#") in found
    assert ("", "cli.bind.q", "queue", "cli.bind.q") in found  # the default exchange's implicit binding
    done = run(target, "bindings")
    assert row_of(done.stdout, "cli.bind.ex")[1:4] == ["cli.bind.q", "queue", "cli.key.#"]


def test_connections_shows_an_open_pika_connection(target: Target, channel: Any) -> None:
    rows = eventually(lambda: run_json(target, "connections"),
                      lambda rows: any(r.get("user") == "guest" for r in rows))
    assert any(r.get("user") == "guest" and r.get("vhost") == "/" for r in rows), rows
    done = run(target, "connections")
    assert done.returncode == 0 and "Pika" in done.stdout, done.stdout
    assert run_json(target, "connections", "--vhost", "no-such-vhost") == []


# --- purge and errors ----------------------------------------------------------------------------
def test_purge_empties_a_queue(target: Target, channel: Any) -> None:
    channel.queue_declare("cli.purge")
    publish(channel, "cli.purge", 2)
    assert ready(channel, "cli.purge") == 2
    done = run(target, "purge", "cli.purge")
    assert done.returncode == 0, done.stderr
    assert "purged queue 'cli.purge'" in done.stdout
    assert ready(channel, "cli.purge") == 0


def test_purge_of_an_unknown_queue_exits_1_with_rabbitmqs_reason_on_one_line(target: Target) -> None:
    done = run(target, "purge", "cli.no-such-queue")
    assert done.returncode == 1
    assert done.stderr == "ferrymq: DELETE /api/queues/%2F/cli.no-such-queue/contents: " \
                          "404 Object Not Found: Not Found\n"


def test_a_wrong_password_exits_1_with_not_authorized(target: Target) -> None:
    done = run(target, "queues", "--password", "wrong")
    assert done.returncode == 1
    assert "401 not_authorized" in done.stderr and len(done.stderr.splitlines()) == 1


def test_the_default_url_comes_from_the_brokers_own_settings(target: Target, tmp_path: Path) -> None:
    port = target.http_url.rsplit(":", 1)[1]
    done = cli("exchanges", "--json", env={"FERRYMQ_HTTP_PORT": port, "FERRYMQ_HOST": "127.0.0.1"},
               cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "amq.topic" in {e["name"] for e in json.loads(done.stdout)}


# --- definitions ---------------------------------------------------------------------------------
def test_definitions_export_then_import_brings_back_a_deleted_queue(target: Target, channel: Any,
                                                                    tmp_path: Path) -> None:
    channel.queue_declare("cli.defs", durable=True, arguments={"x-max-length": 7})
    file = tmp_path / "defs.json"
    done = run(target, "definitions", "export", str(file))
    assert done.returncode == 0, done.stderr
    exported = {q["name"]: q for q in json.loads(file.read_text())["queues"]}
    assert exported["cli.defs"]["arguments"] == {"x-max-length": 7}
    channel.queue_delete("cli.defs")
    done = run(target, "definitions", "import", str(file))
    assert done.returncode == 0, done.stderr
    assert ready(channel, "cli.defs") == 0  # passive declare: the queue exists again
    streamed = run(target, "definitions", "export")
    assert "cli.defs" in {q["name"] for q in json.loads(streamed.stdout)["queues"]}


# --- status --------------------------------------------------------------------------------------
def test_status_prints_listeners_totals_and_no_alarm(target: Target) -> None:
    amqp_port = target.amqp_url.rsplit(":", 1)[1].split("/")[0]
    done = run(target, "status")
    assert done.returncode == 0, done.stderr
    assert row_of(done.stdout, "amqp")[2] == amqp_port
    assert "object totals" in done.stdout and "alarms: none" in done.stdout
    answer = run_json(target, "status")
    assert answer["alarms"] == {"status": "ok"}
    assert {"queues", "exchanges", "connections"} <= set(answer["overview"]["object_totals"])


# --- without a broker ----------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["queues"], ["status"], ["purge", "q"], ["dlq", "list"],
                                  ["route", "amq.topic", "a.b"], ["definitions", "export"]])
def test_nothing_listening_exits_3_naming_the_url(args: list[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = cli(*args, "--url", url)
    assert done.returncode == 3
    assert done.stderr == f"ferrymq: cannot reach the broker at {url}: connection refused\n"


def test_importing_a_file_that_is_not_json_is_a_usage_error(tmp_path: Path) -> None:
    file = tmp_path / "defs.json"
    file.write_text("{not json")
    done = cli("definitions", "import", str(file), "--url", f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 2 and "is not a JSON file" in done.stderr


def test_a_header_without_equals_is_a_usage_error() -> None:
    done = cli("route", "amq.headers", "", "--header", "novalue", "--url", "http://127.0.0.1:1")
    assert done.returncode == 2 and "expected key=value" in done.stderr


# --- FerryMQ's extensions (POST /api/ferrymq/route/..., /api/ferrymq/dlq): FerryMQ only ------------
@pytest.fixture
def ferry_target(ferry: EmbeddedBroker) -> Target:
    return Target("ferrymq", ferry.http_url, ferry.amqp_url)


@pytest.fixture
def ferry_channel(ferry: EmbeddedBroker) -> Iterator[Any]:
    conn = pika.BlockingConnection(pika.URLParameters(ferry.amqp_url))
    try:
        yield conn.channel()
    finally:
        conn.close()


def test_route_prints_the_matched_bindings_with_why_then_the_queues(ferry_target: Target,
                                                                     ferry_channel: Any) -> None:
    ferry_channel.exchange_declare("cli.route", "topic")
    for queue, key in (("cli.route.a", "a.*"), ("cli.route.b", "b.#")):
        ferry_channel.queue_declare(queue)
        ferry_channel.queue_bind(queue, "cli.route", key)
    done = run(ferry_target, "route", "cli.route", "a.x")
    assert done.returncode == 0, done.stderr
    assert "matched queue 'cli.route.a' (binding key 'a.*'): " in done.stdout
    assert "1 other binding(s) did not match" in done.stdout
    assert "queues: cli.route.a\n" in done.stdout and "UNROUTABLE" not in done.stdout
    answer = run_json(ferry_target, "route", "cli.route", "a.x")
    assert answer["queues"] == ["cli.route.a"] and answer["unroutable"] is False


def test_route_of_an_unroutable_message_says_so_and_exits_0(ferry_target: Target, ferry_channel: Any) -> None:
    ferry_channel.exchange_declare("cli.route.none", "direct")
    done = run(ferry_target, "route", "cli.route.none", "nobody")
    assert done.returncode == 0, done.stderr
    assert "queues: (none)" in done.stdout and "UNROUTABLE" in done.stdout


def test_route_sends_header_options_to_a_headers_exchange(ferry_target: Target, ferry_channel: Any) -> None:
    ferry_channel.exchange_declare("cli.route.h", "headers")
    ferry_channel.queue_declare("cli.route.h.q")
    ferry_channel.queue_bind("cli.route.h.q", "cli.route.h", "",
                             arguments={"x-match": "all", "kind": "invoice", "region": "eu"})
    both = run_json(ferry_target, "route", "cli.route.h", "", "--header", "kind=invoice",
                    "--header", "region=eu")
    assert both["queues"] == ["cli.route.h.q"]
    one = run_json(ferry_target, "route", "cli.route.h", "", "--header", "kind=invoice")
    assert one["queues"] == [] and one["unroutable"] is True


def test_route_through_the_default_exchange_uses_amq_default_in_the_path(ferry_target: Target,
                                                                         ferry_channel: Any) -> None:
    ferry_channel.queue_declare("cli.route.direct")
    assert run_json(ferry_target, "route", "", "cli.route.direct")["queues"] == ["cli.route.direct"]


def test_route_of_an_unknown_exchange_exits_1_with_the_reason(ferry_target: Target) -> None:
    done = run(ferry_target, "route", "cli.no-such-exchange", "k")
    assert done.returncode == 1 and "404" in done.stderr and len(done.stderr.splitlines()) == 1


def dead_letter(ch: Any, count: int) -> None:
    """``count`` messages rejected from cli.dlq.src into cli.dlq.dead through the fanout cli.dlx."""
    ch.exchange_declare("cli.dlx", "fanout")
    ch.queue_declare("cli.dlq.dead")
    ch.queue_bind("cli.dlq.dead", "cli.dlx")
    ch.queue_declare("cli.dlq.src", arguments={"x-dead-letter-exchange": "cli.dlx"})
    publish(ch, "cli.dlq.src", count)
    for _ in range(count):
        method, _props, _body = ch.basic_get("cli.dlq.src")
        ch.basic_reject(method.delivery_tag, requeue=False)
    assert eventually(lambda: ready(ch, "cli.dlq.dead"), lambda n: n == count) == count


def test_dlq_list_then_replay_moves_dead_letters_back_and_prints_before_and_after(
        ferry_target: Target, ferry_channel: Any) -> None:
    dead_letter(ferry_channel, 3)
    listed = {d["name"]: d for d in run_json(ferry_target, "dlq", "list")}
    assert listed["cli.dlq.dead"]["messages"] == 3
    assert listed["cli.dlq.dead"]["sources"] == ["cli.dlq.src"]
    table = run(ferry_target, "dlq", "list").stdout
    assert row_of(table, "cli.dlq.dead", column=1) == ["/", "cli.dlq.dead", "3", "cli.dlq.src"]
    done = run(ferry_target, "dlq", "replay", "cli.dlq.dead", "--count", "2")
    assert done.returncode == 0, done.stderr
    assert "replayed 2 message(s) from 'cli.dlq.dead'" in done.stdout
    assert "cli.dlq.dead (dead letters): 3 -> 1" in done.stdout
    assert "cli.dlq.src: 0 -> 2" in done.stdout
    assert (ready(ferry_channel, "cli.dlq.src"), ready(ferry_channel, "cli.dlq.dead")) == (2, 1)


def test_dlq_replay_of_an_unknown_queue_exits_1(ferry_target: Target) -> None:
    done = run(ferry_target, "dlq", "replay", "cli.no-such-dlq")
    assert done.returncode == 1 and "404" in done.stderr
