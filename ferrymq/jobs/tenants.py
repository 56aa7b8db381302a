"""Per-tenant fairness over plain AMQP: one sub-queue per tenant, found by every worker.

A fair queue ``q`` (``App(fair_queues={"q"})``) keeps the jobs of tenant ``t`` in their own
durable queue ``q.t.<t>``, so a noisy tenant's backlog sits behind its own consumer: a worker
takes turns between the tenants of ``q`` (``TenantPicker``), and ``q``'s weight against other
queues is unchanged. Workers learn the sub-queues two ways, both plain AMQP (so RabbitMQ too):

- live: the sender, when it first declares ``q.t.<t>`` on a connection, publishes (confirmed)
  an announcement to the direct exchange ``ferrymq.jobs.tenants`` with routing key
  ``announce.q``; each worker binds an exclusive queue with that key and starts consuming the
  announced sub-queue;
- at start: the same publish lands in the durable registry ``q.tenants`` (bound with the same
  key). A starting worker reads it with ``basic.get`` and puts every message back (``reject``
  with requeue) — dropping only duplicates of one it still holds, so the last copy is never
  lost — then re-announces what it found under ``known.q`` (which reaches workers, not the
  registry): a worker that read the registry while another held some of its messages hears
  about them that way.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sized
from typing import Any

from pamqp import commands as c
from pamqp.body import ContentBody

from ferrymq.client.connection import Client
from ferrymq.jobs.stride import StridePicker
from ferrymq.protocols.amqp import client as codec

TENANTS_EXCHANGE = "ferrymq.jobs.tenants"
ANNOUNCE_TAG = "ferrymq.jobs.tenants"  # the worker's consumer tag for announcements
NAME_MAX = 200  # bytes of a tenant sub-queue's name (AMQP allows 255; RabbitMQ delay buckets add a suffix)
QUEUE_MAX = NAME_MAX - 3 - 1 - 11  # a fair queue's own name leaves room for ".t.", a tenant and a hash
HASH_CHARS = 10
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def tenant_queue(queue: str, tenant: str) -> str:
    """``q.t.<tenant>``: characters other than letters, digits, ``_`` and ``-`` become ``_`` (so
    the name never holds a ``.``), and a tenant that had to change, or is too long, gets a
    short hash of its real name so two tenants never share a queue by accident."""
    tenant = str(tenant)  # a tenant given as a number names the same queue as its text
    safe = _UNSAFE.sub("_", tenant)
    prefix = f"{queue}.t."
    room = NAME_MAX - len(prefix.encode())
    if safe == tenant and len(safe) <= room:
        return prefix + safe
    digest = hashlib.sha1(tenant.encode()).hexdigest()[:HASH_CHARS]
    return f"{prefix}{safe[:room - HASH_CHARS - 1]}-{digest}"


def parent_queue(name: str, fair: Iterable[str]) -> str:
    """The fair queue a tenant sub-queue belongs to (``name`` itself if it is not one)."""
    parent, sep, _ = name.rpartition(".t.")
    return parent if sep and parent in fair else name


def registry_queue(queue: str) -> str:
    return f"{queue}.tenants"


def announce_key(queue: str) -> str:
    return f"announce.{queue}"


def known_key(queue: str) -> str:
    return f"known.{queue}"


def announcement(queue: str, name: str) -> bytes:
    return json.dumps({"queue": queue, "tenant_queue": name}).encode()


def parse_announcement(body: bytes) -> tuple[str, str] | None:
    try:
        doc = json.loads(body)
        return str(doc["queue"]), str(doc["tenant_queue"])
    except (ValueError, KeyError, TypeError):
        return None


def check_fair_queue(queue: str) -> None:
    if len(queue.encode()) > QUEUE_MAX:
        raise ValueError(f"fair queue {queue!r}: names of fair queues are at most {QUEUE_MAX} bytes")


def declare_announcements(client: Client, queue: str) -> None:
    """The exchange and ``queue``'s registry, bound (idempotent; once per connection)."""
    client.declare_exchange(TENANTS_EXCHANGE, "direct", durable=True)
    client.declare_queue(registry_queue(queue), durable=True)
    client.bind(registry_queue(queue), TENANTS_EXCHANGE, announce_key(queue))


