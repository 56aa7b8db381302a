"""The QueueLab workload advisor (`ferrymq lab advise`): a workload described in numbers in, a model
(queue or log), its knobs, the reasons and the warnings out — and the advised set-up as a lab
scenario, so the advice can be checked by running it rather than taken on trust.

Pure and deterministic: no I/O, no clock. Every number a reason quotes is an input or one of the
named constants below, and each reason names the inputs it quotes (``Reason.fields``), so a test
can hold every sentence to its evidence. The rules and their sources: docs/lab-advise.md.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ferrymq import limits

# Assumptions and rules of thumb, each quoted by name where it is used.
UTILISATION = 0.7  # consumers sized to be busy 70 % of the time: queueing delay climbs steeply above
ROUND_TRIP_MS = 2.0  # client <-> broker round trip assumed (LAN, acks batched)
PREFETCH_MAX = 300  # RabbitMQ: 100-300 usually gives the best throughput; more only hoards
LONG_JOB_MS = 100.0  # a job this long or longer: prefetch 1, a queue's per-message lease fits best
LEASE_MARGIN = 2.0  # lease = prefetch x job p99 x margin
LEASE_MIN_S = 5.0
RABBITMQ_CONSUMER_TIMEOUT_S = 1800.0  # RabbitMQ's default consumer_timeout (30 min)
SQS_MAX_VISIBILITY_S = 43200.0  # SQS VisibilityTimeout's top (12 h)
DELIVERY_LIMIT = 5  # deliveries before a message goes to the dead-letter queue
BACKLOG_S = 60.0  # a queue's max length: this many seconds of arrivals
DEDUP_WINDOW_S = 300.0  # SQS FIFO's deduplication interval (5 min)
FIFO_QUEUE_MAX_RATE = 3000.0  # msg/s: SQS FIFO's quota with batching, beyond which groups fall short
PARTITION_MSGS_PER_S = 10_000.0  # assumed per-partition throughput (measure yours)
PARTITION_BYTES_PER_S = 10 * 1024 * 1024  # assumed: Kafka does tens of MB/s per partition
PARTITION_HEADROOM = 2  # adding partitions later moves keys, so leave room now
KAFKA_DEFAULT_RETENTION_S = 7 * 86400.0  # Kafka's log.retention.hours = 168
KAFKA_MAX_POLL_INTERVAL_S = 300.0  # Kafka's max.poll.interval.ms default (5 min)
LAB_MAX_CONSUMERS = 16  # the advised scenario is scaled down to this many consumers

ORDERINGS = ("none", "per-key", "total")
QUEUE, LOG = "queue", "log"


@dataclass(frozen=True)
class Workload:
    """What the user knows about the traffic. 0 means "not known" where the field says so."""

    rate_per_s: float = 1000.0
    size_bytes: int = 1024
    ordering: str = "none"  # none | per-key | total
    fanout: int = 1  # independent consumers of every message
    replay: bool = False  # must re-read history
    retention_s: float = 0.0  # 0: until consumed
    job_ms_p50: float = 5.0
    job_ms_p99: float = 0.0  # 0: not known, taken as p50 (and flagged)
    consumers: int = 0  # 0: advise
    keys: int = 0  # distinct ordering keys, 0: unknown
    exactly_once: bool = False
    delay_s: float = 0.0  # delay before delivery, 0: none

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _checked(f.name, f.default, getattr(self, f.name)))
        _check_ranges(self)

    @property
    def p99(self) -> float:
        return self.job_ms_p99 or self.job_ms_p50


def _checked(name: str, default: Any, value: Any) -> Any:
    """The value in its field's type, or one ValueError line naming the field."""
    kind = type(default)
    if kind is bool and not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if kind is int and value != int(value):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if kind in (int, float) and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return kind(value)


