"""The admin commands: thin wrappers that call one or two API paths and print a table or the JSON.

Exit codes (in every command's help): 0 success; 1 the broker answered with an error (its reason
is printed); 2 usage error; 3 the broker is unreachable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from ferrymq.admin import tables
from ferrymq.admin.client import ApiError, Client, Unreachable, name_path, vhost_path

EXIT_CODES = ("Exit codes: 0 success; 1 the broker answered with an error (its reason is printed); "
              "2 usage error; 3 the broker is unreachable.")
EXIT_BROKER_ERROR = 1
EXIT_UNREACHABLE = 3

Vhost = Annotated[str, typer.Option("--vhost", help="Virtual host.")]
Url = Annotated[str | None, typer.Option(
    "--url", help="The broker's HTTP API.",
    show_default="http://{host}:{http_port} of the broker's own settings")]
User = Annotated[str, typer.Option("--user", help="User name (HTTP basic auth).")]
Password = Annotated[str, typer.Option("--password", help="Password.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]

dlq_app = typer.Typer(help="Dead-letter queues: list them, replay their messages.", no_args_is_help=True)
definitions_app = typer.Typer(help="Export and import definitions (RabbitMQ's JSON format).",
                              no_args_is_help=True)


def default_url() -> str:
    """Where this machine's broker listens: its own settings (ferrymq.toml, FERRYMQ_* variables)."""
    from ferrymq.config import load_settings

    try:
        settings = load_settings()
    except (ValueError, OSError) as exc:
        typer.echo(f"ferrymq: cannot read the broker's settings for the default --url: {exc}", err=True)
        raise typer.Exit(2) from None
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.http_port}"


def client(url: str | None, user: str, password: str) -> Client:
    return Client(url or default_url(), user, password)


@contextmanager
def handled() -> Iterator[None]:
    """ApiError -> exit 1 and Unreachable -> exit 3, each as one line on stderr."""
    try:
        yield
    except ApiError as exc:
        typer.echo(f"ferrymq: {exc}", err=True)
        raise typer.Exit(EXIT_BROKER_ERROR) from None
    except Unreachable as exc:
        typer.echo(f"ferrymq: {exc}", err=True)
        raise typer.Exit(EXIT_UNREACHABLE) from None


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True))


def in_vhost(rows: list[dict[str, Any]], vhost: str) -> list[dict[str, Any]]:
    return [row for row in rows if row.get("vhost") == vhost]


def listing(title: str, path: str, columns: tables.Columns, shape: Callable[[list[Any]], list[Any]],
            url: str | None, user: str, password: str, as_json: bool, vhost: str | None = None) -> None:
    """GET one list; keep ``vhost``'s rows when the path lists every vhost; print JSON or a table."""
    with handled():
        rows = client(url, user, password).get(path) or []
    if vhost is not None:
        rows = in_vhost(rows, vhost)
    if as_json:
        print_json(rows)
    else:
        tables.console().print(tables.table(title, columns, shape(rows)))


def same(rows: list[Any]) -> list[Any]:
    return rows


def queues(vhost: Vhost = "/", url: Url = None, user: User = "guest", password: Password = "guest",
           as_json: AsJson = False) -> None:
    """List the queues of a vhost with their message counts."""
    listing(f"queues in {vhost}", f"/api/queues/{vhost_path(vhost)}", tables.QUEUES, same,
            url, user, password, as_json)


def exchanges(vhost: Vhost = "/", url: Url = None, user: User = "guest", password: Password = "guest",
              as_json: AsJson = False) -> None:
    """List the exchanges of a vhost."""
    listing(f"exchanges in {vhost}", f"/api/exchanges/{vhost_path(vhost)}", tables.EXCHANGES,
            tables.exchange_rows, url, user, password, as_json)


def bindings(vhost: Vhost = "/", url: Url = None, user: User = "guest", password: Password = "guest",
             as_json: AsJson = False) -> None:
    """List the bindings of a vhost (the default exchange's implicit ones included, as RabbitMQ does)."""
    listing(f"bindings in {vhost}", f"/api/bindings/{vhost_path(vhost)}", tables.BINDINGS, same,
            url, user, password, as_json)


def connections(vhost: Vhost = "/", url: Url = None, user: User = "guest", password: Password = "guest",
                as_json: AsJson = False) -> None:
    """List the client connections open on a vhost."""
    listing(f"connections to {vhost}", "/api/connections", tables.CONNECTIONS, tables.connection_rows,
            url, user, password, as_json, vhost=vhost)


