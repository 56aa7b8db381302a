"""Users, tags, vhosts and permissions enforced on a real broker by real clients: pika for AMQP,
requests for the HTTP API, boto3 for SQS, the `ferrymq` CLI in process. The AMQP answers expected
are the ones RabbitMQ 3.10 gives to the same table (tests/compat/test_differential_permissions.py
checks them against RabbitMQ itself)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pika
import pika.exceptions
import pytest
import requests
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from ferrymq.cli import app
from ferrymq.config import AwsAccessKey
from ferrymq.testing import EmbeddedBroker
from tests.support import permissions as table
from tests.support.sqs import QUIET, error_code

GUEST = ("guest", "guest")
FULL = {"configure": ".*", "write": ".*", "read": ".*"}


def _refused(kind: str, name: str) -> tuple[int, str]:
    return 403, f"ACCESS_REFUSED - access to {kind} '{name}' in vhost '/' refused for user 'perm-u'"


def _topic(key: str) -> tuple[int, str]:
    return 403, (f"ACCESS_REFUSED - access to topic '{key}' in exchange 'amq.topic' in vhost '/' refused "
                 "for user 'perm-u'")


OK = ("ok",)
# What RabbitMQ 3.10.8 answered to tests.support.permissions' table.
EXPECTED: dict[str, tuple[Any, ...]] = {
    "queue.declare own": OK, "queue.declare others'": _refused("queue", "shared-q"),
    "queue.declare amq.*": (403, "ACCESS_REFUSED - queue name 'amq.foo' contains reserved prefix 'amq.*'"),
    "queue.declare amq.* passive missing": (404, "NOT_FOUND - no queue 'amq.foo' in vhost '/'"),
    "queue.declare server-named": _refused("queue", "amq.gen-*"),
    "queue.declare passive others'": OK, "queue.declare dlx others'": _refused("exchange", "shared-x"),
    "queue.declare dlx not a string": (406, "PRECONDITION_FAILED - invalid type 'signedint' for arg "
                                            "'x-dead-letter-exchange' in queue 'u-dlq' in vhost '/'"),
    "queue.declare dlx a long": (406, "PRECONDITION_FAILED - invalid type 'long' for arg "
                                      "'x-dead-letter-exchange' in queue 'u-dlq' in vhost '/'"),
    "exchange.declare ae not a string": (406, "PRECONDITION_FAILED - invalid type 'signedint' for arg "
                                              "'alternate-exchange' in exchange 'u-ae' in vhost '/'"),
    "exchange.declare own": OK, "exchange.declare others'": _refused("exchange", "shared-x"),
    "exchange.declare amq.*": _refused("exchange", "amq.foo"),
    "exchange.declare passive amq.direct": OK,
    "exchange.declare ae others'": _refused("exchange", "shared-x"),
    "queue.bind to others' exchange": _refused("exchange", "shared-x"),
    "queue.bind others' queue": _refused("queue", "shared-q"),
    "queue.bind topic allowed key": OK, "queue.bind topic refused key": _topic("other.r"),
    "exchange.bind topic allowed": OK, "exchange.bind topic refused": _topic("perm-u.w"),
    "queue.unbind others' exchange": _refused("exchange", "shared-x"),
    "publish topic allowed key": OK, "publish topic refused key": _topic("other.k"),
    "publish others' exchange": _refused("exchange", "shared-x"), "publish default exchange": OK,
    "publish missing allowed exchange": (404, "NOT_FOUND - no exchange 'u-nope' in vhost '/'"),
    "publish missing refused exchange": _refused("exchange", "nope"),
    "consume others'": _refused("queue", "shared-q"), "consume own": OK,
    "get others'": _refused("queue", "shared-q"), "get own": OK,
    "purge others'": _refused("queue", "shared-q"), "purge own": OK,
    "queue.delete others'": _refused("queue", "shared-q"),
    "exchange.delete others'": _refused("exchange", "shared-x"),
    "exchange.delete amq.direct": (
        403, "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed"),
    "exchange.delete default": (403, "ACCESS_REFUSED - operation not permitted on the default exchange"),
    "queue.delete own": OK, "exchange.delete own": OK,
    "connection.open refused vhost": (
        530, "NOT_ALLOWED - access to vhost 'perm-other' refused for user 'perm-u'"),
    "connection.open missing vhost": (530, "NOT_ALLOWED - vhost perm-nowhere not found"),
}


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    keys = [AwsAccessKey("AKIWRITER", "w-secret", "sqs-writer", "/")]
    with EmbeddedBroker(aws_access_keys=keys) as b:
        table.setup(b.http_url + "/api")
        yield b


def api(b: EmbeddedBroker, method: str, path: str, auth: tuple[str, str] = GUEST,
        **kw: Any) -> requests.Response:
    return requests.request(method, f"{b.http_url}/api{path}", auth=auth, timeout=10, **kw)


def make_user(b: EmbeddedBroker, name: str, tags: str, vhosts: tuple[str, ...] = ("/",)) -> None:
    assert api(b, "PUT", f"/users/{name}", json={"password": "pw", "tags": tags}).status_code in (201, 204)
    for vhost in vhosts:
        r = api(b, "PUT", f"/permissions/{table.quoted(vhost)}/{name}", json=FULL)
        assert r.status_code in (201, 204)


# --- AMQP ------------------------------------------------------------------------------------------

def test_every_amqp_refusal_and_allowed_call_answers_as_rabbitmq(broker: EmbeddedBroker) -> None:
    got = table.run_table("127.0.0.1", broker.amqp_port)
    assert {k: v for k, v in got.items() if v != EXPECTED[k]} == {}


def test_a_permission_changed_live_applies_to_the_next_publish_on_an_open_channel(
        broker: EmbeddedBroker) -> None:
    make_user(broker, "live-u", "")
    params = pika.URLParameters(f"amqp://live-u:pw@127.0.0.1:{broker.amqp_port}/%2F")
    with pika.BlockingConnection(params) as conn:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("live-q")
        ch.basic_publish("", "live-q", b"allowed")  # confirmed: the decision is now cached
        assert api(broker, "PUT", "/permissions/%2F/live-u",
                   json={**FULL, "write": "^$"}).status_code == 204
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            ch.basic_publish("", "live-q", b"refused")
    assert (refused.value.reply_code, refused.value.reply_text) == (
        403, "ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'live-u'")


def test_guest_keeps_full_permissions_on_the_default_vhost(broker: EmbeddedBroker) -> None:
    assert api(broker, "GET", "/permissions/%2F/guest").json() == {"user": "guest", "vhost": "/", **FULL}
    url = f"amqp://guest:guest@127.0.0.1:{broker.amqp_port}/"
    with pika.BlockingConnection(pika.URLParameters(url)) as c:
        c.channel().queue_declare("guest-anything")


def test_only_an_impersonator_may_publish_with_another_users_user_id(broker: EmbeddedBroker) -> None:
    props = pika.BasicProperties(user_id="someone-else")
    for name, tags in (("imp-u", "impersonator"), ("plain-u", "")):
        make_user(broker, name, tags)
        url = f"amqp://{name}:pw@127.0.0.1:{broker.amqp_port}/%2F"
        with pika.BlockingConnection(pika.URLParameters(url)) as conn:
            ch = conn.channel()
            ch.confirm_delivery()
            if tags:
                ch.basic_publish("amq.topic", "k", b"as someone else", props)
                continue
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
                ch.basic_publish("amq.topic", "k", b"as someone else", props)
    assert refused.value.reply_code == 406


REFUSED = (401, "Access refused.")
# What RabbitMQ 3.10.8 answered to the table's declares naming a dead-letter or alternate exchange
# (a JSON integer is a long to RabbitMQ's management API).
EXPECTED_HTTP_DECLARES: dict[str, tuple[Any, ...]] = {
    "declare own queue dlx others'": REFUSED, "declare own queue dlx own": (201, None),
    "redeclare others' queue dlx others'": REFUSED, "declare own exchange ae others'": REFUSED,
    "declare own exchange ae own": (201, None), "declare own exchange ae default": (201, None),
    "declare others' exchange unknown type": (400, "unknown exchange type 'no-such'"),
    "declare own queue dlx not a string": (400, "invalid type 'long' for arg 'x-dead-letter-exchange' in "
                                                "queue 'u-hdlq3' in vhost '/'"),
    "declare own exchange ae not a string": (400, "invalid type 'long' for arg 'alternate-exchange' in "
                                                  "exchange 'u-hae3' in vhost '/'"),
    "readless declare queue": (201, None), "readless declare queue dlx": REFUSED,
    "readless declare exchange": (201, None), "readless declare exchange ae": REFUSED,
}


def test_http_declares_check_the_dead_letter_and_alternate_exchange_as_amqp_does(
        broker: EmbeddedBroker) -> None:
    got = table.run_http_table(broker.http_url + "/api")
    assert {k: got[k] for k in EXPECTED_HTTP_DECLARES} == EXPECTED_HTTP_DECLARES
    vh = broker.running.broker.vhosts["/"]
    assert "u-hdlq" in vh.queues and vh.queues["u-hdlq"].arguments == {"x-dead-letter-exchange": "u-hx"}
    assert "r-dlq" not in vh.queues and "r-ae" not in vh.exchanges


# --- HTTP API: tags --------------------------------------------------------------------------------

def test_a_user_without_tags_may_not_use_the_http_api(broker: EmbeddedBroker) -> None:
    r = api(broker, "GET", "/overview", auth=(table.USER, table.PASSWORD))
    assert (r.status_code, r.json()) == (401, {"error": "not_authorised", "reason": "Not management user"})


def test_a_management_user_sees_only_its_vhosts(broker: EmbeddedBroker) -> None:
    make_user(broker, "mgmt-u", "management")
    auth = ("mgmt-u", "pw")
    assert api(broker, "GET", "/whoami", auth=auth).json() == {"name": "mgmt-u", "tags": ["management"]}
    assert {q["vhost"] for q in api(broker, "GET", "/queues", auth=auth).json()} == {"/"}
    assert [v["name"] for v in api(broker, "GET", "/vhosts", auth=auth).json()] == ["/"]
    r = api(broker, "GET", "/queues/perm-other", auth=auth)
    assert (r.status_code, r.json()["reason"]) == (401, "User not authorised to access virtual host")
    for method, path in (("GET", "/users"), ("GET", "/permissions"), ("PUT", "/vhosts/mine"),
                         ("GET", "/definitions")):
        r = api(broker, method, path, auth=auth, json={})
        assert (r.status_code, r.json()["reason"]) == (401, "Not administrator user"), path
    r = api(broker, "PUT", "/policies/%2F/p", auth=auth, json={"pattern": "^x", "definition": {}})
    assert (r.status_code, r.json()["reason"]) == (401, "User not authorised to access object")


def test_monitoring_reads_every_vhost_and_policymaker_sets_policies(broker: EmbeddedBroker) -> None:
    make_user(broker, "mon-u", "monitoring")
    assert "perm-other" in {v["name"] for v in api(broker, "GET", "/vhosts", auth=("mon-u", "pw")).json()}
    assert api(broker, "GET", "/queues/perm-other", auth=("mon-u", "pw")).status_code == 200
    make_user(broker, "pol-u", "policymaker")
    policy = {"pattern": "^pol-", "definition": {"max-length": 5}, "apply-to": "queues"}
    assert api(broker, "PUT", "/policies/%2F/pol-p", auth=("pol-u", "pw"), json=policy).status_code == 201
    assert api(broker, "DELETE", "/policies/%2F/pol-p", auth=("pol-u", "pw")).status_code == 204


def test_users_carry_tags_hashes_and_topic_permissions_in_the_api_and_definitions(
        broker: EmbeddedBroker) -> None:
    shown = api(broker, "GET", f"/users/{table.USER}").json()
    assert shown["tags"] == [] and shown["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    mine = api(broker, "GET", f"/topic-permissions/%2F/{table.USER}").json()
    assert mine == [{"user": table.USER, "vhost": "/", **table.TOPIC}]
    assert api(broker, "GET", f"/users/{table.USER}/topic-permissions").json() == mine
    defs = api(broker, "GET", "/definitions").json()
    assert mine[0] in defs["topic_permissions"]
    assert {"user": table.USER, "vhost": "/", **table.PERMISSION} in defs["permissions"]
    assert next(u for u in defs["users"] if u["name"] == "mon-u" or u["name"] == "guest")["tags"]


def test_definitions_import_restores_tags_permissions_and_topic_permissions(tmp_path: Path) -> None:
    defs = {"users": [{"name": "imp", "password": "pw", "tags": "management,policymaker"}],
            "vhosts": [{"name": "imp-v"}],
            "permissions": [{"user": "imp", "vhost": "imp-v", "configure": "", "write": "^w", "read": ".*"}],
            "topic_permissions": [{"user": "imp", "vhost": "imp-v", "exchange": "amq.topic",
                                   "write": "^a", "read": "^b"}]}
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        assert api(b, "POST", "/definitions", json=defs).status_code == 204
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:  # and all of it survives a restart
        assert api(b, "GET", "/whoami", auth=("imp", "pw")).json()["tags"] == ["management", "policymaker"]
        assert api(b, "GET", "/permissions/imp-v/imp").json()["write"] == "^w"
        assert api(b, "GET", "/topic-permissions/imp-v/imp").json()[0]["read"] == "^b"
        url = f"amqp://imp:pw@127.0.0.1:{b.amqp_port}/imp-v"
        with (pika.BlockingConnection(pika.URLParameters(url)) as c,
              pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused):
            c.channel().queue_declare("anything")  # configure "" matches nothing
    assert refused.value.reply_code == 403


# --- SQS: access keys act as their user -----------------------------------------------------------

def test_an_sqs_key_acts_as_its_user_with_rabbitmqs_permissions(broker: EmbeddedBroker) -> None:
    assert api(broker, "PUT", "/users/sqs-writer", json={"password": "pw", "tags": ""}).status_code == 201
    assert api(broker, "PUT", "/queues/%2F/jobs-q", json={}).status_code == 201
    perm = {"configure": "^mine-", "write": "^jobs-", "read": "^mine-"}
    assert api(broker, "PUT", "/permissions/%2F/sqs-writer", json=perm).status_code == 201
    sqs = boto3.client("sqs", endpoint_url=broker.http_url, region_name="us-east-1", config=QUIET,
                       aws_access_key_id="AKIWRITER", aws_secret_access_key="w-secret")
    url = sqs.get_queue_url(QueueName="jobs-q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="allowed")
    with pytest.raises(ClientError) as receive:
        sqs.receive_message(QueueUrl=url)
    assert error_code(receive.value) == "AccessDenied"
    assert receive.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "is not authorized to perform: sqs:ReceiveMessage" in receive.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as create:
        sqs.create_queue(QueueName="jobs-new")
    assert error_code(create.value) == "AccessDenied"
    assert sqs.create_queue(QueueName="mine-new")["QueueUrl"].endswith("/mine-new")


# --- CLI -------------------------------------------------------------------------------------------

def test_the_cli_manages_users_vhosts_and_permissions(broker: EmbeddedBroker) -> None:
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, [*args, "--url", broker.http_url])

    assert run("users", "add", "cli-u", "cli-pw", "management").exit_code == 0
    assert run("vhosts", "add", "cli-v").exit_code == 0
    assert api(broker, "GET", "/permissions/cli-v/guest").json()["configure"] == ".*"  # its creator's
    assert run("permissions", "set", "cli-u", "^c", "^w", "^r", "--vhost", "cli-v").exit_code == 0
    assert "cli-v" in run("permissions", "list", "--vhost", "cli-v", "--json").stdout
    assert run("users", "set-tags", "cli-u", "monitoring", "policymaker").exit_code == 0
    assert api(broker, "GET", "/whoami", auth=("cli-u", "pw")).status_code == 401  # not its password
    assert run("users", "change-password", "cli-u", "pw").exit_code == 0
    assert api(broker, "GET", "/whoami", auth=("cli-u", "pw")).json()["tags"] == ["monitoring", "policymaker"]
    assert '"cli-u"' in run("users", "list", "--json").stdout
    assert run("permissions", "clear", "cli-u", "--vhost", "cli-v").exit_code == 0
    assert run("vhosts", "delete", "cli-v").exit_code == 0
    assert run("users", "delete", "cli-u").exit_code == 0
    missing = run("users", "delete", "cli-u")
    assert missing.exit_code == 1 and len(missing.stderr.strip().splitlines()) == 1
    assert run("users", "set-tags", "x", "wizard").exit_code == 2


@pytest.mark.parametrize("noun", ["permissions", "topic-permissions"])
def test_both_grant_lists_filter_by_user_and_vhost_and_refuse_unknown_ones(broker: EmbeddedBroker,
                                                                          noun: str) -> None:
    every = api(broker, "GET", f"/{noun}").json()
    assert any(g["user"] == table.USER for g in every)
    mine = api(broker, "GET", f"/users/{table.USER}/{noun}").json()
    assert mine and mine == [g for g in every if g["user"] == table.USER]
    root = api(broker, "GET", f"/vhosts/%2F/{noun}").json()
    assert root == [g for g in every if g["vhost"] == "/"]
    assert api(broker, "GET", f"/vhosts/perm-other/{noun}").json() == [
        g for g in every if g["vhost"] == "perm-other"]
    assert api(broker, "GET", f"/users/nobody-here/{noun}").status_code == 404
    assert api(broker, "GET", f"/vhosts/nowhere/{noun}").status_code == 404
