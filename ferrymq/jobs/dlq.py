"""Dead letters: read them without losing them, and replay them to their queues.

Both read ``<queue>.dlq`` as a consumer with manual acks on a connection of their own (AMQP
only, so this works on RabbitMQ as on FerryMQ). Nothing is acked unless it was replayed: what
is only looked at, skipped (not a job) or not chosen stays unacked until the connection closes,
and the broker then puts it back. Both FerryMQ and RabbitMQ (since 2.7) requeue a message at
its original position, not at the tail, so looking at a DLQ or replaying part of it keeps the
order of what is left.

A replay publishes the jobs it takes (confirmed by the broker) *before* it acks their dead
letters: a crash in between leaves a job both in its queue and in the DLQ (a duplicate with the
same id, which idempotent jobs absorb), never in neither. It takes at most as many letters as
the DLQ held when it started, so a replayed job that dies again meanwhile is not replayed twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from pamqp import commands as c

from ferrymq.client.connection import Client
from ferrymq.client.deliveries import Delivery, InboundReader
from ferrymq.jobs.broker import dlq_name
from ferrymq.jobs.message import JobMessage
from ferrymq.protocols.amqp import client as codec
from ferrymq.protocols.amqp.properties import decode_properties

if TYPE_CHECKING:
    from ferrymq.jobs.app import App

BATCH = 200  # dead letters replayed per confirm wait
IDLE_S = 2.0  # a DLQ that sends nothing for this long holds no more than we have (another consumer took some)
PEEK_MAX = 10_000  # dead letters one look may hold unacked
SCAN_MAX = 100_000  # dead letters a replay of one id looks through
COUNT_CHANNEL = 2  # passive declares go on their own channel: a 404 closes only that one
RECV_BYTES = 256 * 1024
REPLAYER = "ferrymq.jobs.dlq"  # the worker id of a replay in the audit trail


class QueueMissing(LookupError):
    """The broker has no queue of that name (passive queue.declare answered 404)."""


class DeadLetter(NamedTuple):
    message: JobMessage
    reason: str  # x-job-error, or the broker's x-death reason for a broker-side dead letter
    headers: dict[str, Any]


@dataclass
class DeadScan:
    letters: list[DeadLetter]
    not_jobs: int  # letters whose body is not a job (left in place)
    depth: int  # ready messages in the DLQ when the look started


@dataclass
class ReplayReport:
    before: int
    replayed: int
    after: int
    skipped: list[str] = field(default_factory=list)  # why letters were left in place (not jobs)


# --- counting -------------------------------------------------------------------------------

def depths(client: Client, names: list[str]) -> dict[str, tuple[int, int] | None]:
    """(ready messages, consumers) per queue name, None for a queue the broker does not have."""
    found: dict[str, tuple[int, int] | None] = {}
    for name in names:
        client.call(c.Channel.Open(), c.Channel.OpenOk, COUNT_CHANNEL)
        client.send(c.Queue.Declare(queue=name, passive=True), COUNT_CHANNEL)
        reply = client.wait_for(c.Queue.DeclareOk, c.Channel.Close)
        if isinstance(reply, c.Channel.Close):
            if reply.reply_code != 404:
                raise QueueMissing(f"queue {name!r}: {reply.reply_code} {reply.reply_text}")
            client.send(c.Channel.CloseOk(), COUNT_CHANNEL)
            found[name] = None
            continue
        found[name] = (reply.message_count, reply.consumer_count)
        client.call(c.Channel.Close(200, "counted", 0, 0), c.Channel.CloseOk, COUNT_CHANNEL)
    return found


def count(url: str, name: str) -> int:
    """Ready messages in queue ``name``; QueueMissing if there is no such queue."""
    with connect(url) as client:
        found = depths(client, [name])[name]
    if found is None:
        raise QueueMissing(f"no queue {name!r} on the broker")
    return found[0]


@contextmanager
def connect(url: str) -> Iterator[Client]:
    client = Client(url, product="ferrymq.jobs dlq", timeout=10.0).open(heartbeat=0)
    try:
        yield client
    finally:
        client.close(timeout=2.0)


# --- reading a DLQ ----------------------------------------------------------------------------

class DeadReader:
    """A manual-ack consumer on one DLQ. Deliveries come in queue order; closing the
    connection returns every unacked one to the queue at its place."""

    def __init__(self, client: Client, queue: str, window: int) -> None:
        self.client = client
        self.reader = InboundReader()
        self.window = window
        client.send(c.Basic.Qos(prefetch_count=window))  # the -ok replies are skipped by the reader
        client.send(c.Basic.Consume(queue=queue, consumer_tag="ferrymq.jobs.dlq"))
        client.sock.settimeout(IDLE_S)
        self.pending: list[Delivery] = []
        self.reader.feed(bytes(client.buf), self.pending, [])
        client.buf.clear()

    def widen(self, window: int) -> None:
        """Let ``window`` deliveries be unacked at once (those held back count against it)."""
        if window > self.window:
            self.window = window
            self.client.send(c.Basic.Qos(prefetch_count=window))

    def take(self, n: int) -> list[Delivery]:
        """The next ``n`` deliveries, or fewer if the queue stays silent for IDLE_S."""
        while len(self.pending) < n:
            try:
                data = self.client.sock.recv(RECV_BYTES)
            except TimeoutError:
                break
            if not data:
                break
            self.reader.feed(data, self.pending, [])
        taken, self.pending = self.pending[:n], self.pending[n:]
        return taken

    def ack(self, tags: list[int]) -> None:
        if tags:
            self.client.sock.sendall(codec.encode_acks(1, tags))


def decode(delivery: Delivery) -> DeadLetter | str:
    """The dead letter in a delivery, or why it is not a job."""
    _, _, _, raw_props, body = delivery
    try:
        message = JobMessage.from_body(body)
    except ValueError as exc:
        return str(exc)
    headers = dict(decode_properties(raw_props).headers or {})
    return DeadLetter(message, reason_of(headers), headers)


def reason_of(headers: dict[str, Any]) -> str:
    error = headers.get("x-job-error")
    if error is not None:
        return _text(error)
    deaths = headers.get("x-death")
    if deaths and isinstance(deaths[0], dict):
        return f"dead-lettered by the broker: {_text(deaths[0].get('reason'))}"
    return ""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def scan_dead(app: App, queue: str, limit: int = 100) -> DeadScan:
    """The first ``limit`` dead letters of ``queue``, left where they are."""
    limit = max(0, min(limit, PEEK_MAX))
    with connect(app.url) as client:
        depth = _depth_or_raise(client, dlq_name(queue))
        wanted = min(limit, depth)
        deliveries = DeadReader(client, dlq_name(queue), max(1, wanted)).take(wanted) if wanted else []
    decoded = [decode(d) for d in deliveries]
    letters = [d for d in decoded if isinstance(d, DeadLetter)]
    return DeadScan(letters, len(decoded) - len(letters), depth)


def list_dead(app: App, queue: str, limit: int = 100) -> list[DeadLetter]:
    """(message, reason, headers) of the first ``limit`` dead letters; nothing is removed."""
    return scan_dead(app, queue, limit).letters


def _depth_or_raise(client: Client, name: str) -> int:
    found = depths(client, [name])[name]
    if found is None:
        raise QueueMissing(f"no queue {name!r} on the broker")
    return found[0]


# --- replaying --------------------------------------------------------------------------------

def replayed_message(letter: DeadLetter, now_ms: int) -> JobMessage:
    """The job again from its first attempt; its history (and how often it was replayed) kept."""
    m = letter.message
    extra = {k: v for k, v in m.extra.items() if k != "redelivered"}
    if "history" not in extra:
        try:
            extra["history"] = json.loads(_text(letter.headers.get("x-job-history")) or "[]")
        except ValueError:
            extra["history"] = []
    extra["replayed"] = int(extra.get("replayed", 0)) + 1
    extra.setdefault("first_enqueued_ms", m.enqueued_ms)
    return JobMessage(m.id, m.job, m.queue, m.args, m.kwargs, 0, m.key, m.tenant, m.priority, now_ms,
                      None, m.workflow, extra)


def audit(app: App, messages: list[JobMessage]) -> None:
    """A 'replayed' event in the job's audit trail, when the app keeps one (``App(state=True)``):
    a replay starts a new life of the job there."""
    state = getattr(app, "state", None)
    if state is None:
        return
    for m in messages:
        state.store.record(m.id, m.job, m.queue, "replayed", m.enqueued_ms, worker_id=REPLAYER, attempt=0,
                           detail=f"replay {m.extra['replayed']} from {dlq_name(m.queue)}")
    state.store.flush()


def replay(app: App, queue: str, job_id: str | None = None) -> ReplayReport:
    """Move the dead letters of ``queue`` (all, or those of job ``job_id``) back to their queues."""
    dead = dlq_name(queue)
    with connect(app.url) as client:
        before = _depth_or_raise(client, dead)
        replayed, skipped = _replay_from(app, DeadReader(client, dead, BATCH), before, job_id)
    # counted after the consumer's connection closed, so held-back letters are back and counted
    return ReplayReport(before, replayed, count(app.url, dead), skipped)


def _replay_from(app: App, reader: DeadReader, before: int, job_id: str | None) -> tuple[int, list[str]]:
    seen = replayed = held = 0
    skipped: list[str] = []
    limit = before if job_id is None else min(before, SCAN_MAX)
    while seen < limit:
        batch = reader.take(min(BATCH, limit - seen))
        if not batch:
            break
        seen += len(batch)
        chosen: list[tuple[int, JobMessage]] = []
        for position, delivery in enumerate(batch, seen - len(batch) + 1):
            letter = decode(delivery)
            if isinstance(letter, str):
                skipped.append(f"dead letter #{position}: {letter}")
            elif job_id is None or letter.message.id == job_id:
                chosen.append((delivery[1], replayed_message(letter, app.clock.now_ms())))
        if chosen:
            app.publisher.publish([(message, 0) for _, message in chosen])  # confirmed, then acked
            reader.ack([tag for tag, _ in chosen])
            replayed += len(chosen)
            audit(app, [message for _, message in chosen])
        held += len(batch) - len(chosen)
        if job_id is not None and chosen:
            break
        reader.widen(BATCH + held)
    return replayed, skipped