def purge(queue: Annotated[str, typer.Argument(help="The queue to empty.")], vhost: Vhost = "/",
          url: Url = None, user: User = "guest", password: Password = "guest") -> None:
    """Remove every ready message from a queue (unacknowledged ones stay with their consumers)."""
    with handled():
        client(url, user, password).delete(f"/api/queues/{vhost_path(vhost)}/{name_path(queue)}/contents")
    typer.echo(f"purged queue {queue!r} in vhost {vhost!r}")


# --- FerryMQ's extensions: the routing explainer and dead-letter queues ---------------------------
def parse_pairs(pairs: list[str], option: str) -> dict[str, str]:
    """``k=v`` options into a dict; anything else is a usage error (exit 2)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected key=value, got {pair!r}", param_hint=option)
        out[key] = value
    return out


def route(exchange: Annotated[str, typer.Argument(help='The exchange ("" or amq.default: the default).')],
          routing_key: Annotated[str, typer.Argument(help="The message's routing key.")],
          header: Annotated[list[str] | None, typer.Option(
              "--header", help="A message header, key=value (string values); repeat for more.")] = None,
          vhost: Vhost = "/", url: Url = None, user: User = "guest", password: Password = "guest",
          as_json: AsJson = False) -> None:
    """Explain where a message would go: the bindings that match and why, then the queues.

    Nothing is published. An unroutable message is reported, with exit code 0."""
    body = {"routing_key": routing_key, "headers": parse_pairs(header or [], "--header"), "properties": {}}
    path = f"/api/ferrymq/route/{vhost_path(vhost)}/{name_path(exchange, 'amq.default')}"
    with handled():
        answer = client(url, user, password).post(path, body)
    if as_json:
        print_json(answer)
        return
    for line in route_lines(answer):
        typer.echo(line)


def route_lines(answer: dict[str, Any]) -> list[str]:
    """The explainer's answer as text: each exchange step with its matched bindings, then the result."""
    start = answer.get("exchange") or "(AMQP default)"
    lines = [f"routing key {answer.get('routing_key')!r} at exchange {start!r}"]
    for step in answer.get("steps") or []:
        lines.append(f"  exchange {step.get('exchange') or '(AMQP default)'!r} ({step.get('type')})")
        found = step.get("bindings") or []
        matched = [b for b in found if b.get("matched")]
        for b in matched:
            lines.append(f"    matched {b.get('destination_type')} {b.get('destination')!r} "
                         f"(binding key {b.get('routing_key')!r}): {b.get('why')}")
        if len(found) > len(matched):
            lines.append(f"    {len(found) - len(matched)} other binding(s) did not match")
    if answer.get("alternate_exchange"):
        lines.append(f"alternate exchange: {answer['alternate_exchange']}")
    lines.append("queues: " + (", ".join(answer.get("queues") or []) or "(none)"))
    if answer.get("streams"):
        lines.append("streams: " + ", ".join(answer["streams"]))
    for queue, target in (answer.get("dead_letter") or {}).items():
        lines.append(f"dead letters of {queue!r} go to exchange {target.get('exchange')!r} "
                     f"with routing key {target.get('routing_key')!r}")
    if answer.get("unroutable"):
        lines.append("UNROUTABLE: no queue or stream would receive this message "
                     "(dropped, or returned to a mandatory publisher)")
    return lines


@dlq_app.command("list")
def dlq_list(vhost: Vhost = "/", url: Url = None, user: User = "guest", password: Password = "guest",
             as_json: AsJson = False) -> None:
    """List the dead-letter queues of a vhost: their messages and the queues that dead-letter into them."""
    listing(f"dead-letter queues in {vhost}", "/api/ferrymq/dlq", tables.DLQ, tables.dlq_rows,
            url, user, password, as_json, vhost=vhost)


@dlq_app.command("replay")
def dlq_replay(queue: Annotated[str, typer.Argument(help="The dead-letter queue.")],
               count: Annotated[int | None, typer.Option(
                   "--count", min=1, help="Replay at most this many.", show_default="all")] = None,
               vhost: Vhost = "/", url: Url = None, user: User = "guest", password: Password = "guest",
               as_json: AsJson = False) -> None:
    """Send dead-lettered messages back to the queues they died in; print the counts before and after."""
    path = f"/api/ferrymq/dlq/{vhost_path(vhost)}/{name_path(queue)}/replay"
    with handled():
        answer = client(url, user, password).post(path, {"count": count})
    if as_json:
        print_json(answer)
        return
    typer.echo(f"replayed {answer.get('replayed')} message(s) from {queue!r}")
    before, after = answer.get("before") or {}, answer.get("after") or {}
    typer.echo(f"  {queue} (dead letters): {before.get('dlq')} -> {after.get('dlq')}")
    targets = {**(before.get("targets") or {}), **(after.get("targets") or {})}
    for name in sorted(targets):
        was, now = (before.get("targets") or {}).get(name), (after.get("targets") or {}).get(name)
        typer.echo(f"  {name}: {was} -> {now}")


