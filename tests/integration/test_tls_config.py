"""TLS settings a user gets wrong: one line at startup naming the setting, no traceback; and
`ferrymq certs`, which writes a CA, a server and a client certificate with private keys 0600."""

from __future__ import annotations

import ssl
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ferrymq.config import Settings
from ferrymq.server.tls import TlsConfigError, server_context
from tests.support.tls import DevCerts, module_fixtures

pytestmark = pytest.mark.timeout(60)

dev, _ = module_fixtures()


def _settings(dev: DevCerts, **kw: object) -> Settings:
    s = Settings(amqps_port=5671, tls_cert_file=str(dev.server), tls_key_file=str(dev.server_key))
    s.update(kw)
    return s


def test_the_server_context_refuses_anything_older_than_tls_1_2(dev):
    ctx = server_context(_settings(dev))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2 and ctx.verify_mode == ssl.CERT_NONE


def test_verify_peer_asks_for_a_certificate_and_fail_if_no_peer_cert_requires_one(dev):
    assert server_context(_settings(dev, tls_ca_file=str(dev.ca), tls_verify_peer=True)).verify_mode \
        == ssl.CERT_OPTIONAL
    strict = _settings(dev, tls_ca_file=str(dev.ca), tls_verify_peer=True, tls_fail_if_no_peer_cert=True)
    assert server_context(strict).verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(("change", "named"), [
    ({"tls_cert_file": "/nonexistent/server.pem"}, "cannot read tls_cert_file /nonexistent/server.pem"),
    ({"tls_key_file": ""}, "tls_key_file is not set"),
    ({"tls_verify_peer": True}, "tls_verify_peer needs tls_ca_file"),
    ({"tls_fail_if_no_peer_cert": True}, "tls_fail_if_no_peer_cert needs tls_verify_peer"),
])
def test_a_bad_tls_setting_is_one_error_naming_it(dev, change, named):
    with pytest.raises(TlsConfigError, match=named):
        server_context(_settings(dev, **change))


def test_a_key_that_is_not_the_certificates_is_named_as_such(dev):
    with pytest.raises(TlsConfigError, match=r"tls_key_file .*client\.key is not the key of tls_cert_file"):
        server_context(_settings(dev, tls_key_file=str(dev.client_key)))


def test_a_key_file_holding_a_certificate_is_named(dev):
    with pytest.raises(TlsConfigError, match=r"tls_key_file .*: not a PEM private key"):
        server_context(_settings(dev, tls_key_file=str(dev.ca)))


def test_a_cert_file_holding_a_key_is_named(dev):
    with pytest.raises(TlsConfigError, match=r"tls_cert_file .*: not a PEM certificate"):
        server_context(_settings(dev, tls_cert_file=str(dev.server_key)))


def test_serve_with_a_mismatched_key_prints_one_line_and_no_traceback(dev, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "ferrymq.cli", "serve", "--data-dir", str(tmp_path / "d"), "--amqp-port", "0",
         "--kafka-port", "0", "--http-port", "0", "--amqps-port", "0", "--https-port", "-1"],
        env={"FERRYMQ_TLS_CERT_FILE": str(dev.server), "FERRYMQ_TLS_KEY_FILE": str(dev.client_key),
             "PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("ferrymq:")]
    assert len(lines) == 1 and "is not the key of tls_cert_file" in lines[0], done.stderr


def test_ferrymq_certs_writes_a_ca_server_and_client_pair_with_private_keys_0600(tmp_path):
    out = tmp_path / "c"
    done = subprocess.run(
        [sys.executable, "-m", "ferrymq.cli", "certs", "--dir", str(out), "--hostname", "broker.test",
         "--hostname", "10.1.2.3", "--days", "30", "--client", "bob"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for key in ("ca.key", "server.key", "client.key"):
        assert stat.S_IMODE((out / key).stat().st_mode) == 0o600
    assert f'tls_cert_file = "{out / "server.pem"}"' in done.stdout
    assert "tls_verify_peer = true" in done.stdout
    from cryptography import x509
    server = x509.load_pem_x509_certificate((out / "server.pem").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["broker.test"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    assert (server.not_valid_after_utc - server.not_valid_before_utc).days == 30
    ctx = ssl.create_default_context(cafile=str(out / "ca.pem"))  # the server chain verifies against it
    ctx.load_cert_chain(str(out / "client.pem"), str(out / "client.key"))


def test_ferrymq_certs_refuses_zero_days_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ferrymq.cli", "certs", "--dir", str(tmp_path),
                           "--days", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "--days" in done.stderr
