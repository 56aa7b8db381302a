"""Leader leases with fencing tokens on real databases: a SQLite file and a private PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from ferrymq.clock import ManualClock
from ferrymq.jobs.db import Database
from ferrymq.jobs.leases import LeaseStore
from tests.support.postgres import any_db_url, postgres_server  # noqa: F401

TTL = 10_000


@pytest.fixture
def leases(any_db_url: str) -> LeaseStore:  # noqa: F811
    return LeaseStore(Database(any_db_url, durable=False))


def test_only_one_holder_at_a_time_until_the_lease_lapses(leases: LeaseStore) -> None:
    clock = ManualClock()
    assert leases.acquire("cron", "a", TTL, clock.now_ms()) == 1
    clock.advance(TTL - 1)
    assert leases.acquire("cron", "b", TTL, clock.now_ms()) is None
    clock.advance(1)
    assert leases.acquire("cron", "b", TTL, clock.now_ms()) == 2
    assert leases.acquire("cron", "a", TTL, clock.now_ms()) is None


def test_holder_reacquiring_its_live_lease_keeps_its_term_and_extends_it(leases: LeaseStore) -> None:
    clock = ManualClock()
    assert leases.acquire("cron", "a", TTL, clock.now_ms()) == 1
    clock.advance(TTL - 1)
    assert leases.acquire("cron", "a", TTL, clock.now_ms()) == 1
    clock.advance(TTL - 1)
    assert leases.acquire("cron", "b", TTL, clock.now_ms()) is None


def test_renewal_extends_a_live_lease_but_an_expired_holder_cannot_renew(leases: LeaseStore) -> None:
    clock = ManualClock()
    token = leases.acquire("cron", "a", TTL, clock.now_ms())
    assert token is not None
    clock.advance(TTL - 1)
    assert leases.renew("cron", "a", token, TTL, clock.now_ms())
    clock.advance(TTL - 1)
    assert leases.acquire("cron", "b", TTL, clock.now_ms()) is None  # the renewal held
    clock.advance(1)
    assert not leases.renew("cron", "a", token, TTL, clock.now_ms())  # lapsed, nobody took it yet
    assert leases.acquire("cron", "a", TTL, clock.now_ms()) == token + 1  # a new term


def test_tokens_rise_per_name_across_holders_and_releases(leases: LeaseStore) -> None:
    clock = ManualClock()
    seen = []
    for holder in ["a", "b", "a", "c"]:
        token = leases.acquire("cron", holder, TTL, clock.now_ms())
        assert token is not None
        seen.append(token)
        assert leases.release("cron", holder, token)
    assert seen == [1, 2, 3, 4]
    assert leases.acquire("other", "a", TTL, clock.now_ms()) == 1
    assert leases.token("cron") == 4 and leases.token("never-taken") == 0


def test_release_frees_the_lease_at_once_and_a_stale_term_cannot_renew_or_release(leases: LeaseStore) -> None:
    clock = ManualClock()
    assert leases.acquire("cron", "a", TTL, clock.now_ms()) == 1
    assert not leases.release("cron", "b", 1)  # not the holder
    assert leases.release("cron", "a", 1)
    assert leases.acquire("cron", "b", TTL, clock.now_ms()) == 2
    assert not leases.renew("cron", "a", 1, TTL, clock.now_ms())
    assert not leases.release("cron", "a", 1)
    lease = leases.get("cron")
    assert lease is not None
    assert (lease.holder, lease.token, lease.expires_ms) == ("b", 2, clock.now_ms() + TTL)


def test_racing_holders_on_separate_connections_get_one_lease(leases: LeaseStore) -> None:
    """Eight threads (each its own connection) race for a lapsed lease, many rounds: one wins each."""
    clock, barrier = ManualClock(), threading.Barrier(8)
    winners: list[list[int]] = [[] for _ in range(20)]

    def contend(holder: str) -> None:
        for round_ in range(20):
            barrier.wait()
            token = leases.acquire("cron", holder, TTL, clock.now_ms() + round_ * TTL)
            if token is not None:
                winners[round_].append(token)

    threads = [threading.Thread(target=contend, args=(f"h{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [len(w) for w in winners] == [1] * 20
    assert [w[0] for w in winners] == list(range(1, 21))


def test_a_lease_needs_a_positive_ttl(leases: LeaseStore) -> None:
    with pytest.raises(ValueError, match="positive ttl_ms"):
        leases.acquire("cron", "a", 0, 0)