def _check_ranges(w: Workload) -> None:
    rules: list[tuple[str, bool, str]] = [
        ("rate_per_s", w.rate_per_s > 0, "> 0"),
        ("size_bytes", 1 <= w.size_bytes <= limits.MESSAGE_MAX_BYTES, f"1..{limits.MESSAGE_MAX_BYTES}"),
        ("ordering", w.ordering in ORDERINGS, "one of " + ", ".join(ORDERINGS)),
        ("fanout", w.fanout >= 1, ">= 1"),
        ("retention_s", w.retention_s >= 0, ">= 0"),
        ("job_ms_p50", w.job_ms_p50 > 0, "> 0"),
        ("job_ms_p99", w.job_ms_p99 == 0 or w.job_ms_p99 >= w.job_ms_p50, "0 (unknown) or >= job_ms_p50"),
        ("consumers", w.consumers >= 0, ">= 0"),
        ("keys", w.keys >= 0, ">= 0"),
        ("delay_s", w.delay_s >= 0, ">= 0"),
    ]
    for name, ok, want in rules:
        if not ok:
            raise ValueError(f"{name} must be {want}, got {getattr(w, name)!r}")


def num(x: float) -> str:
    """A number as reasons print it: no trailing zeros, no exponent, no thousands separator."""
    return f"{x:.2f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def quote(w: Workload, name: str) -> str:
    """How a reason quotes input ``name``: the test checks each reason contains these words."""
    v = getattr(w, name)
    if name == "job_ms_p99":
        return f"job p99 {num(w.p99)} ms"
    if name == "ordering" and v == "none":
        return "no ordering"
    if isinstance(v, bool):
        words = {"replay": ("replay", "no replay"), "exactly_once": ("exactly-once", "at-least-once")}
        return words[name][0 if v else 1]
    forms = {"rate_per_s": "{} msg/s", "size_bytes": "{} B", "ordering": "{} ordering",
             "fanout": "fan-out {}", "retention_s": "retention {} s", "job_ms_p50": "job p50 {} ms",
             "consumers": "{} consumers",
             "keys": "{} keys", "delay_s": "delay {} s"}
    return forms[name].format(v if isinstance(v, str) else num(v))


@dataclass(frozen=True)
class Reason:
    """One sentence and the inputs whose values it quotes."""

    text: str
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.text


@dataclass
class Advice:
    workload: Workload
    model: str
    knobs: dict[str, Any]
    reasons: list[Reason]
    flags: list[Reason]

    def to_dict(self) -> dict[str, Any]:
        return {"workload": asdict(self.workload), "model": self.model, "knobs": self.knobs,
                "reasons": [r.text for r in self.reasons], "flags": [f.text for f in self.flags]}

    def to_scenario_toml(self, name: str = "") -> str:
        return scenario_toml(self, name or f"advised-{self.model}")


@dataclass
class _Draft:
    """What the rules accumulate before it becomes an Advice."""

    w: Workload
    knobs: dict[str, Any] = field(default_factory=dict)
    reasons: list[Reason] = field(default_factory=list)
    flags: list[Reason] = field(default_factory=list)

    def why(self, text: str, *names: str) -> None:
        self.reasons.append(Reason(text, names))

    def warn(self, text: str, *names: str) -> None:
        self.flags.append(Reason(text, names))


def advise(w: Workload) -> Advice:
    """The advice for ``w``: same workload, same advice, word for word."""
    d = _Draft(w)
    model = choose_model(d)
    consumers = size_consumers(d)
    if model == QUEUE:
        queue_knobs(d, consumers)
    else:
        log_knobs(d, consumers)
    general_flags(d)
    return Advice(w, model, d.knobs, d.reasons, d.flags)


# --- the model ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Vote:
    model: str
    weight: int  # 0: a hard requirement
    reason: Reason


def votes(w: Workload) -> list[_Vote]:
    """Each input that favours one model, with the sentence saying why."""
    out: list[_Vote] = []
    if w.replay:
        out.append(_Vote(LOG, 0, Reason(
            "replay: a queue deletes a message once it is acked, so history cannot be re-read; a log "
            "keeps it for its retention and any reader can seek back to an offset", ("replay",))))
    if w.fanout > 1:
        out.append(_fanout_vote(w))
    if w.retention_s > 0:
        out.append(_Vote(LOG, 2, Reason(
            f"{quote(w, 'retention_s')} after consumption: a log keeps messages by time whether read or not; "
            "a queue removes each one when it is acked", ("retention_s",))))
    if w.delay_s > 0:
        out.append(_Vote(QUEUE, 0, Reason(
            f"{quote(w, 'delay_s')}: a queue holds each message back until its delay has passed (SQS "
            "DelaySeconds, the x-delayed-message exchange); a log delivers in append order and has no "
            "per-message delay", ("delay_s",))))
    out.extend(_job_and_order_votes(w))
    return out


