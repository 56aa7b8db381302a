"""Kafka's ACL APIs over FerryMQ's permissions, driven by confluent-kafka's AdminClient: a created
ACL is a permission regex that the broker then enforces, describe reads permissions back as ACLs,
delete removes them, and what permissions cannot express is refused with a message saying why."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from ferrymq.testing import EmbeddedBroker

pytestmark = pytest.mark.timeout(60)
ALLOW, LITERAL, PREFIXED = AclPermissionType.ALLOW, ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        core = b.running.broker  # type: ignore[union-attr]
        b.call(core.put_user, "carol", "carol-pw")
        yield b


def admin(broker: EmbeddedBroker, user: str | None = None) -> AdminClient:
    """As the anonymous user (guest: an administrator), or as ``user`` over SASL."""
    sasl = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN", "sasl.username": user or "",
            "sasl.password": f"{user}-pw"} if user else {}
    return AdminClient({"bootstrap.servers": broker.kafka_bootstrap, **sasl})


def binding(topic: str, op: AclOperation, pattern: ResourcePatternType = LITERAL,
            rtype: ResourceType = ResourceType.TOPIC, **kw: object) -> AclBinding:
    args = {"principal": "User:carol", "host": "*", "permission_type": ALLOW, **kw}
    return AclBinding(rtype, topic, pattern, args["principal"], args["host"], op, args["permission_type"])


def create(client: AdminClient, acl: AclBinding) -> None:
    client.create_acls([acl])[acl].result(10)


def carol_produces(broker: EmbeddedBroker, topic: str) -> int:
    outcome: list[int] = []
    producer = Producer({"bootstrap.servers": broker.kafka_bootstrap, "security.protocol": "SASL_PLAINTEXT",
                         "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "carol",
                         "sasl.password": "carol-pw", "message.timeout.ms": "5000"})
    producer.produce(topic, b"x", on_delivery=lambda err, msg: outcome.append(err.code() if err else 0))
    producer.flush(10)
    return outcome[0]


def test_created_acls_become_permissions_the_broker_enforces_and_read_back(broker):
    client, prefix = admin(broker), f"acl-{uuid.uuid4().hex[:6]}-"
    topic = f"{prefix}orders"
    assert carol_produces(broker, topic) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    create(client, binding(prefix, AclOperation.WRITE, PREFIXED))
    create(client, binding(prefix, AclOperation.CREATE, PREFIXED))
    grant = broker.running.broker.permissions[("/", "carol")]
    assert grant["write"] == grant["configure"] == "^(?:" + re.escape(prefix) + ")"
    assert carol_produces(broker, topic) == 0
    described = client.describe_acls(AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY,
                                                      "User:carol", None, AclOperation.ANY,
                                                      AclPermissionType.ANY)).result(10)
    assert {(b.name, b.resource_pattern_type, b.operation) for b in described} == {
        (prefix, PREFIXED, AclOperation.WRITE), (prefix, PREFIXED, AclOperation.ALTER)}
    gone = client.delete_acls([AclBindingFilter(ResourceType.TOPIC, prefix, PREFIXED, "User:carol", None,
                                                AclOperation.WRITE, AclPermissionType.ANY)])
    assert [b.operation for f in gone.values() for b in f.result(10)] == [AclOperation.WRITE]
    assert broker.running.broker.permissions[("/", "carol")]["write"] == ""
    assert carol_produces(broker, topic) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_literal_topic_and_group_read_acls_are_one_read_regex(broker):
    client = admin(broker)
    create(client, binding("ledger", AclOperation.READ))
    create(client, binding("g1", AclOperation.READ, rtype=ResourceType.GROUP))
    assert broker.running.broker.permissions[("/", "carol")]["read"] == "^(?:ledger$|g1$)"


@pytest.mark.parametrize(("acl", "says"), [
    (binding("t", AclOperation.READ, permission_type=AclPermissionType.DENY), "DENY"),
    (binding("t", AclOperation.READ, host="10.0.0.1"), "host"),
    (binding("t", AclOperation.DESCRIBE), "DESCRIBE is implied"),
    (binding("t", AclOperation.READ, principal="User:nobody"), "No such user"),
])
def test_acls_permissions_cannot_express_are_refused_with_a_reason(broker, acl, says):
    with pytest.raises(KafkaException) as refused:
        create(admin(broker), acl)
    assert refused.value.args[0].code() == KafkaError.INVALID_REQUEST
    assert says in refused.value.args[0].str()


def test_acl_apis_need_the_administrator_tag(broker):
    client = admin(broker, "carol")
    acl = binding("t", AclOperation.READ)
    with pytest.raises(KafkaException) as refused:
        create(client, acl)
    assert refused.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
