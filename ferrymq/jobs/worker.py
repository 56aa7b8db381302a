"""A worker process: one I/O thread on one AMQP connection, N job threads.

The I/O thread owns the consuming socket. It reads deliveries in place (``InboundReader``),
keeps them in one local buffer per queue, and hands them to job threads through one queue,
picking across queues by stride scheduling on their weights, with at most ``concurrency``
jobs handed out at a time (so one queue's backlog cannot take every slot, and nothing waits in
a thread's hands that another worker could run). Job threads run a job to its verdict
(``Processor``), publish retries and dead letters through the app's confirmed publisher, and
append the delivery tag to ``done``; the I/O thread acks everything done in one write per loop
turn. An ack is sent only after the verdict's publish was confirmed: a crash anywhere loses
nothing and at worst runs a job again under the same id.
"""

from __future__ import annotations

import logging
import os
import queue as queue_mod
import select
import threading
from collections import deque
from dataclasses import dataclass

from pamqp import commands as c
from pamqp.base import Frame

from ferrymq.client.connection import BrokerClosed, Client
from ferrymq.client.deliveries import Confirm, Delivery, InboundReader
from ferrymq.jobs import presence, tenants
from ferrymq.jobs.app import App
from ferrymq.jobs.broker import Topology
from ferrymq.jobs.runner import AsyncLoop, JobThread, Watchdog
from ferrymq.jobs.stride import StridePicker
from ferrymq.jobs.tenants import TenantPicker
from ferrymq.protocols.amqp import client as codec
from ferrymq.protocols.amqp.frames import HEARTBEAT_FRAME
from ferrymq.protocols.amqp.properties import Properties, encode_properties

log = logging.getLogger("ferrymq.jobs.worker")

RECV_BYTES = 256 * 1024
RECONNECT_MIN_MS, RECONNECT_MAX_MS = 100, 5_000
# Adaptive prefetch (FerryMQ): hold, besides one delivery per slot, only about BUFFER_MS of work
# per slot, judged from recent job durations: thousands of no-op jobs stream, a 10-s job is
# never held back while another worker idles.
BUFFER_MS = 20.0
EXTRA_MAX = 512
ADAPT_EVERY_MS = 200
CANCEL_POLL_MS = 1_000
LEASE_EXCHANGE = "amq.ferrymq.lease"  # FerryMQ's lease extension (docs/extensions.md)
BATCH_MAX, BATCH_BELOW_MS = 16, 0.2  # jobs under 0.2 ms go to threads 16 at a time
DONE, ACKED, REJECTED = 0, 1, 2  # a finished delivery: not yet acked on the wire, acked alone, requeued


@dataclass
class WorkerConfig:
    concurrency: int = 8
    queues: list[str] | None = None  # None: every queue the app knows
    prefetch: int | None = None  # per queue, fixed; None: adaptive on FerryMQ, 2 x concurrency elsewhere
    heartbeat_s: int = 30
    drain_timeout_ms: int = 30_000
    max_tasks: int | None = None  # exit (to be restarted) after this many jobs
    max_memory_mb: int | None = None  # exit (to be restarted) past this peak RSS
    worker_id: str | None = None
    scheduler: bool = False  # this process runs the app's cron scheduler (told to the broker)


