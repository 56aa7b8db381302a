"""FerryMQ's own client (the bench's) over amqps://: it verifies the server with the URL's
cacertfile, and keeps the plain socket's read contract the bench's hot loops rely on."""

from __future__ import annotations

import socket
import ssl

import pytest
from pamqp import commands as c

from ferrymq.client.connection import AmqpUrl, Client, set_recv_timeout
from tests.support.tls import module_fixtures

pytestmark = pytest.mark.timeout(60)

dev, broker = module_fixtures()


def test_an_amqps_url_defaults_to_5671_and_carries_rabbitmqs_tls_query_parameters():
    url = AmqpUrl.parse("amqps://u:p@broker.test/%2F?cacertfile=/ca.pem&certfile=/c.pem&keyfile=/c.key")
    assert (url.tls, url.port, url.cacertfile, url.certfile, url.keyfile, url.server_name) == \
        (True, 5671, "/ca.pem", "/c.pem", "/c.key", "broker.test")
    assert not AmqpUrl.parse("amqp://u:p@h/%2F").tls


def test_the_client_publishes_with_confirms_over_amqps(broker, dev):
    client = Client(f"amqps://guest:guest@localhost:{broker.amqps_port}/%2F?cacertfile={dev.ca}").open()
    client.declare_queue("bench-tls", durable=False)
    client.confirm_select()
    client.send(c.Basic.Publish(exchange="", routing_key="bench-tls"))
    assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
    client.close()


def test_an_idle_tls_read_raises_blocking_io_error_instead_of_spinning(broker, dev):
    client = Client(f"amqps://guest:guest@localhost:{broker.amqps_port}/%2F?cacertfile={dev.ca}").open()
    set_recv_timeout(client.sock, 0.05)  # as the bench's loops do, before their first read
    with pytest.raises(BlockingIOError):
        client.sock.recv(1024, socket.MSG_DONTWAIT)
    with pytest.raises(BlockingIOError):
        client.sock.recv(1024)
    client.close()


def test_the_client_refuses_a_server_its_ca_did_not_sign(broker, dev):
    with pytest.raises(ssl.SSLCertVerificationError):
        Client(f"amqps://guest:guest@localhost:{broker.amqps_port}/%2F?cacertfile={dev.other_ca}")


def _open_and_confirm(url: str) -> str:
    client = Client(url).open()
    client.confirm_select()
    version = client.sock.version()
    client.close()
    return str(version)


def test_the_ferrymq_tls_bench_target_serves_amqps_with_a_ca_the_url_names():
    from ferrymq.bench.targets import open_target

    with open_target("ferrymq-tls") as target:
        assert target.url.startswith("amqps://guest:guest@localhost:")
        assert "cacertfile=" in target.url and target.info["tls"] is True
        assert _open_and_confirm(target.url) in ("TLSv1.2", "TLSv1.3")


def test_the_rabbitmq_tls_bench_target_serves_amqps():
    from ferrymq.bench.rabbitmq_node import available
    from ferrymq.bench.targets import open_target

    if not available():
        pytest.skip("rabbitmq-server not installed")
    with open_target("rabbitmq-tls") as target:
        assert _open_and_confirm(target.url) in ("TLSv1.2", "TLSv1.3")
