"""SCRAM-SHA-256/512 (RFC 5802, RFC 7677): the server exchange and the broker's stored credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
import random

import pytest

from ferrymq.clock import ManualClock
from ferrymq.core.broker import Broker
from ferrymq.core.scram import ScramCredential, derive
from ferrymq.errors import AccessRefused
from ferrymq.protocols.sasl.scram import INVALID_USER, ScramError, ScramServer

# RFC 7677 section 3's exchange, user "user", password "pencil"
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_SNONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_CFIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_CFINAL = (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
              b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")


def rfc_server(user: str = "user") -> ScramServer:
    cred = derive("SCRAM-SHA-256", "pencil", RFC_SALT)
    return ScramServer("SCRAM-SHA-256", lambda u: cred if u == user else None, RFC_SNONCE)


def client_final(mechanism: str, password: str, cfirst_bare: str, sfirst: bytes) -> str:
    """An independent client (hashlib only) for the mechanisms RFC 7677 gives no vector for."""
    h = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[mechanism]
    attrs = dict(p.split("=", 1) for p in sfirst.decode().split(","))
    salted = hashlib.pbkdf2_hmac(h, password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    ckey = hmac.new(salted, b"Client Key", h).digest()
    without = f"c=biws,r={attrs['r']}"
    auth = f"{cfirst_bare},{sfirst.decode()},{without}".encode()
    sig = hmac.new(hashlib.new(h, ckey).digest(), auth, h).digest()
    return f"{without},p={base64.b64encode(bytes(a ^ b for a, b in zip(ckey, sig))).decode()}"


def test_rfc7677_exchange_gives_the_rfc_server_first_and_server_signature() -> None:
    server = rfc_server()
    assert server.receive(RFC_CFIRST) == (b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                          b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    assert server.receive(RFC_CFINAL) == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    assert server.username == "user"


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_a_right_password_is_proven_and_a_wrong_one_refused(mechanism: str) -> None:
    cred = derive(mechanism, "s3cret", b"0123456789abcdef")
    for password, ok in (("s3cret", True), ("wrong", False)):
        server = ScramServer(mechanism, lambda u: cred, "servernonce")
        sfirst = server.receive(b"n,,n=alice,r=clientnonce")
        final = client_final(mechanism, password, "n=alice,r=clientnonce", sfirst).encode()
        if ok:
            assert server.receive(final).startswith(b"v=")
        else:
            with pytest.raises(ScramError, match=f"invalid credentials with SASL mechanism {mechanism}"):
                server.receive(final)


def test_an_unknown_user_is_refused_at_the_first_message() -> None:
    with pytest.raises(ScramError, match=INVALID_USER):
        rfc_server(user="someone-else").receive(RFC_CFIRST)


@pytest.mark.parametrize("first", [b"p=tls-unique,,n=user,r=x", b"n,,r=x", b"n,,n=user,r=x,tokenauth=true",
                                   b"garbage", b"\xff\xfe"])
def test_malformed_or_unsupported_client_first_messages_are_refused(first: bytes) -> None:
    with pytest.raises(ScramError):
        rfc_server().receive(first)


def test_a_final_message_with_another_nonce_is_refused() -> None:
    server = rfc_server()
    server.receive(RFC_CFIRST)
    with pytest.raises(ScramError, match="nonce mismatch"):
        server.receive(RFC_CFINAL.replace(b"k0,", b"k1,"))


def test_escaped_usernames_are_unescaped() -> None:
    cred = derive("SCRAM-SHA-256", "pw", b"salt")
    seen: list[str] = []
    ScramServer("SCRAM-SHA-256", lambda u: seen.append(u) or cred, "n").receive(b"n,,n=a=2Cb=3Dc,r=x")
    assert seen == ["a,b=c"]


def test_credential_text_round_trips_in_kafkas_form() -> None:
    cred = derive("SCRAM-SHA-512", "pw", b"salt-bytes")
    text = cred.encode()
    assert text.startswith("salt=") and text.endswith(",iterations=4096")
    assert ScramCredential.decode(text) == cred


def broker(**kw: object) -> Broker:
    return Broker(ManualClock(), random.Random(7), **kw)  # type: ignore[arg-type]


def test_put_user_with_a_password_derives_both_mechanisms_and_a_hash_only_user_has_none() -> None:
    b = broker()
    b.put_user("alice", "s3cret")
    cred = b.scram_credential("alice", "SCRAM-SHA-256")
    assert cred is not None and cred == derive("SCRAM-SHA-256", "s3cret", cred.salt)
    assert b.scram_credential("alice", "SCRAM-SHA-512") is not None
    b.put_user("alice", password_hash="c2FsdGhhc2g=")
    assert b.scram_credential("alice", "SCRAM-SHA-256") is None


def test_a_configured_users_credential_comes_from_its_configured_password() -> None:
    b = broker(users={"guest": "guest", "bob": "pw"})
    cred = b.scram_credential("bob", "SCRAM-SHA-512")
    assert cred is not None and cred == derive("SCRAM-SHA-512", "pw", cred.salt)
    assert b.scram_credential("nobody", "SCRAM-SHA-256") is None


def test_admit_applies_the_loopback_rule_to_every_mechanism() -> None:
    b = broker()
    b.admit("guest", loopback=True)
    with pytest.raises(AccessRefused):
        b.admit("guest", loopback=False)
    with pytest.raises(AccessRefused):
        b.authenticate("guest", "guest", loopback=False)
    with pytest.raises(AccessRefused):
        b.admit("nobody", loopback=True)


def test_scram_credentials_are_stored_and_restored_with_the_user(tmp_path) -> None:
    from ferrymq.storage.metadata import Metadata

    store = Metadata(tmp_path, lambda path, args: None, lambda t: b"", lambda b: {})  # type: ignore[arg-type,return-value]
    b = broker(topology=store)
    b.put_user("alice", "s3cret")
    b.put_user("carol", password_hash="c2FsdGhhc2g=")
    top = store.load()
    store.close()
    again = broker()
    again.restore_access(top.vhosts, top.users, top.permissions)
    again.restore_scram(top.scram)
    assert again.scram_credential("alice", "SCRAM-SHA-256") == b.scram_credential("alice", "SCRAM-SHA-256")
    assert again.scram_credential("carol", "SCRAM-SHA-256") is None
