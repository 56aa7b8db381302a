"""What the dashboard's Jobs page shows, read from the broker's own state.

The broker knows a good deal about ``ferrymq.jobs`` without any store:

- **job queues** are the queues bound to the jobs' delayed exchange (every job queue is, on
  FerryMQ); their ready and unacked counts are the queued and running jobs, and the queue their
  dead-letter key names is their DLQ;
- **retries** wait in that exchange's delay heap until due: each is a job body (id, job, attempt,
  the error of the attempt that failed) with its due time;
- **workers** are the AMQP connections whose client properties carry a ``ferrymq.jobs`` table
  (``ferrymq.jobs.presence``), alive while connected; what the broker last heard on one is that
  worker's heartbeat;
- **cron entries** are the schedules those workers announce; their next runs are computed here
  with the scheduler's own cron code.

Per-job-name states, the scheduler's leader and its last fires live in the job store
(``jobs_store.py``), when the broker is told where it is.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from ferrymq import limits
from ferrymq.core.message import Message
from ferrymq.core.replay import Resolve, by_death
from ferrymq.jobs.broker import DELAYED_EXCHANGE
from ferrymq.jobs.cron import CronError, CronSchedule
from ferrymq.jobs.dlq import DeadLetter, reason_of, replayed_message
from ferrymq.jobs.message import JobMessage
from ferrymq.jobs.presence import Presence, parse
from ferrymq.protocols.amqp.properties import decode_properties

if TYPE_CHECKING:
    from ferrymq.core.queue import Queue
    from ferrymq.core.vhost import VHost
    from ferrymq.http.plane import Plane
    from ferrymq.server.amqp.connection import AMQPConnection

DLQ_SUFFIX = ".dlq"
YIELD_EVERY = 300  # held bodies decoded between two yields to the loop


# --- job queues ------------------------------------------------------------------------------

def job_queues(vhost: VHost) -> dict[str, list[Queue]]:
    """Job queue name -> its queues (itself and any tenant sub-queues, which share its DLQ)."""
    ex = vhost.exchanges.get(DELAYED_EXCHANGE)
    found: dict[str, list[Queue]] = defaultdict(list)
    for binding in ex.bindings() if ex is not None else ():
        queue = vhost.queues.get(binding.destination)
        if queue is not None and not binding.destination_is_exchange:
            found[_parent(queue)].append(queue)
    return dict(sorted(found.items()))


def _parent(queue: Queue) -> str:
    key = queue.args.dead_letter_routing_key
    return key[: -len(DLQ_SUFFIX)] if key and key.endswith(DLQ_SUFFIX) else queue.name


def queue_rows(plane: Plane, held: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per job queue: queued (ready), running (unacked), retrying and delayed (of the ``held``
    rows), dead (in its DLQ), consumers."""
    waiting: dict[tuple[str, str, str], int] = defaultdict(int)
    for h in held:
        waiting[(h["vhost"], h["queue"], h["kind"])] += 1
    rows = []
    for vname, vhost in plane.broker.vhosts.items():
        for name, queues in job_queues(vhost).items():
            dlq = vhost.queues.get(name + DLQ_SUFFIX)
            rows.append({"vhost": vname, "queue": name,
                         "queued": sum(q.message_count for q in queues),
                         "running": sum(q.unacked_count for q in queues),
                         "retrying": waiting[(vname, name, "retry")],
                         "delayed": waiting[(vname, name, "delayed")],
                         "dead": dlq.message_count if dlq is not None else 0,
                         "dlq": dlq.name if dlq is not None else None,
                         "consumers": sum(len(q.consumers) for q in queues),
                         "tenant_queues": len(queues) - 1})
    return rows


# --- retries and delayed jobs ----------------------------------------------------------------

@dataclass(slots=True)
class Held:
    """Jobs the delayed exchange holds (rows earliest due first), of ``held`` messages in all:
    at most ``HTTP_JOBS_DELAYED_SCAN_MAX`` per vhost are looked at (``scanned``)."""

    rows: list[dict[str, Any]]
    held: int
    scanned: int


