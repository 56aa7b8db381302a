"""Kafka's SCRAM admin APIs on the broker's stored credentials: confluent-kafka's AdminClient and
kafka-python's KafkaAdminClient describe and alter them; a credential set this way logs a
confluent-kafka consumer in with SCRAM-SHA-512, a deleted one no longer does; Kafka's errors for
unknown users, duplicates, unknown mechanisms, iteration bounds and non-administrators."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from kafka.admin import KafkaAdminClient
from kafka.admin._users import ScramMechanism as PyScramMechanism
from kafka.admin._users import UserScramCredentialDeletion as PyDeletion
from kafka.admin._users import UserScramCredentialUpsertion as PyUpsertion
from kafka.errors import KafkaError as KafkaPythonError

from ferrymq.core.scram import salted_password
from ferrymq.protocols.kafka import errors, versions
from ferrymq.testing import EmbeddedBroker
from tests.support.kafka import Raw

pytestmark = pytest.mark.timeout(60)
FULL = {"configure": ".*", "write": ".*", "read": ".*"}
SHA512 = ScramMechanism.SCRAM_SHA_512


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        core = b.running.broker  # type: ignore[union-attr]
        for user in ("alice", "mallory"):
            b.call(core.put_user, user, f"{user}-pw")
            b.call(core.set_permission, "/", user, FULL)
        yield b


def _admin(broker: EmbeddedBroker) -> AdminClient:
    return AdminClient({"bootstrap.servers": f"127.0.0.1:{broker.kafka_port}"})  # anonymous: guest


def _login_error(broker: EmbeddedBroker, user: str, password: str, topic: str) -> str:
    """'' when a SCRAM-SHA-512 consumer logs in and reads the topic's record, else librdkafka's
    authentication error."""
    seen: list[KafkaError] = []
    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{broker.kafka_port}",
                         "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-512",
                         "sasl.username": user, "sasl.password": password, "group.id": f"g-{topic}",
                         "auto.offset.reset": "earliest", "error_cb": seen.append})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                return "" if msg.value() == b"scram" else f"unexpected {msg.value()!r}"
            failed = [e for e in seen if e.code() == KafkaError._AUTHENTICATION]
            if failed:
                return failed[0].str()
        return f"neither a record nor a refusal: {[e.str() for e in seen]}"
    finally:
        consumer.close()


def _topic_with_a_record(broker: EmbeddedBroker) -> str:
    topic = f"scram-admin-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{broker.kafka_port}"})
    producer.produce(topic, b"scram")
    assert producer.flush(10) == 0
    return topic


def test_confluent_upsert_logs_a_consumer_in_with_the_new_password_and_delete_refuses_it(broker):
    admin, topic = _admin(broker), _topic_with_a_record(broker)
    upsert = UserScramCredentialUpsertion("alice", ScramCredentialInfo(SHA512, 8192), b"new-secret")
    assert admin.alter_user_scram_credentials([upsert])["alice"].result() is None
    described = admin.describe_user_scram_credentials(["alice"])["alice"].result()
    infos = {(i.mechanism, i.iterations) for i in described.scram_credential_infos}
    assert infos == {(ScramMechanism.SCRAM_SHA_256, 4096), (SHA512, 8192)}
    assert _login_error(broker, "alice", "new-secret", topic) == ""
    assert "invalid credentials" in _login_error(broker, "alice", "alice-pw", topic)  # the old one: gone
    deletion = UserScramCredentialDeletion("alice", SHA512)
    assert admin.alter_user_scram_credentials([deletion])["alice"].result() is None
    assert "Authentication failed" in _login_error(broker, "alice", "new-secret", topic)
    described = admin.describe_user_scram_credentials(["alice"])["alice"].result()
    assert [i.mechanism for i in described.scram_credential_infos] == [ScramMechanism.SCRAM_SHA_256]


def test_confluent_describe_of_an_unknown_user_is_resource_not_found(broker):
    admin = _admin(broker)  # kept: a destroyed client fails its futures
    futures = admin.describe_user_scram_credentials(["nobody"])
    with pytest.raises(KafkaException) as failed:
        futures["nobody"].result()
    assert failed.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND
    assert "Attempt to describe a user credential that does not exist: nobody" in failed.value.args[0].str()


def test_confluent_describe_of_everyone_lists_the_users_with_credentials(broker):
    admin = _admin(broker)
    every = admin.describe_user_scram_credentials().result()
    assert {"guest", "mallory"} <= set(every)
    assert {i.mechanism for i in every["mallory"].scram_credential_infos} == {
        ScramMechanism.SCRAM_SHA_256, SHA512}


def test_kafka_python_admin_upserts_describes_and_deletes(broker):
    admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{broker.kafka_port}")
    try:
        got = admin.alter_user_scram_credentials([
            PyUpsertion("py-new", PyScramMechanism.SCRAM_SHA_256, "py-pw", iterations=4096)])
        assert got == {"py-new": None}
        described = admin.describe_user_scram_credentials(["py-new", "nobody"])
        assert described["py-new"] == {"error": None, "credential_infos": [
            {"mechanism": PyScramMechanism.SCRAM_SHA_256, "iterations": 4096}]}
        assert "does not exist: nobody" in described["nobody"]["error"]
        assert _py_scram_topics(broker, "py-new", "py-pw") == []  # logged in; no permissions: sees nothing
        got = admin.alter_user_scram_credentials([PyDeletion("py-new", PyScramMechanism.SCRAM_SHA_256)])
        assert got == {"py-new": None}
        assert described_error(admin, "py-new").startswith("Attempt to describe a user credential")
        with pytest.raises(KafkaPythonError):  # refused at each try until its bootstrap gives up
            _py_scram_topics(broker, "py-new", "py-pw", bootstrap_timeout_ms=2000)
    finally:
        admin.close()


def _py_scram_topics(broker: EmbeddedBroker, user: str, password: str, **config: Any) -> list[str]:
    """The topics a kafka-python admin client logged in with SCRAM-SHA-256 may see."""
    client = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{broker.kafka_port}", request_timeout_ms=5000,
                              security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256",
                              sasl_plain_username=user, sasl_plain_password=password, **config)
    try:
        return list(client.list_topics())
    finally:
        client.close()


def described_error(admin: KafkaAdminClient, user: str) -> str:
    return str(admin.describe_user_scram_credentials([user])[user]["error"])


# --- Kafka's errors, over a bare socket ----------------------------------------------------------

def _upsertion(name: str, mechanism: int = 2, iterations: int = 4096) -> dict[str, Any]:
    salt = b"0123456789abcdef"
    hashed = "sha512" if mechanism == 2 else "sha256"
    return {"name": name, "mechanism": mechanism, "iterations": iterations, "salt": salt,
            "salted_password": salted_password(hashed, "pw", salt, max(iterations, 1))}


def _alter(raw: Raw, deletions: list[dict[str, Any]], upsertions: list[dict[str, Any]]) -> dict[str, Any]:
    res: Any = raw.call(versions.ALTER_USER_SCRAM_CREDENTIALS, 0,
                        {"deletions": deletions, "upsertions": upsertions})
    return {r.user: (int(r.error_code), r.error_message) for r in res.results}


TWICE = "A user credential cannot be altered twice in the same request"


def test_alter_answers_each_user_with_kafkas_error(broker):
    raw = Raw(broker.kafka_port)
    try:
        got = _alter(raw, [{"name": "ghost", "mechanism": 1}, {"name": "mallory", "mechanism": 1}],
                     [_upsertion("twice"), _upsertion("twice", mechanism=1), _upsertion("mallory"),
                      _upsertion("few", iterations=4095),
                      _upsertion("many", iterations=16385), _upsertion("odd", mechanism=3),
                      _upsertion("", mechanism=2), _upsertion("fine", iterations=16384)])
    finally:
        raw.close()
    assert got == {
        "ghost": (errors.RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist"),
        "twice": (errors.DUPLICATE_RESOURCE, TWICE), "mallory": (errors.DUPLICATE_RESOURCE, TWICE),
        "few": (errors.UNACCEPTABLE_CREDENTIAL, "Too few iterations"),
        "many": (errors.UNACCEPTABLE_CREDENTIAL, "Too many iterations"),
        "odd": (errors.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"),
        "": (errors.UNACCEPTABLE_CREDENTIAL, "Username must not be empty"),
        "fine": (errors.NONE, None)}
    core = broker.running.broker
    assert "twice" not in core.users  # a refused upsertion made nobody
    assert set(core.scram_credentials("mallory")) == {"SCRAM-SHA-256", "SCRAM-SHA-512"}  # neither applied
    assert broker.running.broker.scram_credentials("fine")["SCRAM-SHA-512"].iterations == 16384


def _plain_login(raw: Raw, user: str, password: str) -> None:
    handshake: Any = raw.call(versions.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
    assert handshake.error_code == 0
    token = b"\0" + user.encode() + b"\0" + password.encode()
    done: Any = raw.call(versions.SASL_AUTHENTICATE, 0, {"auth_bytes": token})
    assert done.error_code == 0, done.error_message


def test_only_an_administrator_may_describe_or_alter(broker):
    raw = Raw(broker.kafka_port)
    try:
        _plain_login(raw, "mallory", "mallory-pw")  # full permissions, but not the administrator tag
        got = _alter(raw, [], [_upsertion("alice"), _upsertion("mallory")])
        described: Any = raw.call(versions.DESCRIBE_USER_SCRAM_CREDENTIALS, 0, {"users": [{"name": "alice"}]})
    finally:
        raw.close()
    refused = (errors.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.")
    assert got == {"alice": refused, "mallory": refused}
    assert (int(described.error_code), described.error_message) == refused
    assert broker.running.broker.scram_credentials("mallory")["SCRAM-SHA-512"].iterations == 4096


def test_describe_names_a_user_asked_twice_duplicate(broker):
    raw = Raw(broker.kafka_port)
    try:
        res: Any = raw.call(versions.DESCRIBE_USER_SCRAM_CREDENTIALS, 0,
                            {"users": [{"name": "mallory"}, {"name": "mallory"}, {"name": "guest"}]})
    finally:
        raw.close()
    got = {r.user: (int(r.error_code), r.error_message, len(r.credential_infos)) for r in res.results}
    assert got == {"mallory": (errors.DUPLICATE_RESOURCE, "Cannot describe SCRAM credentials for the same "
                               "user twice in a single request: mallory", 0), "guest": (errors.NONE, None, 2)}


def test_an_upserted_credential_survives_a_restart(tmp_path):
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        raw = Raw(b.kafka_port)
        try:
            assert _alter(raw, [], [_upsertion("kept", iterations=5000)]) == {"kept": (errors.NONE, None)}
        finally:
            raw.close()
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        creds = b.running.broker.scram_credentials("kept")  # type: ignore[union-attr]
    assert {m: c.iterations for m, c in creds.items()} == {"SCRAM-SHA-512": 5000}

