"""Exactly-once effects under SIGKILL: the issue-13 goal "a worker killed with SIGKILL in the middle
of 10,000 idempotent jobs: 0 lost, 0 effects run twice".

N idempotent jobs, each of whose effect is one INSERT through ``current.tx``, are enqueued on a
real broker; a ``ferrymq worker`` process runs them and is SIGKILLed (with its child processes)
once a fraction of the effects are committed; a second worker finishes the rest. Then the effect
rows are counted: every job's effect once (none lost, none twice). A control run does the same
with the effect written outside the job's transaction (at-least-once), which shows how many
effects a kill duplicates without the idempotency layer.

    PYTHONPATH=. python scripts/exactly_once.py --jobs 10000 --store sqlite
    PYTHONPATH=. python scripts/exactly_once.py --jobs 10000 --store postgresql --control
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POLL_S = 0.01
DEADLINE_S = 600  # a scenario that takes longer than this is reported as stuck

APP_MODULE = '''
"""The scenario's job module, imported by this script and by the worker processes."""
import os
import time

from ferrymq.jobs import App, current
from ferrymq.jobs.idempotency import IdempotencyMiddleware
from ferrymq.jobs.middleware import Middleware


class RedeliveryCounter(Middleware):
    """Notes each redelivered job and whether its effect was already committed (a duplicate
    the idempotency layer must stop). Runs before it, so it sees what it skips."""

    def before_process(self, ctx, message):
        if message.extra.get("redelivered"):
            with app.db.transaction() as tx:
                done = tx.execute("SELECT COUNT(*) FROM effects WHERE job_id = ?",
                                  (message.id,)).fetchone()[0]
                tx.execute("INSERT INTO redeliveries (job_id, effect_done) VALUES (?, ?)", (message.id, done))


class AckLag(Middleware):
    """Work after the job's commit and before its ack (as result and state stores do), here a
    pause: it widens the window in which a kill leaves a committed job unacknowledged."""

    def after_process(self, ctx, message, result=None, exception=None):
        time.sleep(int(os.environ.get("EXACTLY_ONCE_ACK_LAG_MS", "0")) / 1000)


app = App(os.environ["EXACTLY_ONCE_BROKER"], store=os.environ["EXACTLY_ONCE_STORE"])
app.add_middleware(AckLag())
if not any(isinstance(m, IdempotencyMiddleware) for m in app.middleware):
    app.add_middleware(IdempotencyMiddleware(app.db))
app.middleware.insert(0, RedeliveryCounter())
app.db.create(["CREATE TABLE IF NOT EXISTS effects (job_id TEXT NOT NULL, n INTEGER NOT NULL)",
               "CREATE TABLE IF NOT EXISTS redeliveries (job_id TEXT NOT NULL, effect_done INTEGER)"])


@app.job(queue="exactly_once", idempotent=True, retries=10, min_delay="10ms", max_delay="100ms")
def effect(n: int) -> None:
    current.tx.execute("INSERT INTO effects (job_id, n) VALUES (?, ?)", (current.message.id, n))


@app.job(queue="exactly_once", retries=10, min_delay="10ms", max_delay="100ms")
def effect_at_least_once(n: int) -> None:
    with app.db.transaction() as tx:  # its own transaction: no idempotency key to commit with it
        tx.execute("INSERT INTO effects (job_id, n) VALUES (?, ?)", (current.message.id, n))
