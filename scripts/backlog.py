"""The backlog run: N persistent 1 KiB messages into one durable queue with nobody consuming, then a
full drain, checked in order. Reports the broker's peak RSS, publish and drain rates, disk use.

    .venv/bin/python scripts/backlog.py --messages 5000000 --size 1024
    .venv/bin/python scripts/backlog.py --messages 1000000 --rabbitmq   # the same run on RabbitMQ

Starts `ferrymq serve` (fsync always) on a temporary data directory; raw-socket clients: the load
generator's connection (ferrymq.client.connection) with publishes pre-encoded and frames read by the
project's AMQP codec (pika would take half an hour at this count).
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ferrymq.bench.rabbitmq_node import free_port, start_rabbitmq
from ferrymq.bench.traffic import STAMP, PublishTemplate
from ferrymq.client.connection import RECV_BYTES, Client
from ferrymq.protocols.amqp import client as codec
from ferrymq.protocols.amqp.frames import (
    BASIC_ACK,
    BASIC_DELIVER,
    BASIC_NACK,
    FRAME_BODY,
    FRAME_HEAD,
    FRAME_METHOD,
    METHOD_ID,
)

WINDOW = 4000
BATCH = 200


def rss_kib(pid: int) -> tuple[int, int]:
    """(current, peak) resident set of a process, in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def connect(url: str) -> Client:
    """A connection that waits as long as the broker takes (a 5M backlog drains for minutes)."""
    client = Client(url).open()
    client.sock.settimeout(None)
    return client


def frames(client: Client, buf: bytearray) -> Iterator[tuple[int, int]]:
    """Receive once, then (frame type, position) of each whole frame in ``buf``; consumed ones go."""
    buf += client.sock.recv(RECV_BYTES)
    pos = 0
    while len(buf) - pos >= 8:
        ftype, _, fsize = FRAME_HEAD.unpack_from(buf, pos)
        if len(buf) - pos < fsize + 8:
            break
        yield ftype, pos
        pos += fsize + 8
    del buf[:pos]


def publish(url: str, queue: str, n: int, size: int) -> dict[str, float]:
    """n persistent messages numbered 0..n-1 (the number is the first 8 body bytes), confirmed."""
    client = connect(url)
    client.declare_queue(queue, True)
    client.confirm_select()
    tmpl = PublishTemplate(queue, size, persistent=True, frame_max=client.frame_max)
    sent = confirmed = 0
    buf = bytearray(client.buf)
    t0 = time.perf_counter()
    while confirmed < n:
        k = min(BATCH, n - sent, WINDOW - (sent - confirmed))
        if k > 0:
            client.sock.sendall(tmpl.stamped(range(sent, sent + k)))
            sent += k
            continue
        for ftype, pos in frames(client, buf):
            if ftype == FRAME_METHOD:
                cm = METHOD_ID.unpack_from(buf, pos + 7)[0]
                if cm == BASIC_NACK:
                    raise RuntimeError("publish nacked")
                if cm == BASIC_ACK:
                    confirmed = max(confirmed, codec.decode_confirm(buf, pos + 7)[0])
    took = time.perf_counter() - t0
    client.close()
    return {"publish_s": took, "publish_per_s": n / took}


def drain(url: str, queue: str, n: int, prefetch: int = 2000) -> dict[str, float]:
    """Consume all n, checking they arrive in the order published; multiple acks."""
    client = connect(url)
    client.consume(queue, prefetch, tag="drain")
    buf = bytearray(client.buf)
    expected = last_tag = acked_tag = 0
    in_body = False
    t0 = time.perf_counter()
    while expected < n:
        for ftype, pos in frames(client, buf):
            if ftype == FRAME_METHOD and METHOD_ID.unpack_from(buf, pos + 7)[0] == BASIC_DELIVER:
                last_tag = codec.decode_deliver_tag(buf, pos + 7)
                in_body = True
            elif ftype == FRAME_BODY and in_body:
                seq = STAMP.unpack_from(buf, pos + 7)[0]
                if seq != expected:
                    raise AssertionError(f"out of order: got {seq}, expected {expected}")
                expected += 1
                in_body = False
        if last_tag - acked_tag >= prefetch // 2 or expected == n:
            client.sock.sendall(codec.encode_ack(1, last_tag, multiple=True))
            acked_tag = last_tag
    took = time.perf_counter() - t0
    client.close()
    check = connect(url)
    left = check.declare_queue(queue, True, passive=True).message_count
    check.close()
    return {"drain_s": took, "drain_per_s": n / took, "left": left}


def serve(port: int, data: Path) -> subprocess.Popen[bytes]:
    """Start `ferrymq serve` and return once it accepts connections (recovery runs before that)."""
    proc = subprocess.Popen([sys.executable, "-m", "ferrymq.cli", "serve", "--amqp-port", str(port),
                             "--kafka-port", "0",
               "--http-port", "0", "--data-dir", str(data), "--fsync", "always",
                             "--log-level", "info"])
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("broker exited") from None
            time.sleep(0.05)


def run(url: str, pid: int, data: Path | None, n: int, size: int) -> dict[str, float]:
    """Fill, then drain; RSS of ``pid`` and (for FerryMQ) disk use of ``data`` along the way."""
    out: dict[str, float] = {"messages": n, "size": size}
    out.update(publish(url, "backlog", n, size))
    out["rss_after_publish_mib"] = rss_kib(pid)[0] / 1024
    if data is not None:
        out["disk_after_publish_mib"] = du(data) / 2**20
    out.update(drain(url, "backlog", n))
    time.sleep(1.0)
    cur, peak = rss_kib(pid)
    out["peak_rss_mib"], out["rss_after_drain_mib"] = peak / 1024, cur / 1024
    if data is not None:
        out["disk_after_drain_mib"] = du(data) / 2**20
    return out


def run_rabbitmq(n: int, size: int) -> dict[str, float]:
    """The same fill and drain on a private RabbitMQ node (classic durable queue)."""
    node = start_rabbitmq()
    try:
        return run(node.amqp_url, node.beam_pid, None, n, size)
    finally:
        node.stop()


def run_ferrymq(n: int, size: int, kill: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="ferrymq-backlog-", dir=".") as tmp:
        port = free_port()
        data = Path(tmp) / "data"
        proc = serve(port, data)
        url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
        try:
            if not kill:
                return run(url, proc.pid, data, n, size)
            out: dict[str, float] = {"messages": n, "size": size}
            out.update(publish(url, "backlog", n, size))
            proc.kill()
            proc.wait()
            t0 = time.perf_counter()
            proc = serve(port, data)
            out["restart_to_listening_s"] = time.perf_counter() - t0
            out.update(drain(url, "backlog", n))
            out["peak_rss_mib"] = rss_kib(proc.pid)[1] / 1024
            return out
        finally:
            proc.terminate()
            proc.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=5_000_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--kill", action="store_true", help="kill -9 the broker after publishing, restart, drain")
    ap.add_argument("--rabbitmq", action="store_true", help="run against a private RabbitMQ node instead")
    args = ap.parse_args()
    if args.rabbitmq:
        out = run_rabbitmq(args.messages, args.size)
    else:
        out = run_ferrymq(args.messages, args.size, args.kill)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
