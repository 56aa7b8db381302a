"""`ferrymq users | vhosts | permissions ...`: RabbitMQ's access model managed on the HTTP API, as
rabbitmqctl's add_user / set_user_tags / add_vhost / set_permissions do it.

Exit codes as the other admin commands (ferrymq.admin.commands): 0 success; 1 the broker answered
with an error (its reason printed on one line); 2 usage error; 3 the broker is unreachable.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ferrymq.admin.client import name_path, vhost_path
from ferrymq.admin.commands import (
    EXIT_CODES,
    AsJson,
    Password,
    Url,
    User,
    Vhost,
    client,
    handled,
    listing,
    same,
)

TAGS = ("administrator", "monitoring", "policymaker", "management", "impersonator")  # RabbitMQ's

users_app = typer.Typer(help="Users: list, add, delete, set tags, change passwords.", no_args_is_help=True)
vhosts_app = typer.Typer(help="Virtual hosts: list, add, delete.", no_args_is_help=True)
permissions_app = typer.Typer(help="Per-vhost configure/write/read permissions (regular expressions).",
                              no_args_is_help=True)
Name = Annotated[str, typer.Argument(help="The user.")]
Tags = Annotated[list[str] | None, typer.Argument(
    help=f"Management tags ({', '.join(TAGS)}); none clears them.")]
USERS = (("name", "name"), ("tags", "tags"), ("hashing_algorithm", "hashing_algorithm"))
VHOSTS = (("name", "name"), ("messages", "messages"))
PERMISSIONS = (("user", "user"), ("vhost", "vhost"), ("configure", "configure"), ("write", "write"),
               ("read", "read"))


@users_app.command("list")
def users_list(url: Url = None, user: User = "guest", password: Password = "guest",
               as_json: AsJson = False) -> None:
    """List the users with their tags."""
    listing("users", "/api/users", USERS, same, url, user, password, as_json)


@users_app.command("add")
def users_add(name: Name, new_password: Annotated[str, typer.Argument(help="Its password.")],
              tags: Tags = None, url: Url = None, user: User = "guest", password: Password = "guest") -> None:
    """Add a user (stored as RabbitMQ's salted hash) with optional tags."""
    body = {"password": new_password, "tags": ",".join(_tags(tags))}
    with handled():
        client(url, user, password).request("PUT", f"/api/users/{name_path(name)}", body)
    typer.echo(f"added user {name!r}")


@users_app.command("delete")
def users_delete(name: Name, url: Url = None, user: User = "guest", password: Password = "guest") -> None:
    """Delete a user and its permissions."""
    with handled():
        client(url, user, password).delete(f"/api/users/{name_path(name)}")
    typer.echo(f"deleted user {name!r}")


@users_app.command("set-tags")
def users_set_tags(name: Name, tags: Tags = None, url: Url = None, user: User = "guest",
                   password: Password = "guest") -> None:
    """Replace a user's tags (its password is kept)."""
    chosen, api = _tags(tags), client(url, user, password)
    with handled():
        api.get(f"/api/users/{name_path(name)}")  # a missing user is an error, not a new user
        api.request("PUT", f"/api/users/{name_path(name)}", {"tags": ",".join(chosen)})
    typer.echo(f"tags of {name!r}: {', '.join(chosen) or '(none)'}")


@users_app.command("change-password")
def users_change_password(name: Name, new_password: Annotated[str, typer.Argument(help="The new password.")],
                          url: Url = None, user: User = "guest", password: Password = "guest") -> None:
    """Change a user's password (its tags are kept)."""
    api = client(url, user, password)
    with handled():
        api.get(f"/api/users/{name_path(name)}")
        api.request("PUT", f"/api/users/{name_path(name)}", {"password": new_password})
    typer.echo(f"changed the password of {name!r}")


def _tags(tags: list[str] | None) -> list[str]:
    found = [t.strip() for t in ",".join(tags or []).split(",") if t.strip()]
    unknown = [t for t in found if t not in TAGS]
    if unknown:
        raise typer.BadParameter(f"unknown tag(s) {', '.join(unknown)}; known: {', '.join(TAGS)}",
                                 param_hint="TAGS")
    return found


VhostName = Annotated[str, typer.Argument(help="The virtual host.")]


@vhosts_app.command("list")
def vhosts_list(url: Url = None, user: User = "guest", password: Password = "guest",
                as_json: AsJson = False) -> None:
    """List the virtual hosts."""
    listing("vhosts", "/api/vhosts", VHOSTS, same, url, user, password, as_json)


@vhosts_app.command("add")
def vhosts_add(name: VhostName, url: Url = None, user: User = "guest", password: Password = "guest") -> None:
    """Add a virtual host (no user may use it until given permissions on it)."""
    with handled():
        client(url, user, password).request("PUT", f"/api/vhosts/{vhost_path(name)}", {})
    typer.echo(f"added vhost {name!r}")


@vhosts_app.command("delete")
def vhosts_delete(name: VhostName, url: Url = None, user: User = "guest",
                  password: Password = "guest") -> None:
    """Delete a virtual host with everything it holds."""
    with handled():
        client(url, user, password).delete(f"/api/vhosts/{vhost_path(name)}")
    typer.echo(f"deleted vhost {name!r}")


Pattern = Annotated[str, typer.Argument(help="A regular expression; '' matches nothing.")]


@permissions_app.command("list")
def permissions_list(vhost: Annotated[str | None, typer.Option(
        "--vhost", help="Only this virtual host's.", show_default="every vhost")] = None,
        url: Url = None, user: User = "guest", password: Password = "guest", as_json: AsJson = False) -> None:
    """List permissions."""
    path = "/api/permissions" if vhost is None else f"/api/vhosts/{vhost_path(vhost)}/permissions"
    listing("permissions", path, PERMISSIONS, same, url, user, password, as_json)


@permissions_app.command("set")
def permissions_set(name: Name, configure: Pattern, write: Pattern, read: Pattern, vhost: Vhost = "/",
                    url: Url = None, user: User = "guest", password: Password = "guest") -> None:
    """Set a user's configure, write and read permissions in a vhost."""
    body = {"configure": configure, "write": write, "read": read}
    with handled():
        client(url, user, password).request(
            "PUT", f"/api/permissions/{vhost_path(vhost)}/{name_path(name)}", body)
    typer.echo(f"set permissions of {name!r} in vhost {vhost!r}")


@permissions_app.command("clear")
def permissions_clear(name: Name, vhost: Vhost = "/", url: Url = None, user: User = "guest",
                      password: Password = "guest") -> None:
    """Remove a user's permissions in a vhost (it may no longer open it)."""
    with handled():
        client(url, user, password).delete(f"/api/permissions/{vhost_path(vhost)}/{name_path(name)}")
    typer.echo(f"cleared permissions of {name!r} in vhost {vhost!r}")


def register(app: typer.Typer) -> None:
    """Add `users`, `vhosts` and `permissions` to ``ferrymq``'s app (called from ferrymq/cli.py)."""
    for name, sub in (("users", users_app), ("vhosts", vhosts_app), ("permissions", permissions_app)):
        for info in sub.registered_commands:
            info.epilog = EXIT_CODES
        app.add_typer(sub, name=name)