async def held_jobs(plane: Plane) -> Held:
    """Retries (attempt > 0) and jobs sent with a delay, read from each vhost's delay heap,
    yielding to the loop every ``YIELD_EVERY`` bodies decoded."""
    now_ms = plane.clock.now_ms()
    found = Held([], 0, 0)
    for vname, vhost in list(plane.broker.vhosts.items()):
        mono_ms = vhost.clock.monotonic_ms()
        held = vhost.delayed.held(limits.HTTP_JOBS_DELAYED_SCAN_MAX)
        found.held, found.scanned = found.held + len(vhost.delayed), found.scanned + len(held)
        for n, (due, (exchange, _key, msg, _offset)) in enumerate(held, 1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if exchange != DELAYED_EXCHANGE:
                continue
            try:
                job = JobMessage.from_body(msg.body)
            except ValueError:
                continue
            found.rows.append(_held_row(vname, job, now_ms + (due - mono_ms)))
    found.rows.sort(key=lambda row: row["due_ms"])
    return found


def _held_row(vhost: str, job: JobMessage, due_ms: int) -> dict[str, Any]:
    history = job.extra.get("history") or [{}]
    last = history[-1] if isinstance(history[-1], dict) else {}
    return {"vhost": vhost, "queue": job.queue, "job": job.job, "id": job.id, "attempt": job.attempt,
            "kind": "retry" if job.attempt > 0 else "delayed", "due_ms": due_ms,
            "error": last.get("error") if job.attempt > 0 else None,
            "failed_on": last.get("worker") if job.attempt > 0 else None}


# --- dead letters ----------------------------------------------------------------------------

def dead_letters(queue: Queue, count: int) -> list[dict[str, Any]]:
    """The first ``count`` dead letters of a job DLQ, left in place: job, id, attempts, error."""
    out: list[dict[str, Any]] = []
    for entry in islice(queue.ready_entries(), min(count, limits.DLQ_PEEK_MAX)):
        msg, headers = entry.msg, entry.msg.props.headers or {}
        try:
            job = JobMessage.from_body(msg.body)
        except ValueError:
            out.append({"job": None, "id": None, "attempts": None, "error": reason_of(headers),
                        "queue": None})
            continue
        out.append({"job": job.job, "id": job.id, "attempts": job.attempt + 1, "queue": job.queue,
                    "error": reason_of(headers), "replayed": int(job.extra.get("replayed", 0))})
    return out


def job_replay(now_ms: int, replayed: list[JobMessage]) -> Resolve:
    """Where a dead letter goes on replay: a job goes back to its queue as ``ferrymq jobs replay``
    sends it (attempt 0, history kept, replay counted; appended to ``replayed`` for the audit
    trail); anything else back to the queue its x-death names."""
    def resolve(msg: Message) -> tuple[str, Message] | None:
        headers = msg.props.headers or {}
        try:
            letter = DeadLetter(JobMessage.from_body(msg.body), reason_of(headers), headers)
        except ValueError:
            return by_death(msg)
        job = replayed_message(letter, now_ms)
        raw = job.properties()
        replayed.append(job)
        return job.queue, Message("", job.queue, job.body(), decode_properties(raw), raw)
    return resolve


# --- workers and cron entries ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SeenWorker:
    presence: Presence
    conn: AMQPConnection


def seen_workers(plane: Plane) -> list[SeenWorker]:
    found = []
    for conn in list(plane.amqp.connections):
        presence = parse(getattr(conn.codec, "client_properties", None) or {})
        if presence is not None:
            found.append(SeenWorker(presence, conn))
    return sorted(found, key=lambda w: w.presence.worker_id)


def worker_rows(plane: Plane, workers: list[SeenWorker]) -> list[dict[str, Any]]:
    now_ms, loop_s = plane.clock.now_ms(), plane.amqp.loop.time()
    rows = []
    for w in workers[: limits.HTTP_JOBS_ROWS_MAX]:
        p, conn = w.presence, w.conn
        age_ms = max(0, int((loop_s - conn.last_recv_s) * 1000))
        timeout_s = conn.codec.heartbeat
        rows.append({"worker_id": p.worker_id, "host": p.host, "pid": p.pid, "queues": list(p.queues),
                     "concurrency": p.concurrency, "scheduler": p.scheduler, "connection": conn.name,
                     "vhost": conn.vhost.name if conn.vhost is not None else None,
                     "connected_at": conn.connected_at, "last_heartbeat_ms": now_ms - age_ms,
                     "heartbeat_age_ms": age_ms, "heartbeat_timeout_s": timeout_s,
                     "state": "late" if timeout_s and age_ms > timeout_s * 1000 else "alive",
                     "running": sum(ch.unacked_count for ch in conn.channels.values()),
                     "consumers": sum(len(ch.consumers) for ch in conn.channels.values())})
    return rows


def cron_rows(plane: Plane, workers: list[SeenWorker]) -> list[dict[str, Any]]:
    """Every schedule the connected workers announce, once, with its next runs and the workers
    that run a scheduler for it (the store says which of them leads)."""
    now_ms = plane.clock.now_ms()
    specs: dict[str, dict[str, Any]] = {}
    for w in workers:
        for s in w.presence.schedules:
            row = specs.setdefault(s.name, {"name": s.name, "cron": s.cron, "tz": s.tz, "job": s.job,
                                            "missed": s.missed, "schedulers": []})
            if w.presence.scheduler:
                row["schedulers"].append(w.presence.worker_id)
    for row in specs.values():
        row["next_runs"], row["error"] = _next_runs(row["cron"], row["tz"], now_ms)
    return sorted(specs.values(), key=lambda r: (r["next_runs"][0] if r["next_runs"] else 2**63, r["name"]))


def _next_runs(cron: str, tz: str, now_ms: int) -> tuple[list[int], str | None]:
    try:
        return list(islice(CronSchedule(cron, tz).after(now_ms), limits.HTTP_JOBS_NEXT_RUNS)), None
    except CronError as exc:
        return [], str(exc)
