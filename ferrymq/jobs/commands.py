"""``ferrymq jobs dead | replay | retry-schedule | queues``: operating an app's jobs over AMQP.

Every command loads the app (``module:attribute``, as ``ferrymq worker`` does) for its broker
URL, queues and jobs, and talks AMQP only, so it works the same against RabbitMQ. A user mistake
or a broker that cannot be reached is one line on stderr and exit code 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import quote

import typer

from ferrymq.admin.tables import console, table
from ferrymq.client.connection import AmqpUrl, BrokerClosed
from ferrymq.jobs import dlq
from ferrymq.jobs.app import App
from ferrymq.jobs.broker import PublishError, dlq_name
from ferrymq.jobs.cli import load_or_exit

EXIT_ERROR = 1
EXIT_USAGE = 2
ERROR_CHARS = 120  # of the error shown per dead letter (the whole one is in the headers)

jobs_app = typer.Typer(help="Job-system operations: dead letters and their replay, retry schedules, "
                            "queue depths.", no_args_is_help=True)
AppSpec = Annotated[str, typer.Argument(help="module:attribute of the App, e.g. myapp:app")]
Queue = Annotated[str, typer.Argument(help="A job queue (its dead letters are in QUEUE.dlq).")]


def fail(text: str, code: int = EXIT_ERROR) -> typer.Exit:
    typer.echo(f"ferrymq jobs: {text}", err=True)
    return typer.Exit(code)


def where(app: App) -> str:
    """The broker's address without the credentials in the URL."""
    try:
        url = AmqpUrl.parse(app.url)
    except ValueError:
        return repr(app.url)
    return f"amqp://{url.host}:{url.port}/{quote(url.vhost, safe='')}"


@contextmanager
def handled(app: App) -> Iterator[None]:
    """The errors an operator can meet, each as one line and exit 1."""
    try:
        yield
    except dlq.QueueMissing as exc:
        raise fail(f"{exc} (at {where(app)})") from None
    except (BrokerClosed, PublishError) as exc:
        raise fail(f"the broker at {where(app)} refused: {exc}") from None
    except OSError as exc:
        raise fail(f"cannot reach the broker at {where(app)}: {exc}") from None
    finally:
        app.close()


@jobs_app.command()
def dead(app_spec: AppSpec, queue: Queue,
         limit: Annotated[int, typer.Option(help="Show at most this many.")] = 100) -> None:
    """List a queue's dead letters (left in place): id, job, attempts, error."""
    app = load_or_exit(app_spec)
    with handled(app):
        scan = dlq.scan_dead(app, queue, limit)
    rows = [{"id": m.id, "job": m.job, "attempts": m.attempt + 1, "error": first_line(reason)}
            for m, reason, _ in scan.letters]
    columns = (("id", "id"), ("job", "job"), ("attempts", "attempts"), ("error", "error"))
    console().print(table(f"{dlq_name(queue)}: {scan.depth} dead letters", columns, rows))
    if scan.not_jobs:
        typer.echo(f"{scan.not_jobs} of them are not jobs (left in place)")


def first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= ERROR_CHARS else line[:ERROR_CHARS - 1] + "…"


@jobs_app.command()
def replay(app_spec: AppSpec, queue: Queue,
           job_id: Annotated[str | None, typer.Option("--id", help="Replay this job's dead letter.")] = None,
           every: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False) -> None:
    """Put dead letters back on their queue from attempt 0 (history kept); counts before and after."""
    if (job_id is None) == (not every):
        raise fail("say which dead letters: --id ID or --all (not both)", EXIT_USAGE)
    app = load_or_exit(app_spec)
    with handled(app):
        report = dlq.replay(app, queue, job_id)
    typer.echo(f"before {report.before}, replayed {report.replayed}, after {report.after}")
    for why in report.skipped:
        typer.echo(f"left in place: {why}")
    if job_id is not None and report.replayed == 0:
        raise fail(f"no dead letter of job id {job_id!r} in {dlq_name(queue)}")


@jobs_app.command("retry-schedule")
def retry_schedule(app_spec: AppSpec,
                   job_name: Annotated[str, typer.Argument(help="The job's name.")],
                   job_id: Annotated[str, typer.Option("--id", help="Job id (the jitter depends on it).")]
                   = "example") -> None:
    """The waits between a job's attempts if every one failed."""
    app = load_or_exit(app_spec)
    if job_name not in app.jobs:
        raise fail(f"no job named {job_name!r} in {app_spec} (jobs: {', '.join(sorted(app.jobs)) or 'none'})")
    delays = app.retry_schedule(job_name, job_id)
    rows, total = [], 0
    for attempt, delay in enumerate(delays):
        total += delay
        rows.append({"after run": attempt + 1, "wait": seconds(delay), "since first run": seconds(total)})
    columns = (("after run", "after run"), ("wait", "wait"), ("since first run", "since first run"))
    console().print(table(f"{job_name} (id {job_id}): {len(delays)} retries", columns, rows))


def seconds(ms: int) -> str:
    return f"{ms / 1000:.3f}s"


@jobs_app.command()
def queues(app_spec: AppSpec) -> None:
    """Ready messages and consumers of each of the app's queues, and its dead letters."""
    app = load_or_exit(app_spec)
    names = list(app.queues) or ["default"]
    with handled(app), dlq.connect(app.url) as client:
        found = dlq.depths(client, [n for name in names for n in (name, dlq_name(name))])
    rows = []
    for name in names:
        live, dead_ones = found[name], found[dlq_name(name)]
        rows.append({"queue": name, "weight": app.queues.get(name, ""),
                     "ready": "(not declared)" if live is None else live[0],
                     "consumers": "" if live is None else live[1],
                     "dead": "" if dead_ones is None else dead_ones[0]})
    columns = (("queue", "queue"), ("weight", "weight"), ("ready", "ready"), ("consumers", "consumers"),
               ("dead", "dead"))
    console().print(table(f"queues of {app_spec}", columns, rows))