def _fanout_vote(w: Workload) -> _Vote:
    fan, rate = quote(w, "fanout"), quote(w, "rate_per_s")
    if w.replay:
        return _Vote(LOG, 2, Reason(
            f"{fan} with replay: a log serves every reader from one copy; a queue would store {w.fanout} "
            "copies and cannot replay", ("fanout", "replay")))
    return _Vote(LOG, 1, Reason(
        f"{fan}: a log keeps one copy that {w.fanout} consumer groups read at their own pace; a queue "
        f"needs a fanout exchange writing {w.fanout} copies ({w.fanout} x {rate} = "
        f"{num(w.fanout * w.rate_per_s)} msg/s stored)", ("fanout", "rate_per_s")))


def _job_and_order_votes(w: Workload) -> list[_Vote]:
    rate, p99 = quote(w, "rate_per_s"), quote(w, "job_ms_p99")
    out: list[_Vote] = []
    if w.ordering == "per-key" and w.rate_per_s > FIFO_QUEUE_MAX_RATE:
        out.append(_Vote(LOG, 2, Reason(
            f"per-key ordering at {rate}: above FIFO_QUEUE_MAX_RATE {num(FIFO_QUEUE_MAX_RATE)} msg/s (SQS "
            "FIFO's batched quota) a queue's message groups fall short; a log keeps each key's order "
            "within its partition and scales by adding partitions", ("ordering", "rate_per_s"))))
    elif w.ordering == "per-key":
        out.append(_Vote(QUEUE, 1, Reason(
            f"per-key ordering at {rate} (at most FIFO_QUEUE_MAX_RATE {num(FIFO_QUEUE_MAX_RATE)} msg/s): "
            "a FIFO queue with a message group per key keeps each key's order, and a retried message "
            "holds up only its own key", ("ordering", "rate_per_s"))))
    if w.p99 >= LONG_JOB_MS and w.ordering != "total":
        out.append(_Vote(QUEUE, 2, Reason(
            f"{p99} is a long job (>= LONG_JOB_MS {num(LONG_JOB_MS)} ms): a queue leases, acks and "
            "redelivers each message on its own, so a slow message holds up only its consumer; in a "
            "log it blocks every message behind it in its partition", ("job_ms_p99",))))
    elif w.fanout == 1 and not w.replay and w.ordering == "none":
        out.append(_Vote(QUEUE, 1, Reason(
            f"{quote(w, 'fanout')}, {quote(w, 'replay')} and {quote(w, 'ordering')}: this is work "
            "distribution, what a queue is for: each message to one consumer, settled on its own",
            ("fanout", "replay", "ordering"))))
    if w.exactly_once:
        out.append(_Vote(LOG, 1, Reason(
            "exactly-once: a log has an idempotent producer and transactions (read-process-write within "
            "the log); a queue delivers at least once, with a deduplication window on publish",
            ("exactly_once",))))
    return out


def choose_model(d: _Draft) -> str:
    """Hard requirements first (replay needs a log, per-message delay a queue), then the weights;
    a tie goes to the queue, the simpler of the two to run. Votes for the other model become flags."""
    vs = votes(d.w)
    hard = {v.model for v in vs if v.weight == 0}
    if hard == {QUEUE, LOG}:
        d.warn(f"replay needs a log but {quote(d.w, 'delay_s')} needs a queue: no one model does both; "
               "advised: a log, with the delay applied before publishing (a delay queue in front of "
               "the log, or readers that wait until each message is due)", "replay", "delay_s")
        model = LOG
    elif hard:
        model = hard.pop()
    else:
        score = {m: sum(v.weight for v in vs if v.model == m) for m in (QUEUE, LOG)}
        model = LOG if score[LOG] > score[QUEUE] else QUEUE
    for v in vs:
        if v.model == model:
            d.reasons.append(v.reason)
        elif v.weight or hard != {QUEUE, LOG}:
            d.flags.append(Reason(f"a {v.model} would fit better on this point: {v.reason.text}",
                                  v.reason.fields))
    return model


