"""`ferrymq serve | bench | lab | sim | version` and the admin commands: thin; the work lives in
ferrymq.server, ferrymq.bench, ferrymq.lab, ferrymq.sim and ferrymq.admin."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from ferrymq import __version__
from ferrymq.config import load_settings

app = typer.Typer(add_completion=False, help="FerryMQ: AMQP 0-9-1 queues and Kafka-style logs.")


@app.command()
def serve(
    config: Annotated[str | None, typer.Option(help="Path to ferrymq.toml.")] = None,
    data_dir: Annotated[str | None, typer.Option(help="Where durable data lives.")] = None,
    host: Annotated[str | None, typer.Option(help="Address every listener binds.")] = None,
    amqp_port: Annotated[int | None, typer.Option(help="AMQP 0-9-1 port (0 = any free).")] = None,
    kafka_port: Annotated[int | None, typer.Option(help="Kafka port (0 = any free).")] = None,
    http_port: Annotated[int | None, typer.Option(help="HTTP port: API, /metrics, dashboard.")] = None,
    amqps_port: Annotated[int | None, typer.Option(help="AMQP over TLS port (0 = off; 5671).")] = None,
    kafka_ssl_port: Annotated[int | None, typer.Option(help="Kafka SSL/SASL_SSL port (0 = off).")] = None,
    https_port: Annotated[int | None, typer.Option(help="HTTPS port (0 = off).")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning, error.")] = None,
    fsync: Annotated[str | None, typer.Option(help="always, interval:<ms> or never.")] = None,
) -> None:
    """Run the broker in the foreground until SIGINT or SIGTERM."""
    try:
        settings = load_settings(config, overrides={
            "data_dir": data_dir, "host": host, "amqp_port": amqp_port, "kafka_port": kafka_port,
            "http_port": http_port, "log_level": log_level, "fsync": fsync,
            "amqps_port": amqps_port, "kafka_ssl_port": kafka_ssl_port, "https_port": https_port,
        })
    except (ValueError, FileNotFoundError) as exc:  # a user's mistake: one line, no traceback
        typer.echo(f"ferrymq: {exc}", err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    from ferrymq.server.app import ListenerError, run
    from ferrymq.server.tls import TlsConfigError

    try:
        run(settings)
    except (ListenerError, TlsConfigError) as exc:
        typer.echo(f"ferrymq: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                "help_option_names": []})
def bench(ctx: typer.Context) -> None:
    """Measure brokers side by side (FerryMQ, RabbitMQ, the null sink); `ferrymq bench --help`."""
    from ferrymq.bench.command import main as bench_main

    raise typer.Exit(bench_main(ctx.args))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                                "help_option_names": []})
def lab(ctx: typer.Context) -> None:
    """QueueLab: scenarios with faults injected and saved reports; `ferrymq lab --help`."""
    from ferrymq.lab.command import main as lab_main

    raise typer.Exit(lab_main(ctx.args))


@app.command()
def certs(
    dir: Annotated[str, typer.Option(help="Where the files go.")] = "./ferrymq-certs",
    hostname: Annotated[list[str] | None, typer.Option(
        help="A name or address clients connect to (repeat); default localhost, 127.0.0.1, ::1.")] = None,
    days: Annotated[int, typer.Option(help="How long the certificates stay valid.")] = 365,
    client: Annotated[str | None, typer.Option(
        help="Also a client certificate with this common name (the user for SASL EXTERNAL).")] = None,
) -> None:
    """A development CA and a server certificate signed by it (keys 0600); prints the settings."""
    import datetime as dt
    from pathlib import Path

    from ferrymq.certs import DEFAULT_HOSTNAMES, settings_text, write_dev_certs
    from ferrymq.clock import SystemClock

    if days < 1:
        typer.echo("ferrymq certs: --days must be at least 1", err=True)
        raise typer.Exit(2)
    now = dt.datetime.fromtimestamp(SystemClock().now_ms() / 1000, dt.UTC)
    try:
        paths = write_dev_certs(Path(dir), tuple(hostname or DEFAULT_HOSTNAMES), days, now, client)
    except OSError as exc:
        typer.echo(f"ferrymq certs: cannot write to {dir}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(settings_text(paths))


@app.command()
def version() -> None:
    """Print the FerryMQ version."""
    typer.echo(__version__)


# --- `ferrymq sim`: the deterministic simulator; its command lives in ferrymq/sim/cli.py -------------
from ferrymq.sim.cli import sim as _sim  # noqa: E402  (the runner itself is imported when it runs)

app.command(name="sim")(_sim)

# --- `ferrymq worker`: the job system's workers; the command lives in ferrymq/jobs/cli.py ----------
from ferrymq.jobs.cli import worker as _worker  # noqa: E402

app.command(name="worker")(_worker)

# --- `ferrymq jobs dead | replay | retry-schedule | queues`: they live in ferrymq/jobs/commands.py ---
from ferrymq.jobs.commands import jobs_app as _jobs_app  # noqa: E402

app.add_typer(_jobs_app, name="jobs")

# --- `ferrymq queues | exchanges | ... | status`: the admin commands live in ferrymq/admin/ ---------
from ferrymq.admin.commands import register as _register_admin  # noqa: E402

_register_admin(app)

# --- `ferrymq set-vm-memory-high-watermark | set-vhost-limits | ...`: in ferrymq/admin/limits_commands.py
from ferrymq.admin.limits_commands import register as _register_limits  # noqa: E402

_register_limits(app)

# --- `ferrymq users | vhosts | permissions`: RabbitMQ's access model (ferrymq/admin/access.py) -----
from ferrymq.admin.access import register as _register_access  # noqa: E402

_register_access(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