# --- definitions ---------------------------------------------------------------------------------
DefsVhost = Annotated[str | None, typer.Option(
    "--vhost", help="Only this virtual host's definitions.", show_default="the whole broker")]


@definitions_app.command("export")
def definitions_export(
        file: Annotated[Path | None, typer.Argument(help="Write here.", show_default="stdout")] = None,
        vhost: DefsVhost = None, url: Url = None, user: User = "guest", password: Password = "guest",
) -> None:
    """Export users, vhosts, permissions, queues, exchanges, bindings and policies as JSON."""
    path = "/api/definitions" if vhost is None else f"/api/definitions/{vhost_path(vhost)}"
    with handled():
        answer = client(url, user, password).get(path)
    text = json.dumps(answer, indent=2, sort_keys=True) + "\n"
    if file is None:
        typer.echo(text, nl=False)
        return
    file.write_text(text)
    typer.echo(f"exported definitions to {file}", err=True)


@definitions_app.command("import")
def definitions_import(
        file: Annotated[Path, typer.Argument(help="A definitions JSON file.", exists=True, dir_okay=False)],
        vhost: DefsVhost = None, url: Url = None, user: User = "guest", password: Password = "guest",
) -> None:
    """Import a definitions file (as exported here or by RabbitMQ); existing objects are kept.

    Prints what the broker dropped (FerryMQ reports it; RabbitMQ keeps all or refuses)."""
    try:
        body = json.loads(file.read_text())
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(f"{file} is not a JSON file: {exc}", param_hint="FILE") from None
    path = "/api/definitions" if vhost is None else f"/api/definitions/{vhost_path(vhost)}"
    with handled():
        answer = client(url, user, password).post(path, body)
    dropped = answer.get("dropped") or [] if isinstance(answer, dict) else []
    typer.echo(f"imported definitions from {file}" + (f"; dropped {len(dropped)}:" if dropped else ""))
    for item in dropped:  # FerryMQ's extension (RabbitMQ keeps all or refuses): what was not kept
        where = "/".join(str(item[k]) for k in ("section", "vhost", "name") if k in item)
        typer.echo(f"  {where}: {item.get('reason', '')}")


# --- status --------------------------------------------------------------------------------------
def alarms_check(api: Client) -> dict[str, Any]:
    """GET /api/health/checks/alarms: 200 {"status": "ok"}; 503 is the failed check, not an error."""
    try:
        return api.get("/api/health/checks/alarms") or {"status": "ok"}
    except ApiError as exc:
        if exc.status != 503:
            raise
        return exc.body if isinstance(exc.body, dict) else {"status": "failed", "reason": str(exc)}


def status(url: Url = None, user: User = "guest", password: Password = "guest",
           as_json: AsJson = False) -> None:
    """The broker at a glance: listeners, object totals, queue totals and alarms.

    Exits 1 when the alarms health check fails (a memory or disk alarm is in effect)."""
    api = client(url, user, password)
    with handled():
        overview = api.get("/api/overview") or {}
        alarms = alarms_check(api)
    failed = alarms.get("status") != "ok"
    if as_json:
        print_json({"overview": overview, "alarms": alarms})
    else:
        print_status(overview, alarms, failed)
    if failed:
        raise typer.Exit(EXIT_BROKER_ERROR)


def print_status(overview: dict[str, Any], alarms: dict[str, Any], failed: bool) -> None:
    out = tables.console()
    out.print(f"{overview.get('product_name', '?')} {overview.get('product_version', '?')} "
              f"on node {overview.get('node', '?')}")
    out.print(tables.table("listeners", tables.LISTENERS, overview.get("listeners") or []))
    for field in ("object_totals", "queue_totals"):
        values, title = overview.get(field) or {}, field.replace("_", " ")
        out.print(tables.totals(title, values) if values else f"{title}: none")
    if not failed:
        out.print("alarms: none")
        return
    out.print(f"alarms: FAILED: {alarms.get('reason', '')}")
    for alarm in alarms.get("alarms") or []:
        out.print(f"  {tables.cell(alarm)}")


# --- registration --------------------------------------------------------------------------------
COMMANDS: tuple[Callable[..., None], ...] = (queues, exchanges, bindings, connections, purge, route, status)


def register(app: typer.Typer) -> None:
    """Add the admin commands to ``ferrymq``'s app (called from ferrymq/cli.py)."""
    for command in COMMANDS:
        app.command(epilog=EXIT_CODES)(command)
    for sub in (dlq_app, definitions_app):
        for info in sub.registered_commands:
            info.epilog = EXIT_CODES
    app.add_typer(dlq_app, name="dlq")
    app.add_typer(definitions_app, name="definitions")
