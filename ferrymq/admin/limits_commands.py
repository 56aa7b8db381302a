"""``ferrymq set-vm-memory-high-watermark``, ``set-vhost-limits``, ``clear-vhost-limits``,
``set-user-limits``, ``clear-user-limits``: rabbitmqctl's commands of the same names, over the HTTP API
(so each change is in the audit log, with who made it and from where)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from ferrymq.admin.client import name_path, vhost_path
from ferrymq.admin.commands import EXIT_CODES, Password, Url, User, Vhost, client, handled

Limits = Annotated[str, typer.Argument(help='A JSON object, e.g. \'{"max-connections": 10}\'.')]


def _limits(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        typer.echo(f"ferrymq: limits are not JSON: {exc}", err=True)
        raise typer.Exit(2) from None
    if not isinstance(value, dict) or not value:
        typer.echo('ferrymq: limits must be a JSON object such as {"max-connections": 10}', err=True)
        raise typer.Exit(2)
    return value


def set_vm_memory_high_watermark(
    value: Annotated[list[str], typer.Argument(
        help="A fraction of the machine's memory (0.4), or 'absolute' and an amount (absolute 2GiB).")],
    url: Url = None, user: User = "guest", password: Password = "guest",
) -> None:
    """Change the memory alarm's threshold now (until the broker restarts), as rabbitmqctl does."""
    if len(value) == 2 and value[0] == "absolute":
        body: dict[str, Any] = {"absolute": value[1]}
    elif len(value) == 1:
        try:
            body = {"relative": float(value[0])}
        except ValueError:
            typer.echo(f"ferrymq: {value[0]!r} is not a fraction (use: absolute <amount>)", err=True)
            raise typer.Exit(2) from None
    else:
        typer.echo("ferrymq: expected <fraction> or absolute <amount>", err=True)
        raise typer.Exit(2)
    with handled():
        client(url, user, password).request("PUT", "/api/ferrymq/vm-memory-high-watermark", body)
    typer.echo(f"vm_memory_high_watermark set to {' '.join(value)}")


def set_vhost_limits(limits: Limits, vhost: Vhost = "/", url: Url = None, user: User = "guest",
                     password: Password = "guest") -> None:
    """Set a vhost's max-connections and/or max-queues (negative: no limit; 0: none allowed)."""
    api = client(url, user, password)
    with handled():
        for name, value in _limits(limits).items():
            api.request("PUT", f"/api/vhost-limits/{vhost_path(vhost)}/{name_path(name)}", {"value": value})
    typer.echo(f"limits of vhost {vhost!r} set")


def clear_vhost_limits(vhost: Vhost = "/", url: Url = None, user: User = "guest",
                       password: Password = "guest") -> None:
    """Remove every limit of a vhost."""
    api = client(url, user, password)
    with handled():
        for row in api.get(f"/api/vhost-limits/{vhost_path(vhost)}") or []:
            for name in row["value"]:
                api.delete(f"/api/vhost-limits/{vhost_path(vhost)}/{name_path(name)}")
    typer.echo(f"limits of vhost {vhost!r} cleared")


def set_user_limits(username: Annotated[str, typer.Argument(help="The user.")], limits: Limits,
                    url: Url = None, user: User = "guest", password: Password = "guest") -> None:
    """Set a user's max-connections and/or max-channels."""
    api = client(url, user, password)
    with handled():
        for name, value in _limits(limits).items():
            api.request("PUT", f"/api/user-limits/{name_path(username)}/{name_path(name)}", {"value": value})
    typer.echo(f"limits of user {username!r} set")


def clear_user_limits(username: Annotated[str, typer.Argument(help="The user.")],
                      name: Annotated[str, typer.Argument(help="max-connections, max-channels or all.")],
                      url: Url = None, user: User = "guest", password: Password = "guest") -> None:
    """Remove one limit of a user, or all of them."""
    api = client(url, user, password)
    with handled():
        rows = api.get(f"/api/user-limits/{name_path(username)}") or []
        names = [n for row in rows for n in row["value"]] if name == "all" else [name]
        for each in names:
            api.delete(f"/api/user-limits/{name_path(username)}/{name_path(each)}")
    typer.echo(f"limits of user {username!r} cleared")


def register(app: typer.Typer) -> None:
    """Add these commands to ``ferrymq``'s app (called from ferrymq/cli.py)."""
    for command in (set_vm_memory_high_watermark, set_vhost_limits, clear_vhost_limits, set_user_limits,
                    clear_user_limits):
        app.command(epilog=EXIT_CODES)(command)
