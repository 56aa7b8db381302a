"""ferrymq.core.permissions against rabbit_auth_backend_internal's rules (3.10): unanchored regex
search, "" meaning ^$, the default exchange checked as amq.default, topic patterns expanded with
{username} and {vhost}, and RabbitMQ's refusal texts."""

from __future__ import annotations

from ferrymq.core.permissions import (
    CONFIGURE,
    DECISIONS_MAX,
    READ,
    WRITE,
    Permissions,
    invalid_pattern,
    management_refusal,
    parse_tags,
    reserved_name,
)


def perms(configure: str = ".*", write: str = ".*", read: str = ".*") -> Permissions:
    return Permissions({("/", "u"): {CONFIGURE: configure, WRITE: write, READ: read}})


def test_a_pattern_matches_anywhere_in_the_name_as_re_run_does() -> None:
    p = perms(configure="app")
    assert p.check("u", "/", CONFIGURE, "queue", "my-app-queue") is None
    assert p.check("u", "/", CONFIGURE, "queue", "other") == (
        "access to queue 'other' in vhost '/' refused for user 'u'")


def test_the_empty_pattern_matches_nothing_not_everything() -> None:
    p = perms(write="")
    assert p.check("u", "/", WRITE, "exchange", "x") is not None
    assert p.check("u", "/", WRITE, "exchange", "") is not None  # amq.default does not match ^$


def test_the_default_exchange_is_checked_as_amq_default() -> None:
    p = perms(write="^amq\\.default$")
    assert p.check("u", "/", WRITE, "exchange", "") is None
    assert perms(write="^x").check("u", "/", WRITE, "exchange", "") == (
        "access to exchange 'amq.default' in vhost '/' refused for user 'u'")


def test_no_grant_in_a_vhost_refuses_the_vhost_and_everything_in_it() -> None:
    p = perms()
    assert p.vhost_refusal("u", "/") is None
    assert p.vhost_refusal("u", "v") == "access to vhost 'v' refused for user 'u'"
    assert p.check("u", "v", READ, "queue", "q") == "access to queue 'q' in vhost 'v' refused for user 'u'"
    assert p.login_vhosts("u") == ["/"]


def test_topic_permissions_expand_username_and_vhost_and_default_to_allowed() -> None:
    p = perms()
    assert p.check_topic("u", "/", WRITE, "amq.topic", "anything") is None  # no topic rule: allowed
    p.set_topic("/", "u", "amq.topic", "^{username}\\.{vhost}", "^r")
    assert p.check_topic("u", "/", WRITE, "amq.topic", "u./.k") is None
    assert p.check_topic("u", "/", WRITE, "amq.topic", "v./.k") == (
        "access to topic 'v./.k' in exchange 'amq.topic' in vhost '/' refused for user 'u'")
    assert p.check_topic("u", "/", READ, "amq.topic", "r.x") is None
    assert p.check_topic("u", "/", WRITE, "other", "x") is None  # another exchange: unrestricted


def test_every_change_moves_the_generation_for_callers_that_cache() -> None:
    p = perms()
    before = p.generation
    p.set_topic("/", "u", "t", ".*", ".*")
    assert p.clear_topic("/", "u") == ["t"]
    assert p.generation == before + 2


def test_reserved_names_tags_and_patterns() -> None:
    assert reserved_name("queue", "amq.q") == "queue name 'amq.q' contains reserved prefix 'amq.*'"
    assert reserved_name("exchange", "amqx") is None
    assert management_refusal(["impersonator"]) == "Not management user"
    assert management_refusal(["monitoring"]) is None
    assert parse_tags("administrator, management,") == ["administrator", "management"]
    assert parse_tags(["policymaker"]) == ["policymaker"]
    assert invalid_pattern("(") is not None and invalid_pattern("^a.*") is None


def test_unrestricted_only_when_the_pattern_is_every_name() -> None:
    p = perms(write=".*", read="^.*$", configure="")
    assert p.unrestricted("u", "/", WRITE)
    assert not p.unrestricted("u", "/", READ)  # matches every name too, but is not the fast path's ".*"
    assert not p.unrestricted("u", "/", CONFIGURE)
    assert not p.unrestricted("nobody", "/", WRITE)


def test_a_cached_decision_gives_way_to_changed_grants() -> None:
    p = perms(read="^a")
    assert p.allowed("u", "/", READ, "abc") and not p.allowed("u", "/", READ, "xyz")
    p.grants[("/", "u")] = {CONFIGURE: "", WRITE: "", READ: "^x"}
    p.changed()
    assert not p.allowed("u", "/", READ, "abc") and p.allowed("u", "/", READ, "xyz")
    del p.grants[("/", "u")]
    p.changed()
    assert not p.allowed("u", "/", READ, "xyz")


def test_the_decision_cache_stays_bounded() -> None:
    p = perms(read="^n")
    for i in range(10_000):
        assert p.allowed("u", "/", READ, f"n{i}")
    assert len(p._decisions) <= DECISIONS_MAX