# --- consumers, prefetch, leases ---------------------------------------------------------------

def size_consumers(d: _Draft) -> int:
    """Little's law: messages in progress = arrival rate x time in service; divide by the target
    utilisation for the consumers needed. Total ordering allows one consumer at a time."""
    w = d.w
    busy = w.rate_per_s * w.job_ms_p50 / 1000
    needed = max(1, math.ceil(busy / UTILISATION))
    if w.ordering == "total":
        _total_order_check(d, needed)
        return 1
    if w.consumers:
        _given_consumers_check(d, needed)
        chosen = w.consumers
    else:
        d.why(f"consumers {needed}: Little's law, {quote(w, 'rate_per_s')} x {quote(w, 'job_ms_p50')} = "
              f"{num(busy)} messages in progress on average; at UTILISATION {num(UTILISATION)} that is "
              f"{num(busy)} / {num(UTILISATION)} -> {needed}", "rate_per_s", "job_ms_p50")
        chosen = needed
    if w.ordering == "per-key" and w.keys and w.keys < chosen:
        cap = w.keys * 1000 / w.job_ms_p50
        d.warn(f"per-key ordering over {quote(w, 'keys')} allows at most {w.keys} consumers busy at once: "
               f"{w.keys} x 1000 / {quote(w, 'job_ms_p50')} = {num(cap)} msg/s against "
               f"{quote(w, 'rate_per_s')}; more keys or shorter jobs are needed for {chosen} consumers",
               "keys", "job_ms_p50", "rate_per_s")
        d.why(f"consumers capped at {w.keys}: {quote(w, 'keys')} keep at most {w.keys} consumers busy",
              "keys")
        chosen = w.keys
    return chosen


def _total_order_check(d: _Draft, needed: int) -> None:
    w = d.w
    one = 1000 / w.job_ms_p50
    d.why(f"consumers 1: {quote(w, 'ordering')} means one consumer at a time (a single active consumer, "
          "or one partition)", "ordering")
    if w.consumers > 1:
        d.warn(f"{quote(w, 'consumers')} given, but {quote(w, 'ordering')} lets one work at a time: the "
               "others are standbys (single active consumer, or idle members of the group)",
               "consumers", "ordering")
    if w.rate_per_s > one:
        d.warn(f"{quote(w, 'ordering')} at {quote(w, 'rate_per_s')} cannot be met: one consumer does "
               f"1000 / {quote(w, 'job_ms_p50')} = {num(one)} msg/s, and the rate needs {needed} consumers "
               f"(Little's law at UTILISATION {num(UTILISATION)}); relax to per-key ordering or make the "
               "job faster", "ordering", "rate_per_s", "job_ms_p50")


def _given_consumers_check(d: _Draft, needed: int) -> None:
    w = d.w
    cap = w.consumers * 1000 / w.job_ms_p50
    d.why(f"consumers {w.consumers}, as given ({quote(w, 'consumers')})", "consumers")
    if w.rate_per_s > cap * UTILISATION:
        d.warn(f"{quote(w, 'consumers')} are too few: {w.consumers} x 1000 / {quote(w, 'job_ms_p50')} = "
               f"{num(cap)} msg/s at full load against {quote(w, 'rate_per_s')}; Little's law at "
               f"UTILISATION {num(UTILISATION)} asks for {needed}", "consumers", "job_ms_p50", "rate_per_s")


