"""kill -9 on the TTL -> dead-letter path against a real `ferrymq serve`: every confirmed timer reaches
the work queue (or is still in its holding queue), however the kills fall.

A timer is a persistent, confirmed message with a per-message expiration in a holding queue that
dead-letters (x-dead-letter-exchange "" + routing key) into a work queue, as QueueLab's delayed
scenario does. Two ways to strike while messages move from one queue's log to the other's:
- live: a batch is published so that it all falls due at one instant, and the broker is killed at
  a random moment around it (while the burst is expired and dead-lettered);
- down: a batch expires while the broker is down; after the restart the first tick dead-letters it
  all at once, and the broker is killed again a random moment after it listens.
Duplicates are allowed (a kill between the target's commit and the source's settle leaves a message
in both); a confirmed id found in neither queue is a loss. The seed replays the kill times.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pika
import pytest

from ferrymq.chaos.broker import BrokerProcess, free_port

HOLD, WORK = "dl-hold", "dl-work"
CYCLES = int(os.environ.get("CRASH_DLX_CYCLES", "6"))
BATCH, SIZE = 400, 16_000  # big bodies: the dead-letter turn's writes take long enough to be struck


def _params(port: int) -> pika.ConnectionParameters:
    return pika.ConnectionParameters("127.0.0.1", port, connection_attempts=3, retry_delay=0.2,
                                     socket_timeout=5, blocked_connection_timeout=30, heartbeat=0)


def _declare(ch: pika.adapters.blocking_connection.BlockingChannel) -> None:
    ch.queue_declare(WORK, durable=True)
    ch.queue_declare(HOLD, durable=True, arguments={"x-dead-letter-exchange": "",
                                                    "x-dead-letter-routing-key": WORK})


def _publish(port: int, ids: range, expiration: Callable[[], int]) -> list[int]:
    """Confirmed publishes (pika raises if the broker nacks one): the ids the broker confirmed."""
    conn = pika.BlockingConnection(_params(port))
    ch = conn.channel()
    _declare(ch)
    ch.confirm_delivery()
    pad = b"x" * SIZE
    for i in ids:
        props = pika.BasicProperties(delivery_mode=2, expiration=str(max(1, expiration())))
        ch.basic_publish("", HOLD, f"{i} ".encode() + pad, props, mandatory=True)
    conn.close()
    return list(ids)


def _drain(port: int, queue: str) -> list[int]:
    conn = pika.BlockingConnection(_params(port))
    ch = conn.channel()
    _declare(ch)
    got = []
    while True:
        method, _props, body = ch.basic_get(queue)
        if method is None:
            break
        got.append(int(body.split(b" ", 1)[0]))
        ch.basic_ack(method.delivery_tag)
    conn.close()
    return got


def _live_burst(broker: BrokerProcess, ids: range, rng: random.Random) -> list[int]:
    due = time.monotonic() + len(ids) * 0.005 + 0.3  # after the last publish: one burst at the head
    done = _publish(broker.port, ids, lambda: int((due - time.monotonic()) * 1000))
    time.sleep(max(0.0, due - time.monotonic() + rng.uniform(-0.01, 0.12)))
    broker.kill9()
    broker.start()
    return done


def _expired_while_down(broker: BrokerProcess, ids: range, rng: random.Random) -> list[int]:
    done = _publish(broker.port, ids, lambda: 1000)
    broker.kill9()
    time.sleep(1.1)  # every TTL passes while the broker is down
    broker.start()
    time.sleep(rng.uniform(0.0, 0.06))  # the first tick dead-letters the lot
    broker.kill9()
    broker.start()
    return done


@pytest.mark.timeout(300)
def test_kill9_while_timers_dead_letter_loses_no_confirmed_timer(tmp_path: Path) -> None:
    seed = int(os.environ.get("CRASH_SEED", random.SystemRandom().randrange(2**32)))
    rng = random.Random(seed)
    broker = BrokerProcess(tmp_path / "data", free_port(), fsync="always")
    broker.start()
    confirmed: set[int] = set()
    arrived: set[int] = set()
    try:
        for cycle in range(CYCLES):
            strike = _live_burst if cycle % 2 == 0 else _expired_while_down
            confirmed.update(strike(broker, range(cycle * BATCH, (cycle + 1) * BATCH), rng))
            time.sleep(0.3)  # anything recovered in the holding queue expires now
            arrived.update(_drain(broker.port, WORK))
            arrived.update(_drain(broker.port, HOLD))
            lost = confirmed - arrived
            assert not lost, (f"seed {seed}, cycle {cycle} ({strike.__name__}): {len(lost)} confirmed "
                              f"timer(s) in neither queue, e.g. {sorted(lost)[:5]}")
    finally:
        broker.stop()
    assert len(confirmed) == CYCLES * BATCH
