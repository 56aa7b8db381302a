"""TLS for every listener: one server SSLContext built from the settings, and one acceptor whose
failed handshakes are log lines naming the peer, the listener and the reason.

Why not ``create_server(ssl=...)``: there, a handshake that fails (the client distrusts our CA, our
certificate expired, an old protocol version) is reported only to asyncio's debug log, and the
operator never sees why a client cannot connect. The acceptor builds the loop's own TLS protocol
(uvloop's, as ``create_server`` would) itself, with a waiter that tells us how the handshake ended;
the application protocol is connected only once it succeeded, exactly as with ``ssl=``. (Not
``loop.start_tls`` on an accepted plain connection: uvloop starts reading after ``connection_made``,
so a ClientHello could reach the plain protocol before the upgrade.)
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import functools
import logging
import ssl
from collections.abc import Callable
from typing import Any

from ferrymq import limits
from ferrymq.config import Settings

log = logging.getLogger("ferrymq.tls")


class TlsConfigError(Exception):
    """A TLS setting that cannot be used (a missing file, a key that is not the certificate's): one line."""


def tls_wanted(settings: Settings) -> bool:
    return bool(settings.amqps_port or settings.kafka_ssl_port or settings.https_port)


def server_context(settings: Settings) -> ssl.SSLContext:
    """TLS 1.2+ with the ssl module's secure cipher defaults; client certificates verified against
    ``tls_ca_file`` when ``tls_verify_peer`` is on, and required with ``tls_fail_if_no_peer_cert``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, settings.tls_cert_file, settings.tls_key_file)
    if settings.tls_ca_file:
        _readable("tls_ca_file", settings.tls_ca_file)
        try:
            ctx.load_verify_locations(cafile=settings.tls_ca_file)
        except ssl.SSLError as exc:
            raise TlsConfigError(f"tls_ca_file {settings.tls_ca_file}: not PEM certificates "
                                 f"({exc.reason or exc})") from None
    if settings.tls_verify_peer:
        if not settings.tls_ca_file:
            raise TlsConfigError("tls_verify_peer needs tls_ca_file: the CA that signs client certificates")
        ctx.verify_mode = ssl.CERT_REQUIRED if settings.tls_fail_if_no_peer_cert else ssl.CERT_OPTIONAL
    elif settings.tls_fail_if_no_peer_cert:
        raise TlsConfigError("tls_fail_if_no_peer_cert needs tls_verify_peer = true")
    return ctx


def _load_chain(ctx: ssl.SSLContext, cert_file: str, key_file: str) -> None:
    """Each failure names the setting at fault: the certificate is tried alone before the pair."""
    _readable("tls_cert_file", cert_file)
    _readable("tls_key_file", key_file)
    try:
        ssl.create_default_context().load_verify_locations(cafile=cert_file)
    except ssl.SSLError as exc:
        raise TlsConfigError(f"tls_cert_file {cert_file}: not a PEM certificate "
                             f"({exc.reason or exc})") from None
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise TlsConfigError(f"tls_key_file {key_file} is not the key of tls_cert_file "
                                 f"{cert_file}") from None
        raise TlsConfigError(f"tls_key_file {key_file}: not a PEM private key "
                             f"({exc.reason or exc})") from None


def _readable(setting: str, path: str) -> None:
    if not path:
        raise TlsConfigError(f"{setting} is not set: a TLS listener needs tls_cert_file and tls_key_file "
                             "(`ferrymq certs` makes a development pair)")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise TlsConfigError(f"cannot read {setting} {path}: {exc.strerror or exc}") from None


def peer_common_name(transport: asyncio.BaseTransport) -> str | None:
    """The CN of a client certificate the handshake verified (None without one: ``getpeercert()``
    is empty for a certificate that was not verified)."""
    cert = transport.get_extra_info("peercert")
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


RDN_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
             "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST", "emailAddress": "E"}


def tls_details(transport: asyncio.BaseTransport | None) -> dict[str, Any]:
    """RabbitMQ's TLS fields of a connection in the management API (None on a plain one)."""
    obj = transport.get_extra_info("ssl_object") if transport is not None else None
    if obj is None:
        return {"ssl": False, "ssl_protocol": None, "ssl_cipher": None, "peer_cert_subject": None}
    cert = transport.get_extra_info("peercert") if transport is not None else None
    rdns = (cert or {}).get("subject", ())
    subject = ",".join(f"{RDN_SHORT.get(k, k)}={v}" for rdn in rdns for k, v in rdn)
    cipher = obj.cipher()
    return {"ssl": True, "ssl_protocol": (obj.version() or "").lower(),
            "ssl_cipher": cipher[0] if cipher else None, "peer_cert_subject": subject or None}


def acceptor(factory: Callable[[], asyncio.BaseProtocol], ctx: ssl.SSLContext,
             listener: str) -> Callable[[], asyncio.BaseProtocol]:
    """A protocol factory for ``loop.create_server``: ``factory``'s protocol behind the loop's own TLS
    protocol (uvloop's, else asyncio's), whose handshake result comes back to us in its waiter."""
    loop = asyncio.get_running_loop()
    cls = _handshake_logging(_ssl_protocol_class(loop))
    timeout_s = limits.TLS_HANDSHAKE_TIMEOUT_MS / 1000

    def make() -> asyncio.BaseProtocol:
        waiter = loop.create_future()
        proto = cls(loop, factory(), ctx, waiter, server_side=True, ssl_handshake_timeout=timeout_s)
        waiter.add_done_callback(lambda done: _handshake_done(done, proto, listener))
        return proto  # type: ignore[no-any-return]
    return make


def _ssl_protocol_class(loop: asyncio.AbstractEventLoop) -> type:
    try:
        import uvloop
        from uvloop.loop import SSLProtocol as UvSSLProtocol  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.sslproto.SSLProtocol
    return UvSSLProtocol if isinstance(loop, uvloop.Loop) else asyncio.sslproto.SSLProtocol


@functools.cache
def _handshake_logging(base: type) -> type:
    """``base`` remembering its peer's address, for the line a failed handshake logs."""
    class PeerKnown(base):  # type: ignore[misc, valid-type]
        peer = "?"

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            addr = transport.get_extra_info("peername")
            self.peer = f"{addr[0]}:{addr[1]}" if addr else "?"
            super().connection_made(transport)
    return PeerKnown


def _handshake_done(done: asyncio.Future[None], proto: Any, listener: str) -> None:
    exc = None if done.cancelled() else done.exception()
    if isinstance(exc, ConnectionError | ssl.SSLEOFError):  # a port probe, a client that gave up
        log.info("TLS handshake with %s on the %s listener: the peer closed the connection", proto.peer,
                 listener)
    elif exc is not None:
        log.warning("TLS handshake with %s on the %s listener failed: %s", proto.peer, listener, _reason(exc))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "no handshake within the timeout"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"{exc.reason.lower().replace('_', ' ')} ({exc.__class__.__name__})"
    return str(exc) or exc.__class__.__name__


async def create_server(factory: Callable[[], asyncio.BaseProtocol], host: str, port: int,
                        ctx: ssl.SSLContext | None, listener: str) -> asyncio.Server:
    """Every listener's socket, plain (``ctx`` None) or TLS, with the same options."""
    proto = acceptor(factory, ctx, listener) if ctx is not None else factory
    return await asyncio.get_running_loop().create_server(proto, host, port, reuse_address=True,
                                                          backlog=1024)
