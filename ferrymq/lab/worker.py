"""A consumer in a process of its own, so a fault can kill -9 it or SIGSTOP it as it would a real
worker. The lab starts it (``Worker``) and reads its receipts from a pipe; the process itself
(``python -m ferrymq.lab.worker``) consumes with aio-pika, one message at a time as a real worker
does (prefetched messages wait their turn: that is how prefetch hoards work).

Receipts are 17-byte records on stdout: kind (1 processed, 2 processed and redelivered, 3 the
in-flight gauge, 4 failed, 5 the idle gauge: milliseconds spent waiting for a delivery so far, 6
failed on a redelivery, 7 skipped by the idempotent store), the message id (or the gauge's value)
and its send time. ``--ack``
says when the ack goes: ``after`` processing (at-least-once), ``before`` it (at-most-once: a
crash loses what was taken), or ``auto`` (the broker's no-ack mode). Commands on stdin:
``slow <ms>`` changes the extra time per message. ``--effect-at mid`` puts the effect between two
halves of the work, ``--dedupe PATH`` makes the consumer idempotent (``ferrymq.lab.effects``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import struct
import sys
from collections.abc import Callable
from typing import Any

from ferrymq.lab import body
from ferrymq.lab.effects import EffectStore
from ferrymq.lab.signals import Signalled

RECORD = struct.Struct(">BQQ")
PROCESSED, REDELIVERED, IN_FLIGHT, FAILED, IDLE, FAILED_REDELIVERED, DEDUPED = 1, 2, 3, 4, 5, 6, 7
GAUGE_EVERY_S = 0.25


class Worker(Signalled):
    """The lab's handle on one worker process: start, kill -9, stop/continue, slow, restart."""

    def __init__(self, name: str, args: list[str], on_record: Callable[[int, int, int], None],
                 module: str = "ferrymq.lab.worker") -> None:
        self.name, self.args, self.on_record, self.module = name, args, on_record, module
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self.extra_ms = 0.0
        self.ready = asyncio.Event()  # set by the first record: the process is consuming

    async def start(self, timeout_s: float = 30.0) -> None:
        self.ready.clear()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.module, *self.args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        self._reader = asyncio.create_task(self._read(self.proc))
        if self.extra_ms:
            self.slow(self.extra_ms)
        with contextlib.suppress(TimeoutError):  # a worker that cannot connect shows as no receipts
            await asyncio.wait_for(self.ready.wait(), timeout_s)

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                data = await proc.stdout.readexactly(RECORD.size)
                self.ready.set()
                self.on_record(*RECORD.unpack(data))

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    def signalled_pid(self) -> int:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else 0

    def slow(self, ms: float) -> None:
        self.extra_ms = ms
        if self.proc is not None and self.proc.stdin is not None and self.proc.returncode is None:
            self.proc.stdin.write(f"slow {ms}\n".encode())

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def stop(self) -> None:
        """SIGTERM and wait; the reader drains what the process wrote before it went."""
        if self.proc is None:
            return
        self.resume()
        self._signal(signal.SIGTERM)
        with contextlib.suppress(ProcessLookupError):
            await self.proc.wait()
        if self._reader is not None:
            await self._reader
        self.proc = None


# -- the process ------------------------------------------------------------------------------------

def _args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m ferrymq.lab.worker")
    ap.add_argument("--url", required=True)
    ap.add_argument("--queue", required=True)
    ap.add_argument("--prefetch", type=int, default=10)
    ap.add_argument("--ack", choices=("after", "before", "auto"), default="after")
    ap.add_argument("--work-ms", type=float, default=0.0)
    ap.add_argument("--fail", choices=("requeue", "reject"), default="requeue",
                    help="what a failing message gets (header lab-fail: every time; lab-fail-once: its "
                         "first delivery)")
    ap.add_argument("--arguments", default="", help="consume arguments as key=value,...")
    ap.add_argument("--effect-at", choices=("end", "mid"), default="end",
                    help="the effect after the work, or between its two halves")
    ap.add_argument("--dedupe", default="", help="an idempotent consumer: processed ids in this SQLite file")
    return ap.parse_args(argv)


