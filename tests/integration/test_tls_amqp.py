"""AMQPS: pika over TLS with verification on; a wrong CA, an expired certificate and TLS 1.1 refused
with a client-side error and a broker log line; SASL EXTERNAL from a verified client certificate."""

from __future__ import annotations

import logging
import socket
import ssl
from pathlib import Path

import pika
import pytest
import requests
from pamqp import commands, frame

from ferrymq.testing import EmbeddedBroker
from tests.support.tls import (
    CLIENT_USER,
    client_context,
    module_fixtures,
    tls_broker,
    wait_for_handshake_failure,
    write_expired_server_cert,
)

pytestmark = pytest.mark.timeout(60)

dev, broker = module_fixtures()


def _params(broker: EmbeddedBroker, ctx: ssl.SSLContext, **kw: object) -> pika.ConnectionParameters:
    return pika.ConnectionParameters("localhost", broker.amqps_port, connection_attempts=1,
                                     ssl_options=pika.SSLOptions(ctx, "localhost"), **kw)  # type: ignore[arg-type]


def test_pika_publishes_with_confirms_and_consumes_over_amqps_with_verification_on(broker, dev):
    conn = pika.BlockingConnection(_params(broker, client_context(dev.ca)))
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare("tls-q")
    for n in range(20):
        ch.basic_publish("", "tls-q", f"m{n}".encode())
    got = [ch.basic_get("tls-q", auto_ack=True)[2] for _ in range(20)]
    assert conn._impl._transport._sock.version() in ("TLSv1.2", "TLSv1.3")
    conn.close()
    assert got == [f"m{n}".encode() for n in range(20)]


def test_plain_amqp_port_keeps_working_beside_amqps(broker):
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    assert conn.is_open
    conn.close()


def test_a_client_trusting_another_ca_fails_verification_and_the_broker_logs_it(broker, dev, caplog):
    caplog.set_level(logging.WARNING, logger="ferrymq.tls")
    with pytest.raises(ssl.SSLCertVerificationError) as failure:  # pika raises the ssl module's error
        pika.BlockingConnection(_params(broker, client_context(dev.other_ca)))
    assert "CERTIFICATE_VERIFY_FAILED" in str(failure.value)
    lines = wait_for_handshake_failure(caplog, "AMQPS")
    assert lines and "unknown ca" in lines[0]


def test_an_expired_server_certificate_fails_on_the_client_and_is_logged(dev, tmp_path, caplog):
    cert, key = write_expired_server_cert(dev, tmp_path)
    caplog.set_level(logging.WARNING, logger="ferrymq.tls")
    with tls_broker(dev, tls_cert_file=str(cert), tls_key_file=str(key)) as expired:
        with pytest.raises(ssl.SSLCertVerificationError) as failure:
            _handshake(expired.amqps_port, client_context(dev.ca))
        lines = wait_for_handshake_failure(caplog, "AMQPS")
    assert "certificate has expired" in str(failure.value)
    assert lines and "certificate expired" in lines[0]


def _capped_at(version: ssl.TLSVersion, ca: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(ca))
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this OpenSSL offer TLS 1.1 at all
    ctx.minimum_version, ctx.maximum_version = ssl.TLSVersion.TLSv1_1, version
    return ctx


def _handshake(port: int, ctx: ssl.SSLContext) -> str | None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        return tls.version()


def test_a_tls_1_1_client_is_refused_and_the_same_client_at_1_2_is_not(broker, dev, caplog):
    caplog.set_level(logging.WARNING, logger="ferrymq.tls")
    # The broker's protocol_version alert does not reach the client (the event loop's TLS protocol
    # closes the socket as the handshake fails): the client sees the connection end mid-handshake.
    with pytest.raises(ssl.SSLError):
        _handshake(broker.amqps_port, _capped_at(ssl.TLSVersion.TLSv1_1, dev.ca))
    lines = wait_for_handshake_failure(caplog, "AMQPS")
    assert lines and "unsupported protocol" in lines[0]
    assert _handshake(broker.amqps_port, _capped_at(ssl.TLSVersion.TLSv1_2, dev.ca)) == "TLSv1.2"


def _mechanisms(port: int, ctx: ssl.SSLContext) -> str:
    """The mechanisms field of connection.start, read off the wire."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"AMQP\x00\x00\x09\x01")
        data = b""
        while len(data) < 8 or len(data) < 8 + int.from_bytes(data[3:7], "big"):
            data += tls.recv(65536)
    _, _, start = frame.unmarshal(data)
    assert isinstance(start, commands.Connection.Start)
    return start.mechanisms


def test_external_is_offered_only_with_a_verified_client_certificate(broker, dev):
    assert _mechanisms(broker.amqps_port, client_context(dev.ca, cert=True, dev=dev)).split()[0] == "EXTERNAL"
    assert "EXTERNAL" not in _mechanisms(broker.amqps_port, client_context(dev.ca)).split()


def test_pika_logs_in_with_external_as_the_client_certificates_common_name(broker, dev):
    ctx = client_context(dev.ca, cert=True, dev=dev)
    conn = pika.BlockingConnection(_params(broker, ctx, credentials=pika.credentials.ExternalCredentials()))
    conn.channel().queue_declare("external-q")
    listed = requests.get(f"https://localhost:{broker.https_port}/api/connections", auth=("guest", "guest"),
                          verify=str(dev.ca), timeout=10).json()
    conn.close()
    [row] = [c for c in listed if c.get("auth_mechanism") == "EXTERNAL"]
    assert (row["user"], row["auth_mechanism"], row["ssl"], row["peer_cert_subject"]) == \
        (CLIENT_USER, "EXTERNAL", True, f"CN={CLIENT_USER}")
    assert row["ssl_protocol"] in ("tlsv1.2", "tlsv1.3") and row["ssl_cipher"]


def test_external_for_a_certificate_whose_name_is_no_user_is_refused(dev, tmp_path):
    with tls_broker(dev, users={"guest": "guest"}) as b:
        ctx = client_context(dev.ca, cert=True, dev=dev)
        with pytest.raises(pika.exceptions.ProbableAuthenticationError) as refused:
            pika.BlockingConnection(_params(b, ctx, credentials=pika.credentials.ExternalCredentials()))
    assert "ACCESS_REFUSED" in str(refused.value) and "EXTERNAL" in str(refused.value)


def test_fail_if_no_peer_cert_refuses_a_client_without_one(dev, caplog):
    caplog.set_level(logging.WARNING, logger="ferrymq.tls")
    with tls_broker(dev, tls_fail_if_no_peer_cert=True) as strict:
        with pytest.raises(pika.exceptions.AMQPConnectionError):
            pika.BlockingConnection(_params(strict, client_context(dev.ca)))
        lines = wait_for_handshake_failure(caplog, "AMQPS")
        with_cert = pika.BlockingConnection(_params(strict, client_context(dev.ca, cert=True, dev=dev)))
        assert with_cert.is_open
        with_cert.close()
    assert lines and "certificate" in lines[0]