class Worker:
    def __init__(self, app: App, config: WorkerConfig | None = None) -> None:
        self.app = app
        self.config = config or WorkerConfig()
        self.worker_id = self.config.worker_id or f"{os.uname().nodename}:{os.getpid()}:{id(self) & 0xFFFF:x}"
        names = self.config.queues or list(app.queues) or ["default"]
        self.weights = {name: app.queues.get(name, 50) for name in names}
        self.tasks: queue_mod.SimpleQueue[tuple[int, list[Delivery]] | None] = queue_mod.SimpleQueue()
        # (connection generation, tag, requeue); a deque, because append and popleft are atomic
        # (swapping a list for a new one loses what a thread appends to the old one meanwhile)
        self.done: deque[tuple[int, int, bool]] = deque()
        self.woken = False  # a wake byte is on its way: job threads need not write another
        self.busy_ns = 0  # time spent in jobs and jobs timed (statistics: races only blur them)
        self.timed = 0
        self.generation = 0
        self.processed = 0
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._stopped = threading.Event()
        self.watchdog: Watchdog | None = None  # started by the first job thread that needs it
        self.loop = AsyncLoop() if any(j.is_async for j in app.jobs.values()) else None
        self.threads = [JobThread(self, n) for n in range(self.config.concurrency)]

    # --- control (any thread, or a signal handler) ---------------------------------------

    def stop(self) -> None:
        """Drain: stop fetching, finish what runs (within the deadline), requeue the rest."""
        self._stopping.set()
        self.wake()

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def wait_started(self, timeout: float = 30.0) -> None:
        if not self._started.wait(timeout):
            raise TimeoutError("the worker did not connect in time")

    def job_finished(self, generation: int, tag: int, requeue: bool = False) -> None:
        """Called by a job thread: the tag may be acked (or requeued) on the next loop turn."""
        self.done.append((generation, tag, requeue))
        if not self.woken:  # one syscall per loop turn, not one per job
            self.woken = True
            self.wake()

    # --- the I/O thread -------------------------------------------------------------------

    def run(self) -> None:
        """Connect (again, with backoff, after a broker goes away) and serve until stopped."""
        for thread in self.threads:
            thread.start()
        for hook in self.app.hooks.after_worker_boot:
            hook(self)
        backoff = RECONNECT_MIN_MS
        try:
            while not self._stopping.is_set():
                try:
                    Session(self).serve()
                    backoff = RECONNECT_MIN_MS
                except (OSError, BrokerClosed) as exc:
                    log.warning("broker connection lost (%s); reconnecting in %d ms", exc, backoff)
                    self._stopping.wait(backoff / 1000)
                    backoff = min(RECONNECT_MAX_MS, backoff * 2)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        for hook in self.app.hooks.before_worker_shutdown:
            hook(self)
        for _ in self.threads:
            self.tasks.put(None)
        for thread in self.threads:
            thread.join(timeout=self.config.drain_timeout_ms / 1000)
        if self.loop is not None:
            self.loop.close()
        self.app.close()
        self._stopped.set()

    def recycle_due(self) -> bool:
        limit = self.config.max_tasks
        if limit is not None and self.processed >= limit:
            return True
        if self.config.max_memory_mb is not None:
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 > self.config.max_memory_mb
        return False


