"""Certificates and a TLS-enabled broker for the TLS tests: made with ferrymq.certs, the code behind
`ferrymq certs`, so the tests use what a developer gets."""

from __future__ import annotations

import datetime as dt
import logging
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ferrymq import certs
from ferrymq.testing import EmbeddedBroker

CLIENT_USER = "alice"  # the CN of the client certificate, a user of the broker (SASL EXTERNAL)


@dataclass(frozen=True)
class DevCerts:
    dir: Path
    ca: Path
    server: Path
    server_key: Path
    client: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing the broker shows: clients trusting it must refuse us


def make_dev_certs(directory: Path) -> DevCerts:
    now = dt.datetime.now(dt.UTC)
    paths = certs.write_dev_certs(directory, certs.DEFAULT_HOSTNAMES, 2, now, CLIENT_USER)
    other = certs.new_ca("Someone else's CA", now, 2)
    other_ca, _ = certs.write(other, directory, "other-ca")
    return DevCerts(directory, paths["ca"], paths["server"], paths["server_key"], paths["client"],
                    paths["client_key"], other_ca)


def write_expired_server_cert(dev: DevCerts, directory: Path) -> tuple[Path, Path]:
    """A server certificate from the same CA whose validity ended yesterday."""
    ca = certs.Issued(_load_cert(dev.ca), _load_key(dev.dir / "ca.key"))
    now = dt.datetime.now(dt.UTC)
    expired = certs.issue(ca, "localhost", hostnames=certs.DEFAULT_HOSTNAMES,
                          not_before=now - dt.timedelta(days=10), not_after=now - dt.timedelta(days=1))
    return certs.write(expired, directory, "expired")


def _load_cert(path: Path) -> Any:
    from cryptography import x509
    return x509.load_pem_x509_certificate(path.read_bytes())


def _load_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def tls_settings(dev: DevCerts, **extra: Any) -> dict[str, Any]:
    """Every TLS listener on a free port, client certificates verified when presented."""
    return {"amqps_port": -1, "kafka_ssl_port": -1, "https_port": -1,
            "tls_cert_file": str(dev.server), "tls_key_file": str(dev.server_key),
            "tls_ca_file": str(dev.ca), "tls_verify_peer": True,
            "users": {"guest": "guest", CLIENT_USER: "not-used-by-external"}, **extra}


def client_context(ca: Path, *, cert: bool = False, dev: DevCerts | None = None) -> ssl.SSLContext:
    """What a client builds: verification on, the given CA trusted, optionally our client cert."""
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert:
        assert dev is not None
        ctx.load_cert_chain(str(dev.client), str(dev.client_key))
    return ctx


@contextmanager
def tls_broker(dev: DevCerts, **extra: Any) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(**tls_settings(dev, **extra)) as broker:
        yield broker


def handshake_failures(records: list[logging.LogRecord], listener: str) -> list[str]:
    """The broker's log lines for failed TLS handshakes on ``listener``."""
    return [r.getMessage() for r in records if r.name == "ferrymq.tls"
            and f"on the {listener} listener failed" in r.getMessage()]


def wait_for_handshake_failure(caplog: Any, listener: str) -> list[str]:
    """The broker logs from its own thread, a moment after the client gave up: wait for the line."""
    deadline = time.monotonic() + 10
    while not handshake_failures(caplog.records, listener) and time.monotonic() < deadline:
        time.sleep(0.02)
    return handshake_failures(caplog.records, listener)


# --- fixtures ---------------------------------------------------------------------------------


def module_fixtures() -> tuple[Any, Any]:
    """``dev, broker = module_fixtures()`` in a test module: a development CA, server and client
    certificate (and a stranger CA), and one broker with every TLS listener on, client
    certificates verified when presented; both for the module."""
    @pytest.fixture(scope="module", name="dev")
    def dev_fixture(tmp_path_factory: pytest.TempPathFactory) -> DevCerts:
        return make_dev_certs(tmp_path_factory.mktemp("certs"))

    @pytest.fixture(scope="module", name="broker")
    def broker_fixture(dev: DevCerts) -> Iterator[EmbeddedBroker]:
        with tls_broker(dev) as b:
            yield b
    return dev_fixture, broker_fixture