def prefetch_for(d: _Draft) -> int:
    """Short jobs: enough in flight to cover the round trip; long jobs: 1, so nothing waits in a busy
    consumer's buffer while another consumer is idle."""
    w = d.w
    if w.p99 >= LONG_JOB_MS:
        d.why(f"prefetch 1: {quote(w, 'job_ms_p99')} >= LONG_JOB_MS {num(LONG_JOB_MS)} ms, so a consumer "
              "should hold no message it cannot start: a prefetched one would wait a whole job while an "
              "idle consumer could have taken it", "job_ms_p99")
        return 1
    ahead = math.ceil(ROUND_TRIP_MS / w.job_ms_p50)
    prefetch = min(PREFETCH_MAX, 1 + ahead)
    d.why(f"prefetch {prefetch}: {quote(w, 'job_ms_p50')} against ROUND_TRIP_MS {num(ROUND_TRIP_MS)} ms: "
          f"1 in hand + ceil({num(ROUND_TRIP_MS)} / {num(w.job_ms_p50)}) = {1 + ahead} keeps the next "
          f"message arriving while this one runs (capped at PREFETCH_MAX {PREFETCH_MAX})", "job_ms_p50")
    return prefetch


def lease_s(w: Workload, prefetch: int) -> float:
    return max(LEASE_MIN_S, math.ceil(prefetch * w.p99 * LEASE_MARGIN / 1000))


def _lease_reason(w: Workload, prefetch: int, what: str, value: float) -> str:
    return (f"{what} {num(value)} s >= prefetch {prefetch} x {quote(w, 'job_ms_p99')} x "
            f"LEASE_MARGIN {num(LEASE_MARGIN)} = {num(lease_s(w, prefetch))} s "
            f"(LEASE_MIN_S {num(LEASE_MIN_S)} s at least): the lease runs from delivery, while a message "
            f"waits behind the other {prefetch - 1} prefetched and while it is processed; a lease shorter "
            "than that wait plus the processing expires mid-job and the message is delivered again, "
            "a duplicate")


# --- the queue's knobs -------------------------------------------------------------------------

def queue_knobs(d: _Draft, consumers: int) -> None:
    w = d.w
    prefetch = prefetch_for(d)
    lease = lease_s(w, prefetch)
    d.knobs.update(consumers=consumers, prefetch=prefetch, visibility_timeout_s=lease,
                   consumer_timeout_ms=int(lease * 1000))
    d.why(_lease_reason(w, prefetch, "visibility timeout / consumer timeout", lease), "job_ms_p99")
    _lease_limits(d, lease)
    d.knobs.update(delivery_limit=DELIVERY_LIMIT, dead_letter_queue="work.dlq")
    d.why(f"delivery limit {DELIVERY_LIMIT} (DELIVERY_LIMIT), then the dead-letter queue: a message that "
          f"fails or outlives its lease {DELIVERY_LIMIT} times is set aside for a person to look at, not "
          f"retried for ever among the {quote(w, 'rate_per_s')} behind it", "rate_per_s")
    max_length = math.ceil(w.rate_per_s * BACKLOG_S)
    d.knobs.update(max_length=max_length, max_length_bytes=max_length * w.size_bytes,
                   overflow="reject-publish")
    d.why(f"max length {max_length} = {quote(w, 'rate_per_s')} x BACKLOG_S {num(BACKLOG_S)} s "
          f"({num(max_length * w.size_bytes)} bytes at {quote(w, 'size_bytes')}), overflow reject-publish: "
          "a minute of backlog, then publishers are pushed back (their confirms are nacked) rather than "
          "the oldest messages dropped", "rate_per_s", "size_bytes")
    _queue_extras(d)


def _lease_limits(d: _Draft, lease: float) -> None:
    if lease > SQS_MAX_VISIBILITY_S:
        d.warn(f"the lease needed, {num(lease)} s for {quote(d.w, 'job_ms_p99')}, is above SQS's top "
               f"SQS_MAX_VISIBILITY_S {num(SQS_MAX_VISIBILITY_S)} s: extend it from the handler while "
               "it works (ChangeMessageVisibility, a job heartbeat)", "job_ms_p99")
    elif lease > RABBITMQ_CONSUMER_TIMEOUT_S:
        d.warn(f"the lease needed, {num(lease)} s for {quote(d.w, 'job_ms_p99')}, is above RabbitMQ's "
               f"default consumer_timeout RABBITMQ_CONSUMER_TIMEOUT_S {num(RABBITMQ_CONSUMER_TIMEOUT_S)} s: "
               "set x-consumer-timeout on the queue or the consumer", "job_ms_p99")


