"""Start and stop the whole broker: the same stack for `ferrymq serve` and EmbeddedBroker."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ferrymq import limits
from ferrymq.clock import Clock, Rng, SystemClock
from ferrymq.config import Settings
from ferrymq.core.broker import Broker
from ferrymq.http.plane import Plane
from ferrymq.http.server import HttpServer
from ferrymq.server.amqp.server import AMQPServer
from ferrymq.server.amqp.streams import AmqpStreams
from ferrymq.server.amqp.super_streams import SuperStreams
from ferrymq.server.boot_definitions import load_definitions, read_definitions
from ferrymq.server.commit import CommitPipeline
from ferrymq.server.durability import Durability
from ferrymq.server.kafka.server import KafkaServer
from ferrymq.server.streams import Streams
from ferrymq.server.tls import server_context, tls_wanted
from ferrymq.storage.commit import FsyncPolicy

log = logging.getLogger("ferrymq")


@dataclass(slots=True)
class Running:
    broker: Broker
    amqp: AMQPServer
    amqp_port: int
    commit: CommitPipeline
    streams: Streams
    durability: Durability | None = None
    kafka: KafkaServer | None = None
    kafka_port: int = 0
    http: HttpServer | None = None
    http_port: int = 0
    amqps_port: int = 0  # the TLS listeners: 0 when off
    kafka_ssl_port: int = 0
    https_port: int = 0


class ListenerError(Exception):
    """A listener could not open (a busy port, an address not ours): one line for the user."""

    def __init__(self, name: str, flag: str, host: str, port: int, exc: OSError) -> None:
        super().__init__(f"cannot open the {name} listener on {host}:{port}: "
                         f"{exc.strerror or exc} (choose another port with {flag})")


async def listen(name: str, flag: str, host: str, port: int,
                 start: Callable[[str, int], Awaitable[int]]) -> int:
    try:
        return await start(host, port)
    except OSError as exc:
        raise ListenerError(name, flag, host, port, exc) from None


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when available: the numbers in BENCHMARKS.md are measured on it."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def raise_fd_limit() -> None:
    """Every durable queue keeps its segment files open: take all the descriptors we may."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not POSIX, or not allowed
        pass