class _Out:
    def __init__(self) -> None:
        self.buf: list[bytes] = []

    def put(self, kind: int, a: int, b: int = 0) -> None:
        self.buf.append(RECORD.pack(kind, a, b))

    def flush(self) -> None:
        if self.buf:
            os.write(1, b"".join(self.buf))
            self.buf.clear()


async def _commands(state: dict[str, float]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        parts = line.decode().split()
        if len(parts) == 2 and parts[0] == "slow":
            state["extra_ms"] = float(parts[1])
    os._exit(0)  # stdin closed: the lab that started this worker is gone, so is its worker


async def _process(msg: Any, args: argparse.Namespace, out: _Out, state: dict[str, float],
                   store: EffectStore | None = None) -> None:
    ids = body.decode(msg.body)
    if args.ack == "before":
        await msg.ack()
    delay = (args.work_ms + state["extra_ms"]) / 1000.0
    after = delay / 2.0 if args.effect_at == "mid" else 0.0
    if delay - after:
        await asyncio.sleep(delay - after)
    if ids is None:
        if args.ack == "after":
            await msg.ack()
        return
    headers = msg.headers or {}
    if headers.get("lab-fail") or (headers.get("lab-fail-once") and not msg.redelivered):
        out.put(FAILED_REDELIVERED if msg.redelivered else FAILED, ids[0], ids[1])
        if args.ack == "after":
            await msg.nack(requeue=args.fail == "requeue")
        return
    kind = REDELIVERED if msg.redelivered else PROCESSED
    if store is not None and not store.apply(ids[0]):
        kind = DEDUPED
    out.put(kind, ids[0], ids[1])
    out.flush()  # the effect is on record before the ack leaves: at-least-once means what it says
    if after:
        await asyncio.sleep(after)
    if args.ack == "after":
        await msg.ack()


async def _main(args: argparse.Namespace) -> None:
    from ferrymq.lab.amqp import connect

    out, state = _Out(), {"extra_ms": 0.0, "idle_s": 0.0, "waiting_since": 0.0}
    loop = asyncio.get_running_loop()
    conn = await connect(args.url)  # robust: after a broker restart it reconnects and consumes again
    channel = await conn.channel()
    await channel.set_qos(prefetch_count=args.prefetch)
    queue = await channel.declare_queue(args.queue, passive=True)  # robust: re-consumed after a reconnect
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    cargs = dict(kv.split("=", 1) for kv in args.arguments.split(",") if kv)
    await queue.consume(inbox.put, no_ack=args.ack == "auto", arguments=cargs or None)
    background = [asyncio.create_task(_commands(state))]

    async def gauges() -> None:
        while True:
            out.put(IN_FLIGHT, inbox.qsize())
            waiting = loop.time() - state["waiting_since"] if state["waiting_since"] else 0.0
            out.put(IDLE, int((state["idle_s"] + waiting) * 1000))
            out.flush()
            await asyncio.sleep(GAUGE_EVERY_S)

    background.append(asyncio.create_task(gauges()))
    store = EffectStore(args.dedupe) if args.dedupe else None
    while True:
        state["waiting_since"] = loop.time()  # idle: nothing prefetched, waiting on the next delivery
        msg = await inbox.get()
        state["idle_s"] += loop.time() - state["waiting_since"]
        state["waiting_since"] = 0.0
        try:
            await _process(msg, args, out, state, store)
        except Exception:  # an ack on a connection that broke: the broker redelivers, robustly reconnected
            pass
        out.flush()


def main(argv: list[str] | None = None) -> None:
    args = _args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # receipts are flushed as they happen
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        asyncio.run(_main(args))


if __name__ == "__main__":
    main()
