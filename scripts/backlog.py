"""The backlog run: N persistent 1 KiB messages into one durable queue with nobody consuming, then a
full drain, checked in order. Reports the broker's peak RSS, publish and drain rates, disk use.

    .venv/bin/python scripts/backlog.py --messages 5000000 --size 1024

Starts `ferrymq serve` (fsync always) on a temporary data directory; raw-socket clients from
ferrymq.bench.wire (pika would take half an hour at this count).
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

from pamqp import commands as c

from ferrymq.bench.rabbitmq_node import free_port
from ferrymq.bench.wire import ACK, CM, DELIVER, HEAD, NACK, RECV_BYTES, TAG_BITS, Wire, publish_template

WINDOW = 4000
BATCH = 200


def rss_kib(pid: int) -> tuple[int, int]:
    """(current, peak) resident set of a process, in KiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def frames(wire: Wire, buf: bytearray) -> Iterator[tuple[int, int]]:
    """Receive once, then (frame type, position) of each whole frame in ``buf``; consumed ones go."""
    buf += wire.sock.recv(RECV_BYTES)
    pos = 0
    while len(buf) - pos >= 8:
        ftype, _, fsize = HEAD.unpack_from(buf, pos)
        if len(buf) - pos < fsize + 8:
            break
        yield ftype, pos
        pos += fsize + 8
    del buf[:pos]


def publish(url: str, queue: str, n: int, size: int, pid: int) -> dict[str, float]:
    wire = Wire(url).open()
    wire.declare(queue, True)
    wire.send(c.Confirm.Select())
    wire.expect(c.Confirm.SelectOk)
    head, tail = publish_template(queue, size, True)
    sent = confirmed = 0
    buf = bytearray()
    peak = 0
    t0 = time.perf_counter()
    while confirmed < n:
        k = min(BATCH, n - sent, WINDOW - (sent - confirmed))
        if k > 0:
            wire.sock.sendall(b"".join(head + i.to_bytes(8, "big") + tail for i in range(sent, sent + k)))
            sent += k
            continue
        for ftype, pos in frames(wire, buf):
            if ftype == 1:
                (cm,) = CM.unpack_from(buf, pos + 7)
                if cm == NACK:
                    raise RuntimeError("publish nacked")
                if cm == ACK:
                    confirmed = max(confirmed, TAG_BITS.unpack_from(buf, pos + 11)[0])
        if sent % 100_000 < BATCH:
            peak = max(peak, rss_kib(pid)[1])
    took = time.perf_counter() - t0
    wire.close()
    return {"publish_s": took, "publish_per_s": n / took}


def drain(url: str, queue: str, n: int, prefetch: int = 2000) -> dict[str, float]:
    wire = Wire(url).open()
    wire.send(c.Basic.Qos(prefetch_count=prefetch))
    wire.expect(c.Basic.QosOk)
    wire.send(c.Basic.Consume(queue=queue, consumer_tag="drain"))
    wire.expect(c.Basic.ConsumeOk)
    buf = bytearray(wire.buf)
    expected = 0
    last_tag = acked_tag = 0
    in_body = False
    t0 = time.perf_counter()
    while expected < n:
        for ftype, pos in frames(wire, buf):
            if ftype == 1 and CM.unpack_from(buf, pos + 7)[0] == DELIVER:
                ctag_len = buf[pos + 11]
                last_tag = TAG_BITS.unpack_from(buf, pos + 12 + ctag_len)[0]
                in_body = True
            elif ftype == 3 and in_body:
                seq = int.from_bytes(buf[pos + 7 : pos + 15], "big")
                if seq != expected:
                    raise AssertionError(f"out of order: got {seq}, expected {expected}")
                expected += 1
                in_body = False
        if last_tag - acked_tag >= prefetch // 2 or expected == n:
            wire.sock.sendall(HEAD.pack(1, 1, 13) + CM.pack(ACK) + TAG_BITS.pack(last_tag, 1) + b"\xce")
            acked_tag = last_tag
    took = time.perf_counter() - t0
    wire.close()
    check = Wire(url).open()
    check.send(c.Queue.Declare(queue=queue, durable=True, passive=True))
    ok = check.expect(c.Queue.DeclareOk)
    check.close()
    return {"drain_s": took, "drain_per_s": n / took, "left": ok.message_count}


def serve(port: int, data: Path) -> subprocess.Popen[bytes]:
    """Start `ferrymq serve` and return once it accepts connections (recovery runs before that)."""
    proc = subprocess.Popen([sys.executable, "-m", "ferrymq.cli", "serve", "--amqp-port", str(port),
                             "--kafka-port", "0", "--data-dir", str(data), "--fsync", "always",
                             "--log-level", "info"])
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.1).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("broker exited") from None
            time.sleep(0.05)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=5_000_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--kill", action="store_true", help="kill -9 the broker after publishing, restart, drain")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="ferrymq-backlog-", dir=".") as tmp:
        port = free_port()
        data = Path(tmp) / "data"
        proc = serve(port, data)
        url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
        try:
            out: dict[str, float] = {"messages": args.messages, "size": args.size}
            out.update(publish(url, "backlog", args.messages, args.size, proc.pid))
            out["rss_after_publish_mib"] = rss_kib(proc.pid)[0] / 1024
            out["disk_after_publish_mib"] = du(data) / 2**20
            if args.kill:
                proc.kill()
                proc.wait()
                t0 = time.perf_counter()
                proc = serve(port, data)
                out["restart_to_listening_s"] = time.perf_counter() - t0
            out.update(drain(url, "backlog", args.messages))
            time.sleep(1.0)
            cur, peak = rss_kib(proc.pid)
            out["peak_rss_mib"] = peak / 1024
            out["rss_after_drain_mib"] = cur / 1024
            out["disk_after_drain_mib"] = du(data) / 2**20
        finally:
            proc.terminate()
            proc.wait(60)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