def tune_gc() -> None:
    """Fewer, cheaper collections: a full pass over many objects stalls every connection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def open_stores(settings: Settings, loop: asyncio.AbstractEventLoop, clock: Clock) -> Running:
    """The broker and everything it stores, recovered, before any listener opens."""
    # one commit pipeline for every front end; without a data directory nothing is fsynced
    policy = FsyncPolicy.parse(settings.fsync) if settings.data_dir else FsyncPolicy("never")
    commit = CommitPipeline(policy, loop, clock)
    durability = Durability(settings, commit) if settings.data_dir else None
    broker = Broker(
        clock, Rng(), users=settings.users,
        loopback_only_users=frozenset(settings.loopback_users),
        consumer_timeout_ms=settings.consumer_timeout_ms,
        topology=durability.metadata if durability is not None else None,
    )
    streams = Streams(settings, clock)
    truncated = streams.load()  # before recovery: stream queues are declared again on their topics
    kafka = KafkaServer(settings, streams.topics, commit, clock, streams.base / "stream-offsets", broker)
    restored = kafka.load()
    log.info("streams: %d topic(s) opened, %d byte(s) of torn tail truncated, %d committed offset(s)",
             len(streams.topics.topics), truncated, restored)
    broker.streams = AmqpStreams(streams.topics, commit, clock)
    SuperStreams(broker, streams.topics, broker.streams)  # multi-partition topics as super streams
    if durability is not None:
        log.info("%s: %s", settings.data_dir, durability.recover(broker).line())
        for scope, name, values in durability.metadata.load_limits():  # rabbitmqctl set_*_limits
            broker.limits.restore(scope, name, values)
    else:
        log.warning("no data directory: nothing will survive a restart")
    amqp = AMQPServer(broker, settings, commit, durability)
    kafka.producer.throttle_ms = lambda: limits.KAFKA_ALARM_THROTTLE_MS if amqp.alarm else 0
    return Running(broker, amqp, 0, commit, streams, durability, kafka)


async def start(settings: Settings, clock: Clock | None = None) -> Running:
    """The `serve` stack: one clock (SystemClock unless given), one commit pipeline, three listeners."""
    raise_fd_limit()
    clock = clock or SystemClock()
    tls = server_context(settings) if tls_wanted(settings) else None  # a bad file: before any store opens
    definitions = read_definitions(settings.load_definitions)  # a bad file: before any store opens
    running = open_stores(settings, asyncio.get_running_loop(), clock)
    load_definitions(running.broker, definitions)
    running.amqp_port = await listen("AMQP 0-9-1", "--amqp-port", settings.host, settings.amqp_port,
                                     running.amqp.start)
    running.streams.start()
    assert running.kafka is not None
    try:
        running.kafka_port = await listen("Kafka", "--kafka-port", settings.host, settings.kafka_port,
                                          running.kafka.start)
    except ListenerError as exc:  # a busy Kafka port must not take the AMQP broker down with it
        log.error("%s; stream queues still work over AMQP", exc)
        running.kafka_port = 0
    running.http = HttpServer(Plane(running.broker, running.amqp, running.commit, running.streams,
                                    settings, clock, running.durability, running.kafka))
    running.http_port = await listen("HTTP", "--http-port", settings.host, settings.http_port,
                                     running.http.start)
    if tls is not None:
        await start_tls_listeners(settings, running, tls)
    tune_gc()
    log.info("AMQP 0-9-1 listening on %s:%d", settings.host, running.amqp_port)
    log.info("Kafka listening on %s:%d", settings.host, running.kafka_port)
    log.info("HTTP (management API, /metrics, dashboard) on http://%s:%d/", settings.host,
             running.http_port)
    return running


def any_free(port: int) -> int:
    """A TLS port of 0 is off, so -1 asks for any free port (tests, as 0 does for plain listeners)."""
    return 0 if port < 0 else port


async def start_tls_listeners(settings: Settings, running: Running, ctx: ssl.SSLContext) -> None:
    """AMQPS, Kafka SSL and HTTPS, each only when its port is set, all with the one context."""
    host = settings.host
    if settings.amqps_port:
        running.amqps_port = await listen("AMQPS", "--amqps-port", host, any_free(settings.amqps_port),
                                          functools.partial(running.amqp.start_tls, ctx=ctx))
        log.info("AMQP 0-9-1 over TLS listening on %s:%d", host, running.amqps_port)
    if settings.kafka_ssl_port and running.kafka is not None:
        try:
            running.kafka_ssl_port = await listen(
                "Kafka SSL", "--kafka-ssl-port", host, any_free(settings.kafka_ssl_port),
                functools.partial(running.kafka.start_tls, ctx=ctx))
            log.info("Kafka SSL and SASL_SSL listening on %s:%d", host, running.kafka_ssl_port)
        except ListenerError as exc:  # as for the plain Kafka port: AMQP keeps working
            log.error("%s", exc)
    if settings.https_port and running.http is not None:
        running.https_port = await listen("HTTPS", "--https-port", host, any_free(settings.https_port),
                                          functools.partial(running.http.start_tls, ctx=ctx))
        log.info("HTTPS (management API, SQS, /metrics, dashboard) on https://%s:%d/", host,
                 running.https_port)


async def serve(
    settings: Settings,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Running], None] | None = None,
    clock: Clock | None = None,
) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    running = await start(settings, clock)
    if on_ready is not None:
        on_ready(running)
    await stop.wait()
    log.info("shutting down")
    if running.http is not None:
        await running.http.stop()
    await running.amqp.close()
    if running.kafka is not None:
        await running.kafka.stop()
    await running.streams.stop()
    running.commit.close()  # writes and syncs what the front ends left, stream batches included
    if running.durability is not None:
        running.durability.close()
    if running.kafka is not None:
        running.kafka.close()
    running.streams.close()


def run(settings: Settings) -> None:
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(serve(settings))
