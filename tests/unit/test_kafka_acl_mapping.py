"""Kafka ACLs <-> permission regexes (ferrymq.protocols.kafka.acls): the shapes that read both ways."""

from __future__ import annotations

import pytest

from ferrymq.protocols.kafka.acls import (
    OP_ALTER,
    OP_ANY,
    OP_READ,
    P_ANY,
    P_LITERAL,
    P_MATCH,
    P_PREFIXED,
    PERM_ANY,
    R_ANY,
    R_GROUP,
    R_TOPIC,
    Acl,
    AclFilter,
    acls_of,
    patterns,
    regex_of,
)


@pytest.mark.parametrize("pats", [[], [(P_LITERAL, "*")], [(P_LITERAL, "a.b")], [(P_PREFIXED, "logs-")],
                                  [(P_LITERAL, "x|y"), (P_PREFIXED, "p$q"), (P_LITERAL, "z")]])
def test_patterns_round_trip_through_the_regex_ferrymq_keeps(pats):
    assert patterns(regex_of(pats)) == pats


def test_the_kept_regex_matches_exactly_what_the_acls_grant():
    import re

    regex = regex_of([(P_LITERAL, "orders"), (P_PREFIXED, "logs.")])
    assert [bool(re.search(regex, n)) for n in ("orders", "orders2", "logs.a", "logsXa", "x-orders")] == [
        True, False, True, False, False]


@pytest.mark.parametrize("regex", ["^foo.*", "bar", "^a|b", "^(?:a$|b", "amq\\.gen-.*"])
def test_hand_written_regexes_of_other_shapes_have_no_acl_reading(regex):
    assert patterns(regex) is None


def test_hand_written_anchored_names_read_as_literal_and_prefixed():
    assert patterns("^orders$") == [(P_LITERAL, "orders")]
    assert patterns("^logs-") == [(P_PREFIXED, "logs-")]


def test_a_read_regex_reads_as_topic_and_group_read_and_configure_as_alter():
    got = acls_of("alice", {"read": "^(?:t$)", "configure": ".*", "write": ""})
    assert set(got) == {Acl(R_TOPIC, "*", P_LITERAL, "alice", OP_ALTER),
                        Acl(R_TOPIC, "t", P_LITERAL, "alice", OP_READ),
                        Acl(R_GROUP, "t", P_LITERAL, "alice", OP_READ)}


def test_a_match_filter_finds_the_literal_wildcard_and_prefixed_acls_that_apply():
    acls = [Acl(R_TOPIC, "*", P_LITERAL, "a", OP_READ), Acl(R_TOPIC, "lo", P_PREFIXED, "a", OP_READ),
            Acl(R_TOPIC, "logs", P_LITERAL, "a", OP_READ), Acl(R_TOPIC, "other", P_LITERAL, "a", OP_READ)]
    wanted = AclFilter(R_ANY, "logs", P_MATCH, None, None, OP_ANY, PERM_ANY)
    assert [a.name for a in acls if wanted.matches(a)] == ["*", "lo", "logs"]
    exact = AclFilter(R_ANY, "logs", P_ANY, "User:a", None, OP_ANY, PERM_ANY)
    assert [a.name for a in acls if exact.matches(a)] == ["logs"]
