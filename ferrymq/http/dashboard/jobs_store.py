"""The job store, read by the broker for its Jobs page when ``jobs_store`` names it.

The store is the one the app's workers write (``App(store=..., state=True)``): per-job states
(``ferrymq.jobs.state``), the scheduler's leader lease and its fires (``ferrymq.jobs.scheduler``).
The broker reads them with those modules' own queries, in a thread (``asyncio.to_thread``): a
database call never blocks the event loop. It records a 'replayed' event for a job replayed from
the dashboard, as ``ferrymq jobs replay`` does.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlparse

from aiohttp import web

from ferrymq.http.plane import PLANE
from ferrymq.jobs.broker import dlq_name
from ferrymq.jobs.db import Database
from ferrymq.jobs.dlq import REPLAYER
from ferrymq.jobs.leases import LeaseStore
from ferrymq.jobs.message import JobMessage
from ferrymq.jobs.scheduler import LEASE_NAME, FireLog
from ferrymq.jobs.state import StateStore

log = logging.getLogger("ferrymq.http.jobs")

# what each state-store state counts as on the page
SUMMARY = {"queued": ("enqueued", "replayed"), "running": ("started",), "retrying": ("retried",),
           "succeeded": ("succeeded",), "failed": ("failed",), "dead": ("dead",),
           "cancelled": ("cancelled", "skipped")}


class JobsStore:
    """The store's readers, opened once (tables are created if the workers have not yet)."""

    def __init__(self, url: str) -> None:
        self.url = url
        db = Database(url)
        self.states = StateStore(db)
        self.leases = LeaseStore(db)
        self.fires = FireLog(db)

    def by_job(self) -> list[dict[str, Any]]:
        return [{"job": job, "states": states,
                 **{name: sum(states.get(s, 0) for s in parts) for name, parts in SUMMARY.items()}}
                for job, states in self.states.counts_by_job().items()]

    def scheduler(self) -> dict[str, Any]:
        lease = self.leases.get(LEASE_NAME)
        return {"leader": lease.holder if lease is not None else None,
                "lease_expires_ms": lease.expires_ms if lease is not None else None,
                "last_fires": self.fires.last_sent()}

    def audit(self, messages: list[JobMessage]) -> None:
        for m in messages:
            self.states.record(m.id, m.job, m.queue, "replayed", m.enqueued_ms, worker_id=REPLAYER,
                               attempt=0, detail=f"replay {m.extra['replayed']} from {dlq_name(m.queue)}"
                               " (dashboard)")
        self.states.flush()


_OPEN: dict[str, JobsStore] = {}  # by URL: opened once per process, on first use


def redacted(url: str) -> str:
    """The store's URL without a password (shown on the page)."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    return parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@")).geturl()


async def read(app: web.Application, what: str) -> tuple[Any, str | None]:
    """(``JobsStore.<what>()``, None), or (None, why not): no store configured, or it failed."""
    url = app[PLANE].settings.jobs_store
    if not url:
        return None, None
    try:
        store = await _store(url)
        return await asyncio.to_thread(getattr(store, what)), None
    except Exception as exc:  # an unreachable or foreign database: said on the page, never a 500
        log.warning("jobs store %s: %s", redacted(url), exc)
        return None, f"{type(exc).__name__}: {exc}"


async def _store(url: str) -> JobsStore:
    store = _OPEN.get(url)
    if store is None:
        store = _OPEN.setdefault(url, await asyncio.to_thread(JobsStore, url))
    return store


async def audit(app: web.Application, messages: list[JobMessage]) -> None:
    """Record dashboard replays in the audit trail, when there is a store; a failure is logged."""
    url = app[PLANE].settings.jobs_store
    if not messages or not url:
        return
    try:
        store = await _store(url)
        await asyncio.to_thread(store.audit, messages)
    except Exception as exc:
        log.warning("jobs store %s: recording %d replays failed: %s", redacted(url), len(messages), exc)