def _queue_extras(d: _Draft) -> None:
    w = d.w
    if w.fanout > 1:
        d.knobs.update(exchange="fanout", queues=w.fanout)
        d.why(f"{quote(w, 'fanout')}: a fanout exchange bound to {w.fanout} queues, one per independent "
              f"consumer, each with its own copy ({w.fanout} x {quote(w, 'rate_per_s')})",
              "fanout", "rate_per_s")
    if w.ordering == "per-key":
        d.knobs.update(queue_type="fifo", message_group="the ordering key")
    elif w.ordering == "total":
        d.knobs.update(single_active_consumer=True)
    if w.delay_s > 0:
        d.knobs.update(delay_s=w.delay_s)
    if w.exactly_once:
        d.knobs.update(publisher_confirms=True, dedup_window_s=DEDUP_WINDOW_S)
        d.warn(f"exactly-once on a queue: confirms and a DEDUP_WINDOW_S {num(DEDUP_WINDOW_S)} s "
               "deduplication window drop a publisher's retries, but a redelivery after a lost ack "
               "reaches a consumer again: the handler must be idempotent", "exactly_once")


# --- the log's knobs ---------------------------------------------------------------------------

def log_knobs(d: _Draft, consumers: int) -> None:
    w = d.w
    partitions = partitions_for(d, consumers)
    records = prefetch_for(d)
    poll_s = max(KAFKA_MAX_POLL_INTERVAL_S, lease_s(w, records))
    d.knobs.update(partitions=partitions, consumers=min(consumers, partitions), consumer_groups=w.fanout,
                   prefetch=records, max_poll_records=records, max_poll_interval_ms=int(poll_s * 1000))
    d.why(_lease_reason(w, records, "max.poll.interval (the log's consumer timeout)", poll_s)
          + f"; never below Kafka's default KAFKA_MAX_POLL_INTERVAL_S {num(KAFKA_MAX_POLL_INTERVAL_S)} s",
          "job_ms_p99")
    if w.fanout > 1:
        d.why(f"consumer groups {w.fanout}: one per independent reader ({quote(w, 'fanout')}), each with its "
              "own offsets over the same partitions", "fanout")
    _retention(d)
    d.knobs.update(idempotent_producer=True, acks="all")
    if w.exactly_once:
        d.knobs.update(transactions=True, isolation_level="read_committed")
        d.why("idempotent producer, transactions and read_committed readers for exactly-once: a retried "
              "produce is written once, and read-process-write commits output and offsets together",
              "exactly_once")
    else:
        d.why(f"idempotent producer with acks=all: at {quote(w, 'rate_per_s')} a produce retried after a "
              "timeout is routine, and the idempotent producer writes it once", "rate_per_s")


def partitions_for(d: _Draft, consumers: int) -> int:
    """Partitions bound a group's parallelism (one consumer per partition) and each carries a limited
    throughput: at least max(consumers, rate / per-partition), with headroom, no more than keys."""
    w = d.w
    if w.ordering == "total":
        d.why(f"partitions 1: {quote(w, 'ordering')} holds only within a partition", "ordering")
        return 1
    by_rate = math.ceil(w.rate_per_s / PARTITION_MSGS_PER_S)
    by_bytes = math.ceil(w.rate_per_s * w.size_bytes / PARTITION_BYTES_PER_S)
    partitions = PARTITION_HEADROOM * max(consumers, by_rate, by_bytes)
    d.why(f"partitions {partitions} = PARTITION_HEADROOM {PARTITION_HEADROOM} x max({consumers} consumers, "
          f"{quote(w, 'rate_per_s')} / PARTITION_MSGS_PER_S {num(PARTITION_MSGS_PER_S)} -> {by_rate}, "
          f"{quote(w, 'rate_per_s')} x {quote(w, 'size_bytes')} / PARTITION_BYTES_PER_S "
          f"{num(PARTITION_BYTES_PER_S)} B/s -> {by_bytes}): a partition is read by one consumer of a "
          "group, and the per-partition throughputs are assumptions to measure; headroom because adding "
          "partitions later moves keys to other partitions", "rate_per_s", "size_bytes")
    if w.keys and partitions > w.keys:
        d.why(f"partitions capped at {w.keys}: with {quote(w, 'keys')} more partitions would stay empty",
              "keys")
        partitions = w.keys
    return partitions


