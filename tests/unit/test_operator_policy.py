"""Operator policies in the core: RabbitMQ 3.10's keys only, the merge with a policy (the smaller
value of a key in both), the combination with a queue's own arguments, live application and the
runtime parameter they are stored as; and the definitions import's report (ferrymq.core.definitions)."""

from __future__ import annotations

import pytest

from ferrymq.core.definitions import DefinitionsError, import_definitions
from ferrymq.core.parameters import OPERATOR_POLICY
from ferrymq.core.policy import PolicyError, effective_definition, make_policy, queue_arguments
from tests.support.core import new_broker, open_channel, publish


def _op(definition: dict, **body: object) -> object:
    return make_policy("/", "op", {"pattern": "^q", "definition": definition, **body}, operator=True)


@pytest.mark.parametrize("key", ["overflow", "dead-letter-exchange", "queue-mode", "consumer-timeout",
                                 "max-age"])
def test_operator_policies_refuse_keys_rabbitmq_refuses(key: str) -> None:
    with pytest.raises(PolicyError, match="are not recognised policy settings"):
        _op({key: 1})


def test_a_key_in_both_takes_the_smaller_value_and_a_key_in_one_is_taken() -> None:
    policy = make_policy("/", "p", {"pattern": "^q", "definition": {"max-length": 5, "message-ttl": 10,
                                                                   "overflow": "drop-head"}})
    operator = _op({"max-length": 3, "message-ttl": 50, "expires": 900})
    merged = effective_definition(policy, operator)  # type: ignore[arg-type]
    assert merged == {"max-length": 3, "message-ttl": 10, "overflow": "drop-head", "expires": 900}
    assert effective_definition(None, operator) == operator.definition  # type: ignore[attr-defined, arg-type]
    args = queue_arguments({"x-max-length": 2, "x-expires": 5000}, policy, operator)  # type: ignore[arg-type]
    assert args == {"x-max-length": 2, "x-expires": 900, "x-message-ttl": 10, "x-overflow": "drop-head"}


def test_operator_policy_applies_live_and_is_stored_as_a_runtime_parameter() -> None:
    broker, _ = new_broker()
    ch = open_channel(broker)
    vhost = broker.vhosts["/"]
    queue = vhost.declare_queue("q", connection=object())
    for i in range(5):
        publish(ch, str(i))
    vhost.set_operator_policy(_op({"max-length": 2}, **{"apply-to": "queues"}))  # type: ignore[arg-type]
    assert (queue.message_count, queue.operator_policy.name) == (2, "op")
    assert broker.parameters.get(OPERATOR_POLICY, "/", "op") == {
        "pattern": "^q", "apply-to": "queues", "definition": {"max-length": 2}, "priority": 0}
    assert vhost.clear_operator_policy("op") and queue.operator_policy is None
    assert broker.parameters.get(OPERATOR_POLICY, "/", "op") is None
    for i in range(4):
        publish(ch, str(i))
    assert queue.message_count == 6


def test_import_reports_plugin_parameters_and_missing_users_and_refuses_bad_objects() -> None:
    broker, _ = new_broker()
    report = import_definitions(broker, {
        "parameters": [{"component": "federation-upstream", "vhost": "/", "name": "up", "value": {}}],
        "permissions": [{"user": "ghost", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}]})
    assert report.lines() == ["dropped permissions 'ghost' in vhost '/': no such user",
                              "dropped parameters 'federation-upstream/up' in vhost '/': "
                              "FerryMQ has no federation plugin"]
    bad = {"component": "operator_policy", "vhost": "/", "name": "bad",
           "value": {"pattern": ".*", "definition": {"overflow": "x"}}}
    with pytest.raises(DefinitionsError, match="operator policy 'bad' in vhost '/'"):
        import_definitions(broker, {"parameters": [bad]})
    with pytest.raises(DefinitionsError, match="'queues' must be a list of objects"):
        import_definitions(broker, {"queues": {"name": "q"}})
