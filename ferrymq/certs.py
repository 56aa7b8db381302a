"""`ferrymq certs`: a local certificate authority and the certificates it signs, for development.

Why a CA and not one self-signed certificate: clients verify the server against a CA file
(``ssl_ca_file``, ``ssl.cafile``, ``verify=``) exactly as they will in production, and the same CA
signs client certificates for ``tls_verify_peer`` and SASL EXTERNAL. Keys are ECDSA P-256: small,
fast to sign and to handshake, and accepted by every client tested (pika, kombu, aiokafka,
librdkafka, urllib3).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTNAMES = ("localhost", "127.0.0.1", "::1")
DEFAULT_DAYS = 365
CLOCK_SKEW = dt.timedelta(minutes=5)  # a certificate valid from "now" fails on a peer a little behind


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def new_ca(common_name: str, now: dt.datetime, days: int) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = _builder(name, name, key, now - CLOCK_SKEW, now + dt.timedelta(days=days))
    builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    builder = builder.add_extension(_usage(cert_sign=True), critical=True)
    return Issued(builder.sign(key, hashes.SHA256()), key)


def issue(ca: Issued, common_name: str, *, hostnames: tuple[str, ...] = (), client: bool = False,
          not_before: dt.datetime, not_after: dt.datetime) -> Issued:
    """A leaf certificate signed by ``ca``: a server one (with ``hostnames`` as subject alternative
    names) or a client one (its common name is the user name for SASL EXTERNAL)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = _builder(name, ca.cert.subject, key, not_before, not_after)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    builder = builder.add_extension(_usage(cert_sign=False), critical=True)
    purpose = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
    if hostnames:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hostnames]),
                                        critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
             not_before: dt.datetime, not_after: dt.datetime) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after))


def _usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=not cert_sign,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
                         crl_sign=cert_sign, encipher_only=False, decipher_only=False)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def write(issued: Issued, directory: Path, stem: str) -> tuple[Path, Path]:
    """``stem.pem`` (0644) and ``stem.key`` (0600, created so: never readable by others, even briefly)."""
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
    key_bytes = issued.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    os.chmod(key_path, 0o600)  # an existing file keeps its mode through O_CREAT
    return cert_path, key_path


def write_dev_certs(directory: Path, hostnames: tuple[str, ...], days: int, now: dt.datetime,
                    client_name: str | None = None) -> dict[str, Path]:
    """ca.pem/ca.key, server.pem/server.key and, if ``client_name``, client.pem/client.key."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = new_ca("FerryMQ development CA", now, days)
    paths = dict(zip(("ca", "ca_key"), write(ca, directory, "ca"), strict=True))
    start, end = now - CLOCK_SKEW, now + dt.timedelta(days=days)
    server = issue(ca, hostnames[0], hostnames=hostnames, not_before=start, not_after=end)
    paths.update(zip(("server", "server_key"), write(server, directory, "server"), strict=True))
    if client_name:
        client = issue(ca, client_name, client=True, not_before=start, not_after=end)
        paths.update(zip(("client", "client_key"), write(client, directory, "client"), strict=True))
    return paths


def settings_text(paths: dict[str, Path]) -> str:
    """What to put in ferrymq.toml to use them (printed by `ferrymq certs`)."""
    lines = ["# ferrymq.toml", "amqps_port = 5671", "kafka_ssl_port = 9093", "https_port = 15671",
             f'tls_cert_file = "{paths["server"].resolve()}"',
             f'tls_key_file = "{paths["server_key"].resolve()}"',
             f'tls_ca_file = "{paths["ca"].resolve()}"']
    if "client" in paths:
        lines += ["tls_verify_peer = true  # client certificates verified; SASL EXTERNAL offered",
                  f"# client certificate: {paths['client'].resolve()}, key {paths['client_key'].resolve()}"]
    lines.append(f"# clients trust the CA: {paths['ca'].resolve()}")
    return "\n".join(lines)