def _retention(d: _Draft) -> None:
    w = d.w
    if w.retention_s > 0:
        keep = w.retention_s
        d.why(f"retention {num(keep)} s, as asked ({quote(w, 'retention_s')})", "retention_s")
    else:
        keep = KAFKA_DEFAULT_RETENTION_S
        d.why(f"retention {num(keep)} s (KAFKA_DEFAULT_RETENTION_S, 7 days): {quote(w, 'retention_s')} "
              "(until consumed) has no log equivalent, a log deletes by time or size, never by reads; "
              "7 days covers a long reader outage", "retention_s")
    disk = w.rate_per_s * w.size_bytes * keep
    d.knobs.update(retention_s=keep, retention_bytes_estimate=int(disk))
    d.why(f"disk for retention: {quote(w, 'rate_per_s')} x {quote(w, 'size_bytes')} x {num(keep)} s = "
          f"{num(disk / 2**30)} GiB per replica, before compression", "rate_per_s", "size_bytes")


# --- what holds for either model ---------------------------------------------------------------

def general_flags(d: _Draft) -> None:
    w = d.w
    if w.job_ms_p99 == 0:
        d.warn(f"job p99 not given: leases were sized from {quote(w, 'job_ms_p50')}; a real p99 is "
               "longer, give it (--job-ms-p99) or expect duplicates from leases that run out", "job_ms_p50")
    if w.size_bytes > limits.KAFKA_MESSAGE_MAX_BYTES:
        d.warn(f"{quote(w, 'size_bytes')} is above Kafka's message.max.bytes default "
               f"{limits.KAFKA_MESSAGE_MAX_BYTES} B: keep large bodies in object storage and send a "
               "reference (claim check)", "size_bytes")


# --- the advice as a lab scenario --------------------------------------------------------------

def scenario_params(advice: Advice) -> tuple[str, list[str], dict[str, Any], str]:
    """(driver, targets, params, note): the one place that maps advice onto the lab's drivers
    (task_queue's ``workers`` is a list: one run per count; the advice is one count).
    Consumers above LAB_MAX_CONSUMERS are scaled down with the rate, so each consumer sees the
    advised load."""
    w, k = advice.workload, advice.knobs
    scale = min(1.0, LAB_MAX_CONSUMERS / k["consumers"])
    consumers = max(1, round(k["consumers"] * scale))
    rate = _whole(w.rate_per_s * scale)
    note = "" if scale == 1.0 else (
        f" Scaled to {consumers} of {k['consumers']} consumers, rate {num(rate)} of "
        f"{num(w.rate_per_s)} msg/s, so each consumer carries the advised load.")
    if advice.model == QUEUE:
        return "task_queue", ["ferrymq"], {"workers": [consumers], "prefetch": k["prefetch"],
                                           "work_ms": _whole(w.job_ms_p50), "rate": rate,
                                           "size": w.size_bytes}, note
    partitions = max(consumers, round(k["partitions"] * scale))
    return "order_processing", ["ferrymq-kafka"], {"rate": rate, "size": w.size_bytes,
                                                    "partitions": partitions, "consumers": consumers}, note


def _whole(x: float) -> int | float:
    """An integral value as an int, so a driver's int parameter accepts it."""
    return int(x) if x == int(x) else round(x, 3)


def scenario_toml(advice: Advice, name: str) -> str:
    driver, targets, params, note = scenario_params(advice)
    first = advice.reasons[0].text if advice.reasons else ""
    lines = [
        f"name = {json.dumps(name)}",
        f"summary = {json.dumps(f'the advised {advice.model} set-up, run to check the advice')}",
        f"description = {json.dumps(f'ferrymq lab advise chose a {advice.model}: {first}.{note}')}",
        f"driver = {json.dumps(driver)}",
        f"targets = {json.dumps(targets)}",
        "duration = 60",
        "short_duration = 8",
        "",
        "[params]",
        *(f"{key} = {json.dumps(value)}" for key, value in params.items()),
    ]
    return "\n".join(lines) + "\n"
