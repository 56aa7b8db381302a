"""The AMQP load generator: one producer and one consumer process over raw sockets.

    ferrymq bench --url amqp://guest:guest@127.0.0.1:5672/%2F --seconds 10

Producer: publisher confirms with a bounded window (or fire-and-forget), many publishes per
``sendall``. Consumer: manual acks (one ack frame per delivery, written in batches) with a
prefetch. Each body starts with the send time, so the consumer measures end-to-end latency.
Each process reports its own CPU time, so a run shows whether the generator was the limit.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import time
from dataclasses import asdict, dataclass
from typing import Any

from pamqp import commands as c

from ferrymq.bench.wire import (
    ACK,
    CM,
    DELIVER,
    HEAD,
    NACK,
    RECV_BYTES,
    TAG_BITS,
    TS,
    Wire,
    ack_frame,
    publish_template,
    qos_and_consume,
)

PUBLISH_BATCH = 50  # publishes per sendall


@dataclass
class Options:
    url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    queue: str = "ferrymq-bench"
    size: int = 100
    seconds: float = 10.0
    window: int = 500  # unconfirmed publishes allowed; 0 = fire-and-forget (no confirms)
    prefetch: int = 500
    persistent: bool = False
    multi_ack: bool = False
    rate: float = 0.0  # msgs/s; 0 = as fast as the window allows
    batch: int = PUBLISH_BATCH  # publishes per write (and acks per write); 1 = a write each
    broker_pid: int = 0


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def produce(opts: Options, start_at: float, out: Any) -> None:
    wire = Wire(opts.url).open()
    wire.declare(opts.queue, opts.persistent)
    if opts.window:
        wire.send(c.Confirm.Select())
        wire.expect(c.Confirm.SelectOk)
    head, tail = publish_template(opts.queue, opts.size, opts.persistent)
    sock, pack = wire.sock, TS.pack
    sent = confirmed = nacked = 0
    while time.time() < start_at:
        time.sleep(0.001)
    cpu0, t0 = cpu_s(), time.perf_counter()
    end = t0 + opts.seconds
    interval = 1.0 / opts.rate if opts.rate else 0.0
    buf = bytearray()
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        room = opts.window - (sent - confirmed) if opts.window else opts.batch
        if interval:
            room = min(room, int((now - t0) / interval) - sent)
        n = min(room, opts.batch)
        if n > 0:
            stamp = pack(time.monotonic_ns())
            frames = head + stamp + tail
            if opts.batch == 1:
                sock.sendall(frames)
            else:
                sock.sendall(frames * n)
            sent += n
        if opts.window and sent > confirmed and (n <= 0 or sent - confirmed >= opts.window):
            acked, nacks = _read_confirms(wire, buf, sent)
            confirmed, nacked = acked, nacked + nacks
        elif interval and n <= 0:
            time.sleep(min(interval, 0.0005))
    elapsed = time.perf_counter() - t0
    out.put(("producer", {"sent": sent, "confirmed": confirmed, "nacked": nacked,
                          "seconds": elapsed, "cpu": (cpu_s() - cpu0) / elapsed}))
    wire.close()


def _read_confirms(wire: Wire, buf: bytearray, sent: int) -> tuple[int, int]:
    """Blocks for at least one recv; returns (highest confirmed tag, nacks seen)."""
    data = wire.sock.recv(RECV_BYTES)
    if not data:
        raise ConnectionError("broker closed the producer socket")
    buf += data
    pos, n, top, nacks = 0, len(buf), _read_confirms.top, 0  # type: ignore[attr-defined]
    while n - pos >= 8:
        ftype, _, size = HEAD.unpack_from(buf, pos)
        if n - pos < size + 8:
            break
        if ftype == 1:
            (cm,) = CM.unpack_from(buf, pos + 7)
            if cm in (ACK, NACK):
                tag, _ = TAG_BITS.unpack_from(buf, pos + 11)
                top = max(top, tag)
                nacks += cm == NACK
            elif cm >> 16 in (10, 20):
                raise RuntimeError(f"broker closed: method {cm >> 16}.{cm & 0xFFFF}")
        pos += size + 8
    del buf[:pos]
    _read_confirms.top = top  # type: ignore[attr-defined]
    return top, nacks


_read_confirms.top = 0  # type: ignore[attr-defined]


def consume(opts: Options, start_at: float, ready: Any, out: Any) -> None:
    wire = Wire(opts.url).open()
    wire.declare(opts.queue, opts.persistent)
    qos_and_consume(wire, opts.queue, opts.prefetch)
    ready.set()
    sock, buf = wire.sock, wire.buf
    received, latencies = 0, []
    deadline = start_at + opts.seconds + 2.0
    sock.settimeout(0.5)
    cpu0, t0 = cpu_s(), None
    last_tag, expect_ts = 0, False
    while time.time() < deadline:
        try:
            data = sock.recv(RECV_BYTES)
        except TimeoutError:
            continue
        if not data:
            break
        if t0 is None:
            cpu0, t0 = cpu_s(), time.perf_counter()
        buf += data
        now = time.monotonic_ns()
        pos, n, acks = 0, len(buf), []
        while n - pos >= 8:
            ftype, _, size = HEAD.unpack_from(buf, pos)
            if n - pos < size + 8:
                break
            if ftype == 1 and CM.unpack_from(buf, pos + 7)[0] == DELIVER:
                clen = buf[pos + 11]
                (last_tag,) = TAG_BITS.unpack_from(buf, pos + 12 + clen)[:1]
                received += 1
                if not opts.multi_ack:
                    acks.append(ack_frame(last_tag, False))
            elif ftype == 3 and expect_ts:
                latencies.append(now - TS.unpack_from(buf, pos + 7)[0])
            expect_ts = ftype == 2
            pos += size + 8
        del buf[:pos]
        if opts.multi_ack and last_tag:
            acks.append(ack_frame(last_tag, True))
        if acks and opts.batch == 1:
            for ack in acks:
                sock.sendall(ack)
        elif acks:
            sock.sendall(b"".join(acks))
    elapsed = (time.perf_counter() - t0) if t0 else 1.0
    out.put(("consumer", {"received": received, "seconds": elapsed,
                          "cpu": (cpu_s() - cpu0) / elapsed, "latency_ns": _percentiles(latencies)}))
    wire.close()


def _percentiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {}
    values.sort()
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "p999": pick(0.999),
            "max": values[-1], "count": len(values)}


def proc_cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(opts: Options) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    out, ready = ctx.Queue(), ctx.Event()
    start_at = time.time() + 1.0
    consumer = ctx.Process(target=consume, args=(opts, start_at, ready, out))
    consumer.start()
    ready.wait(15)
    start_at = time.time() + 0.5
    producer = ctx.Process(target=produce, args=(opts, start_at, out))
    broker_cpu0 = proc_cpu_s(opts.broker_pid) if opts.broker_pid else 0.0
    producer.start()
    results = dict(out.get(timeout=opts.seconds + 60) for _ in range(2))
    broker_cpu = proc_cpu_s(opts.broker_pid) - broker_cpu0 if opts.broker_pid else None
    producer.join()
    consumer.join()
    p, s = results["producer"], results["consumer"]
    return {
        "options": asdict(opts),
        "published_per_s": p["sent"] / p["seconds"],
        "confirmed_per_s": p["confirmed"] / p["seconds"],
        "consumed_per_s": s["received"] / p["seconds"],
        "producer": p, "consumer": s,
        "broker_cpu": broker_cpu / p["seconds"] if broker_cpu is not None else None,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="ferrymq bench", description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    for field, default in asdict(Options()).items():
        flag = "--" + field.replace("_", "-")
        if isinstance(default, bool):
            ap.add_argument(flag, action="store_true")
        else:
            ap.add_argument(flag, type=type(default), default=default)
    args = ap.parse_args(argv)
    print(json.dumps(run(Options(**vars(args))), indent=2))


if __name__ == "__main__":
    main()
