"""The generator's processes: each runs its share of the loops (or pollers) on its own event loop
(uvloop), opens its connections before the window, marks its counters and CPU at the window's two
edges (monotonic times the parent chose, so every process measures the same window) and sends its
tally back. ``processes=0`` runs the share in the calling process (tests, debugging)."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from ferrymq.bench.sqs import calls, idle, pipeline
from ferrymq.bench.sqs.tally import Tally
from ferrymq.bench.sqs.transport import AiohttpClient, Client, RawClient, new_event_loop

CONNECT_AT_ONCE = 100  # concurrent connects while opening (a listen backlog is often 128)


@dataclass(frozen=True)
class Job:
    workload: str  # "pipeline" or "idle-pollers"
    host: str
    port: int
    auth: str | None
    queue_url: str
    connections: int
    start_at: float  # time.monotonic() of the window's start
    seconds: float
    client: str = "raw"
    body_bytes: int = 100
    wait_s: int = 1
    verify: bool = False
    tag: str = "p0"


def run_job(job: Job) -> dict[str, Any]:
    """A process's whole share; the entry point of each generator process."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(_share(job))


async def _share(job: Job) -> dict[str, Any]:
    tally, stop = Tally(job.verify), asyncio.Event()
    session, clients = await _clients(job)
    loop = asyncio.get_running_loop()
    now = time.monotonic()
    loop.call_later(max(0.0, job.start_at - now), tally.mark, "start")
    loop.call_later(max(0.0, job.start_at + job.seconds - now), _end, tally, stop)
    late = time.monotonic() > job.start_at
    try:
        if job.workload == "pipeline":
            sent = await pipeline.run(clients, job.queue_url, job.tag, job.body_bytes, job.wait_s, tally,
                                      stop)
        else:
            await idle.run(clients, job.queue_url, tally, stop)
            sent = {}
    finally:
        for c in clients:
            await c.close()
        if session is not None:
            await session.close()
    return {**tally.result(), "sent_by_tag": sent, "late_start": late,
            "reconnects": sum(c.reconnects for c in clients), "connections": len(clients)}


def _end(tally: Tally, stop: asyncio.Event) -> None:
    tally.mark("end")
    stop.set()


async def _clients(job: Job) -> tuple[Any, list[Client]]:
    clients: list[Client]
    session = None
    if job.client == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"))
        base = f"http://{job.host}:{job.port}"
        clients = [AiohttpClient(base, calls.headers(job.auth), session) for _ in range(job.connections)]
    else:
        heads = calls.heads(f"{job.host}:{job.port}", job.auth)
        clients = [RawClient(job.host, job.port, heads) for _ in range(job.connections)]
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)

    async def connect(c: Client) -> None:
        async with gate:
            await c.connect()

    await asyncio.gather(*(connect(c) for c in clients))
    return session, clients


def split(job: Job, processes: int) -> list[Job]:
    """The job's connections dealt across ``processes`` (each a distinct tag)."""
    n = max(1, processes)
    shares = [job.connections // n + (1 if i < job.connections % n else 0) for i in range(n)]
    return [replace(job, connections=c, tag=f"p{i}") for i, c in enumerate(shares) if c]


def run_all(job: Job, processes: int) -> list[dict[str, Any]]:
    if processes == 0:
        return [run_job(job)]
    jobs = split(job, processes)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(jobs), mp_context=ctx) as pool:
        return list(pool.map(run_job, jobs))