'''


@dataclass
class Outcome:
    store: str
    jobs: int
    effects: int  # effect rows committed
    distinct: int  # jobs with at least one effect
    at_kill: int  # effects committed when the first worker was killed
    redelivered: int  # deliveries the broker marked redelivered after the kill
    redelivered_done: int  # ... of jobs whose effect was already committed (duplicates to stop)
    seconds: float
    exactly_once: bool

    @property
    def lost(self) -> int:
        return self.jobs - self.distinct

    @property
    def twice(self) -> int:
        return self.effects - self.distinct


def count_effects(db: Any) -> tuple[int, int]:
    with db.transaction() as tx:
        row = tx.execute("SELECT COUNT(*), COUNT(DISTINCT n) FROM effects").fetchone()
    return int(row[0]), int(row[1])


def count_redeliveries(db: Any) -> tuple[int, int]:
    with db.transaction() as tx:
        row = tx.execute("SELECT COUNT(*), COUNT(CASE WHEN effect_done > 0 THEN 1 END) "
                         "FROM redeliveries").fetchone()
    return int(row[0]), int(row[1])


def write_module(directory: Path) -> str:
    path = directory / "exactly_once_app.py"
    path.write_text(textwrap.dedent(APP_MODULE))
    return "exactly_once_app"


def start_worker(module: str, env: dict[str, str], processes: int, concurrency: int,
                 log: Path) -> subprocess.Popen[bytes]:
    """``ferrymq worker module:app`` in a session of its own, so a SIGKILL reaches its children;
    its output goes to ``log`` (a pipe nobody reads could fill and stall it)."""
    argv = [sys.executable, "-m", "ferrymq.cli", "worker", f"{module}:app", "--processes", str(processes),
            "--concurrency", str(concurrency), "--log-level", "warning"]
    with open(log, "ab") as out:
        return subprocess.Popen(argv, env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Signal the worker's process group and wait; a worker that does not drain in time is killed."""
    for signum in (sig, signal.SIGKILL):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=60)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_for(predicate: Any, what: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        if proc.poll() is not None:
            err = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"worker exited ({proc.returncode}) while waiting for {what}: {err}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"stuck: {what} not reached in {DEADLINE_S} s")
        time.sleep(POLL_S)


def run_scenario(broker_url: str, store_url: str, jobs: int, *, control: bool = False,
                 kill_fraction: float = 0.4, processes: int = 2, concurrency: int = 8,
                 ack_lag_ms: int = 20) -> Outcome:
    """Enqueue ``jobs``, SIGKILL the first worker at ``kill_fraction`` of the effects, finish
    with a second worker, count. ``control``: the at-least-once job instead. ``ack_lag_ms``:
    work between each job's commit and its ack (see AckLag)."""
    with tempfile.TemporaryDirectory(prefix="exactly-once-") as tmp:
        module = write_module(Path(tmp))
        env = {**os.environ, "EXACTLY_ONCE_BROKER": broker_url, "EXACTLY_ONCE_STORE": store_url,
               "EXACTLY_ONCE_ACK_LAG_MS": str(ack_lag_ms), "EXACTLY_ONCE_DIR": tmp,
               "PYTHONPATH": os.pathsep.join([tmp, str(ROOT), os.environ.get("PYTHONPATH", "")])}
        loaded = import_module_with(tmp, module, env)
        app = loaded.app
        job = loaded.effect_at_least_once if control else loaded.effect
        started = time.monotonic()
        try:
            job.send_many([(n,) for n in range(jobs)])
            outcome = _kill_and_finish(app, module, env, jobs, kill_fraction, processes, concurrency)
        finally:
            app.close()
        outcome.seconds = round(time.monotonic() - started, 2)
        outcome.store = store_url.split(":", 1)[0]
        return outcome


def import_module_with(directory: str, module: str, env: dict[str, str]) -> Any:
    """Import the job module here too (to enqueue and count), with the workers' settings."""
    saved = {k: os.environ.get(k) for k in env if k.startswith("EXACTLY_ONCE_")}
    os.environ.update({k: env[k] for k in saved})
    sys.path.insert(0, directory)
    try:
        return __import__(module)
    finally:
        sys.path.remove(directory)
        sys.modules.pop(module, None)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _kill_and_finish(app: Any, module: str, env: dict[str, str], jobs: int, kill_fraction: float,
                     processes: int, concurrency: int) -> Outcome:
    logs = [Path(env["EXACTLY_ONCE_DIR"]) / f"worker-{n}.log" for n in (1, 2)]
    first = start_worker(module, env, processes, concurrency, logs[0])
    try:
        wait_for(lambda: count_effects(app.db)[0] >= jobs * kill_fraction, "the kill point", first, logs[0])
    finally:
        kill_group(first)
    at_kill = count_effects(app.db)[0]
    second = start_worker(module, env, processes, concurrency, logs[1])
    try:
        wait_for(lambda: count_effects(app.db)[1] >= jobs, "every job's effect", second, logs[1])
        wait_for(lambda: queue_drained(app), "an empty queue", second, logs[1])
    finally:
        kill_group(second, signal.SIGTERM)
    effects, distinct = count_effects(app.db)
    return Outcome("", jobs, effects, distinct, at_kill, *count_redeliveries(app.db), 0.0,
                   effects == distinct == jobs)


def queue_drained(app: Any) -> bool:
    """No message ready or unacknowledged on the scenario's queue (redeliveries included)."""
    import pika

    params = pika.URLParameters(app.url)
    with pika.BlockingConnection(params) as conn:
        declared = conn.channel().queue_declare("exactly_once", passive=True)
        return bool(declared.method.message_count == 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--kill-fraction", type=float, default=0.4)
    parser.add_argument("--ack-lag-ms", type=int, default=20, help="work between commit and ack")
    parser.add_argument("--control", action="store_true", help="also run the at-least-once control")
    args = parser.parse_args()
    results = []
    with ExitStack() as stack:
        from ferrymq.testing import EmbeddedBroker

        for control in (False, True) if args.control else (False,):
            broker = stack.enter_context(EmbeddedBroker())
            store = _store_url(stack, args.store, "control" if control else "idempotent")
            outcome = run_scenario(broker.amqp_url, store, args.jobs, control=control,
                                   kill_fraction=args.kill_fraction, processes=args.processes,
                                   concurrency=args.concurrency, ack_lag_ms=args.ack_lag_ms)
            results.append({"control": control, **asdict(outcome), "lost": outcome.lost,
                            "twice": outcome.twice})
            print(json.dumps(results[-1]), flush=True)
    if not results[0]["exactly_once"]:
        sys.exit(1)


def _store_url(stack: ExitStack, kind: str, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{stack.enter_context(tempfile.TemporaryDirectory(prefix='exactly-once-db-'))}/jobs.db"
    from tests.support.postgres import running_postgres

    server = stack.enter_context(running_postgres())
    return server.create_database(name)


if __name__ == "__main__":
    main()