def announce_frame(queue: str, name: str, key: str, frame_max: int) -> bytes:
    from ferrymq.protocols.amqp.properties import Properties, encode_properties

    props = encode_properties(Properties(delivery_mode=2, content_type="application/json"))
    return codec.encode_publish(1, TENANTS_EXCHANGE, key, announcement(queue, name), props, frame_max)


def read_registry(url: str, queues: Iterable[str]) -> dict[str, list[str]]:
    """Every tenant sub-queue the registries of ``queues`` name, read on a connection of its own
    (so ``basic.get``'s delivery tags never mix with the worker's); everything read goes back."""
    found: dict[str, list[str]] = {}
    client = Client(url, product="ferrymq.jobs tenants").open()
    try:
        for queue in queues:
            declare_announcements(client, queue)
            found[queue] = _read_one(client, registry_queue(queue))
    finally:
        client.close(timeout=2.0)
    return found


def _read_one(client: Client, registry: str) -> list[str]:
    kept: dict[str, int] = {}  # tenant queue -> the delivery tag held for it
    frames = []
    while (got := _get(client, registry)) is not None:
        tag, body = got
        parsed = parse_announcement(body)
        if parsed is None or parsed[1] in kept:
            frames.append(codec.encode_ack(1, tag))  # a duplicate (another copy is held) or junk
        else:
            kept[parsed[1]] = tag
    frames += [codec.encode_reject(1, tag, True) for tag in kept.values()]
    if frames:
        client.sock.sendall(b"".join(frames))
    return list(kept)


def _get(client: Client, queue: str) -> tuple[int, bytes] | None:
    reply = client.call(c.Basic.Get(queue=queue), (c.Basic.GetOk, c.Basic.GetEmpty))  # type: ignore[arg-type]
    if isinstance(reply, c.Basic.GetEmpty):
        return None
    body = client.wait_for(ContentBody)  # announcements are small and never empty: one body frame
    return reply.delivery_tag, bytes(body.value)


class _Group:
    """A fair queue's members for the top-level picker: non-empty while any member has work."""

    __slots__ = ("buffers", "cursor", "members")

    def __init__(self, name: str, buffers: Mapping[str, Sized]) -> None:
        self.members = [name]
        self.buffers = buffers
        self.cursor = 0

    def __len__(self) -> int:
        buffers = self.buffers
        return 1 if any(buffers[m] for m in self.members) else 0

    def next(self) -> str:
        """The next member with work, round-robin (call only when ``len(self)``)."""
        members, buffers, n = self.members, self.buffers, len(self.members)
        for step in range(n):
            i = (self.cursor + step) % n
            if buffers[members[i]]:
                self.cursor = i + 1
                return members[i]
        raise LookupError("no member has work")


class TenantPicker:
    """Stride scheduling across queues by weight; inside a fair queue, round-robin between the
    queue itself (jobs sent without a tenant) and its tenant sub-queues: ``q``'s share is split
    equally among its tenants with work, whatever their backlogs. Sub-queues join at runtime."""

    __slots__ = ("_groups", "_top", "buffers")

    def __init__(self, weights: Mapping[str, int], buffers: Mapping[str, Sized]) -> None:
        self._top = StridePicker(weights)
        self.buffers = buffers
        self._groups = {name: _Group(name, buffers) for name in weights}

    def add(self, name: str, queue: str) -> None:
        group = self._groups[queue]
        if name not in group.members:
            group.members.append(name)

    def pick(self, buffers: Mapping[str, Sized]) -> str | None:
        queue = self._top.pick(self._groups)
        return None if queue is None else self._groups[queue].next()


def consume_frames(names: Iterable[str], prefetch: int) -> bytes:
    """A per-consumer prefetch, then a consumer per tenant sub-queue (tag = its name). With a
    channel-wide limit also set (FerryMQ's adaptive window) both apply."""
    methods: list[Any] = [c.Basic.Qos(prefetch_count=prefetch, global_=False)]
    methods += [c.Basic.Consume(queue=name, consumer_tag=name) for name in names]
    return b"".join(codec.encode_method(1, m) for m in methods) if len(methods) > 1 else b""