class Session:
    """One connection's life: declare, consume, pump deliveries and acks until it ends."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        worker.generation += 1
        self.generation = worker.generation
        config = worker.config
        self.prefetch = config.prefetch or 2 * config.concurrency
        self.adaptive = False  # decided once connected: FerryMQ, no fixed --prefetch
        self.batch = 1  # deliveries per handoff to a job thread (adapted like the window)
        self.window = 0
        self.next_adapt = 0
        self.timed_seen = self.busy_seen = 0
        self.lease_ms: int | None = None
        self.next_lease = 0
        self.next_cancel_poll = 0
        self.extend_frame = b""
        table = presence.announcement(worker.app, worker.worker_id, list(worker.weights), config.concurrency,
                                      config.scheduler)
        self.client = Client(worker.app.url, product="ferrymq.jobs worker",
                             properties={presence.KEY: table}).open(heartbeat=config.heartbeat_s)
        self.reader = InboundReader()
        self.buffers: dict[str, deque[Delivery]] = {name: deque() for name in worker.weights}
        self.fair = [name for name in worker.weights if name in worker.app.fair_queues]
        self.picker: StridePicker | TenantPicker = (
            TenantPicker(worker.weights, self.buffers) if self.fair else StridePicker(worker.weights))
        self.window_floor = 0  # the channel-wide window leaves every tenant consumer its prefetch
        if self.fair:  # the plain path stays as it is without fair queues
            self._take = self._take_with_announcements  # type: ignore[method-assign]
        self.inflight = 0
        self.acked_upto = 0  # every delivery tag <= this is settled (tags count 1, 2, ... per channel)
        self.settled: dict[int, int] = {}  # tag above acked_upto -> DONE, ACKED or REJECTED
        self.clock = worker.app.clock
        self.last_sent = self.last_heard = self.clock.monotonic_ms()

    def serve(self) -> None:
        try:
            self._consume()
            self.worker._started.set()
            self._pump()
            self._drain()
        finally:
            self.client.close(timeout=2.0)

    def _consume(self) -> None:
        topology = Topology(self.client, self.clock, self.worker.app.queue_shape())
        for name in self.buffers:
            topology.queue(name)
        # One write, no waiting for the replies: the first queue's deliveries may arrive before
        # the last consume-ok, and the in-place reader (which skips the -ok replies) sees them all.
        self.adaptive = topology.ferrymq and self.worker.config.prefetch is None
        self.lease_ms = self.worker.app.lease_ms if topology.ferrymq else None
        if self.lease_ms:
            props = encode_properties(Properties(headers={"x-lease-ms": self.lease_ms}))
            self.extend_frame = codec.encode_publish(1, LEASE_EXCHANGE, "*", b"", props)
        if self.adaptive:  # a channel-wide limit, which FerryMQ changes at once when re-sent
            self.window = 2 * self.worker.config.concurrency
            methods: list[Frame] = [c.Basic.Qos(prefetch_count=self.window, global_=True)]
        else:
            methods = [c.Basic.Qos(prefetch_count=self.prefetch)]
        methods += [c.Basic.Consume(queue=name, consumer_tag=name) for name in self.buffers]
        tenant_frames = self._start_tenants(topology) if self.fair else b""
        self._send(b"".join(codec.encode_method(1, m) for m in methods) + tenant_frames)
        deliveries: list[Delivery] = []
        self.reader.feed(bytes(self.client.buf), deliveries, [])
        self.client.buf.clear()
        self._take(deliveries)

    def _start_tenants(self, topology: Topology) -> bytes:
        """Listen for new tenant sub-queues (bound before the registry is read, so none is missed
        in between), consume every one the registries know, and re-announce those to workers."""
        client, keys = self.client, []
        declared = client.call(c.Queue.Declare(queue="", exclusive=True, auto_delete=True), c.Queue.DeclareOk)
        for queue in self.fair:
            tenants.declare_announcements(client, queue)
            keys += [tenants.announce_key(queue), tenants.known_key(queue)]
        for key in keys:
            client.bind(declared.queue, tenants.TENANTS_EXCHANGE, key)
        known = tenants.read_registry(self.worker.app.url, self.fair)
        listen = c.Basic.Consume(queue=declared.queue, consumer_tag=tenants.ANNOUNCE_TAG, no_ack=True)
        frames = [codec.encode_method(1, listen)]
        for queue, names in known.items():
            for name in names:
                topology.tenant_queue(queue, name, announce=False)
                frames.append(tenants.announce_frame(queue, name, tenants.known_key(queue), client.frame_max))
                frames.append(self._add_tenant(queue, name))
        return b"".join(frames)

    def _add_tenant(self, queue: str, name: str) -> bytes:
        """A buffer, a place in the picker and a consumer (with its own prefetch) for ``name``."""
        if name in self.buffers:
            return b""
        self.buffers[name] = deque()
        assert isinstance(self.picker, TenantPicker)
        self.picker.add(name, queue)
        config = self.worker.config
        prefetch = config.prefetch or 2 * config.concurrency
        frames = tenants.consume_frames([name], prefetch)
        self.window_floor = config.concurrency + prefetch * (len(self.buffers) - len(self.worker.weights))
        if self.adaptive and self.window < self.window_floor:
            self.window = self.window_floor
            frames = codec.encode_method(1, c.Basic.Qos(prefetch_count=self.window, global_=True)) + frames
        return frames

    def _announced(self, delivery: Delivery) -> None:
        """Not a job: an announcement (consumed without acks; its tag needs no settling)."""
        self.settled[delivery[1]] = ACKED
        parsed = tenants.parse_announcement(delivery[4]) if delivery[0] == tenants.ANNOUNCE_TAG else None
        if parsed is not None and parsed[0] in self.fair:
            frames = self._add_tenant(*parsed)
            if frames:
                log.info("consuming tenant queue %s", parsed[1])
                self._send(frames)

    def _pump(self) -> None:
        worker, sock = self.worker, self.client.sock
        sock.setblocking(False)
        sock_fd = sock.fileno()
        deliveries: list[Delivery] = []
        confirms: list[Confirm] = []
        wait_s = max(1, worker.config.heartbeat_s // 2) if worker.config.heartbeat_s else 1.0
        if self.lease_ms:  # wake in time to extend leases even when nothing else happens
            wait_s = min(wait_s, self.lease_ms / 3000)
        if worker.app.state is not None:
            wait_s = min(wait_s, CANCEL_POLL_MS / 1000)
        while not worker._stopping.is_set() and not worker.recycle_due():
            self._dispatch()
            readable, _, _ = select.select([sock_fd, worker._wake_r], [], [], wait_s)
            if sock_fd in readable:
                self._read(deliveries, confirms)
            if worker._wake_r in readable:
                _drain_pipe(worker._wake_r)
                worker.woken = False  # after the drain: a byte written before it is gone, so
                # a thread that saw woken=True must have appended before the flush below
            self._flush_done()
            self._heartbeat()
            self._adapt()
            self._extend_leases()
            self._poll_cancellations()
        if worker.recycle_due():
            log.info("worker %s recycles after %d jobs", worker.worker_id, worker.processed)
            worker._stopping.set()

    def _read(self, deliveries: list[Delivery], confirms: list[Confirm]) -> None:
        try:
            data = self.client.sock.recv(RECV_BYTES)
        except BlockingIOError:
            return
        if not data:
            raise BrokerClosed("the broker closed the connection")
        self.last_heard = self.clock.monotonic_ms()
        self.reader.feed(data, deliveries, confirms)
        confirms.clear()
        if deliveries:
            self._take(deliveries)
            deliveries.clear()

    def _take(self, deliveries: list[Delivery]) -> None:
        buffers = self.buffers
        for delivery in deliveries:
            buffers[delivery[0]].append(delivery)

    def _take_with_announcements(self, deliveries: list[Delivery]) -> None:
        """``_take`` for a session with fair queues: some deliveries announce tenant sub-queues."""
        buffers = self.buffers
        for delivery in deliveries:
            buffer = buffers.get(delivery[0])
            if buffer is None:
                self._announced(delivery)
            else:
                buffer.append(delivery)

    def _dispatch(self) -> None:
        """Hand out buffered deliveries while slots are free, weighted across queues: one at a
        time, or, for jobs far shorter than a thread handoff is worth, a few per handoff."""
        batch = self.batch
        limit = self.worker.config.concurrency * batch
        buffers, put, gen, pick = self.buffers, self.worker.tasks.put, self.generation, self.picker.pick
        while self.inflight < limit:
            name = pick(buffers)
            if name is None:
                return
            if batch == 1:
                put((gen, [buffers[name].popleft()]))
                self.inflight += 1
                continue
            taken = [buffers[name].popleft()]
            while len(taken) < batch and (name := pick(buffers)) is not None:
                taken.append(buffers[name].popleft())
            put((gen, taken))
            self.inflight += len(taken)

    def _flush_done(self) -> None:
        worker = self.worker
        if not worker.done:
            return
        pop = worker.done.popleft
        done = [pop() for _ in range(len(worker.done))]
        mine = [(tag, requeue) for gen, tag, requeue in done if gen == self.generation]
        self.inflight -= len(mine)  # a stale tag belongs to a connection that is gone
        worker.processed += len(mine)
        if mine:
            self._send(self._settle_frames(mine))

    def _settle_frames(self, mine: list[tuple[int, bool]]) -> bytes:
        """Rejects first, then one ``multiple`` ack for the run of settled tags from the bottom
        and single acks above the first gap (a job still running): the broker handles one frame
        where there were dozens, and a long job never holds back the acks of the ones after it.
        A multiple ack must name a tag still unacked (RabbitMQ's rule), so it names the last
        tag of the run that no single ack or reject has settled."""
        settled = self.settled
        rejects = []
        for tag, requeue in mine:
            settled[tag] = REJECTED if requeue else DONE
            if requeue:
                rejects.append(codec.encode_reject(1, tag, True))
        upto, last_unacked = self.acked_upto, 0
        while upto + 1 in settled:
            upto += 1
            if settled.pop(upto) == DONE:
                last_unacked = upto
        self.acked_upto = upto
        frames = rejects
        if last_unacked:
            frames.append(codec.encode_ack(1, last_unacked, multiple=True))
        above = [tag for tag, requeue in mine if tag > upto and not requeue]
        for tag in above:
            settled[tag] = ACKED
        if above:
            frames.append(codec.encode_acks(1, above))
        return b"".join(frames)

    def _send(self, data: bytes) -> None:
        self.client.sock.setblocking(True)
        try:
            self.client.sock.sendall(data)
        finally:
            self.client.sock.setblocking(False)
        self.last_sent = self.clock.monotonic_ms()

    def _adapt(self) -> None:
        """Resize the channel's prefetch window to the work recent job durations call for."""
        now = self.clock.monotonic_ms()
        if not self.adaptive or now < self.next_adapt:
            return
        self.next_adapt = now + ADAPT_EVERY_MS
        worker = self.worker
        jobs, busy = worker.timed - self.timed_seen, worker.busy_ns - self.busy_seen
        self.timed_seen, self.busy_seen = worker.timed, worker.busy_ns
        if jobs <= 0:
            return
        mean_ms = max(busy / jobs / 1e6, 0.001)
        self.batch = BATCH_MAX if mean_ms < BATCH_BELOW_MS else 1
        slots = worker.config.concurrency
        window = max(self.window_floor, slots + min(EXTRA_MAX, int(slots * BUFFER_MS / mean_ms)))
        if abs(window - self.window) * 5 > self.window:
            self.window = window
            log.debug("prefetch window %d (mean job %.3f ms)", window, mean_ms)
            self._send(codec.encode_method(1, c.Basic.Qos(prefetch_count=window, global_=True)))

    def _extend_leases(self) -> None:
        """Every third of the lease, extend the lease of every delivery this worker holds (one
        publish to FerryMQ's ``amq.ferrymq.lease``, routing key ``*``): a live worker keeps its
        jobs however long they run; a frozen one stops extending and loses them after a lease."""
        lease = self.lease_ms
        if not lease:
            return
        now = self.clock.monotonic_ms()
        if now < self.next_lease:
            return
        self.next_lease = now + max(1, lease // 3)
        self._send(self.extend_frame)

    def _poll_cancellations(self) -> None:
        """About once a second, with job state kept: flag running jobs someone cancelled
        (``ctx.cancelled``; the job decides where to stop)."""
        state = self.worker.app.state
        now = self.clock.monotonic_ms()
        if state is None or now < self.next_cancel_poll:
            return
        self.next_cancel_poll = now + CANCEL_POLL_MS
        running = [t.processor.current for t in self.worker.threads if t.processor.current is not None]
        if running:
            state.mark_cancelled(running)

    def _heartbeat(self) -> None:
        interval_ms = self.worker.config.heartbeat_s * 1000
        if not interval_ms:
            return
        now = self.clock.monotonic_ms()
        if now - self.last_heard > 2 * interval_ms:
            raise BrokerClosed("missed the broker's heartbeats")
        if now - self.last_sent >= interval_ms // 2:
            self._send(HEARTBEAT_FRAME)

    def _drain(self) -> None:
        """Stop fetching, requeue what waits here, let running jobs finish within the deadline."""
        worker = self.worker
        self._send(b"".join(codec.encode_method(1, c.Basic.Cancel(consumer_tag=name, nowait=True))
                            for name in self.buffers))
        waiting = [d for buffer in self.buffers.values() for d in buffer]
        for buffer in self.buffers.values():
            buffer.clear()
        if waiting:
            self._send(b"".join(codec.encode_reject(1, d[1], True) for d in waiting))
        deadline = self.clock.monotonic_ms() + worker.config.drain_timeout_ms
        while self.inflight > 0 and self.clock.monotonic_ms() < deadline:
            select.select([worker._wake_r], [], [], 0.1)
            _drain_pipe(worker._wake_r)
            self._flush_done()
        self._flush_done()


def _drain_pipe(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass

