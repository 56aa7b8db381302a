"""Per-vhost and per-user limits, as RabbitMQ's ``rabbitmqctl set_vhost_limits`` / ``set_user_limits``
keep them: ``max-connections`` and ``max-queues`` for a vhost, ``max-connections`` and
``max-channels`` for a user. A negative value means no limit; 0 refuses every new one.

Pure: the front ends count what is open and ask; the refusals carry RabbitMQ 3.10's codes and texts
(rabbit_reader, rabbit_amqqueue).
"""

from __future__ import annotations

from ferrymq.errors import NotAllowed, PreconditionFailed

VHOST_LIMITS = ("max-connections", "max-queues")
USER_LIMITS = ("max-connections", "max-channels")
SCOPES = {"vhost": VHOST_LIMITS, "user": USER_LIMITS}


class LimitReached(NotAllowed):
    """A connection or channel limit: RabbitMQ names no method in the close (class and method 0)."""

    reported_method = (0, 0)


class LimitError(ValueError):
    """A limit that cannot be set (unknown name, not an integer): one line for the operator."""


def validate(scope: str, values: dict[str, object]) -> dict[str, int]:
    """The limits in ``values`` as integers; RabbitMQ's validation texts (Erlang terms) for the rest."""
    known = SCOPES[scope]
    unknown = [f"{{{_term(k)},{_term(v)}}}" for k, v in values.items() if k not in known]
    if unknown:
        raise LimitError(f"Validation failed\n\nUnrecognised terms [{','.join(unknown)}] in limits\n")
    out: dict[str, int] = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise LimitError(f"Validation failed\n\n{key} should be a number, actually was {_term(value)}\n")
        out[key] = value
    return out


def _term(value: object) -> str:
    """A JSON value as RabbitMQ prints it in validation errors: strings as binaries, <<"x">>."""
    if isinstance(value, str):
        return f'<<"{value}">>'
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


class Limits:
    """What is set, by scope ("vhost" or "user") and name; read by the management API and the checks."""

    def __init__(self) -> None:
        self.by_scope: dict[str, dict[str, dict[str, int]]] = {"vhost": {}, "user": {}}

    def of(self, scope: str, name: str) -> dict[str, int]:
        return dict(self.by_scope[scope].get(name, {}))

    def put(self, scope: str, name: str, values: dict[str, object]) -> dict[str, int]:
        """Set some limits of one vhost or user (the others stay); returns all of its limits."""
        current = self.by_scope[scope].setdefault(name, {})
        current.update(validate(scope, values))
        return dict(current)

    def clear(self, scope: str, name: str, key: str | None = None) -> bool:
        """Remove one limit (or all); False if there was none to remove."""
        current = self.by_scope[scope].get(name)
        if current is None or (key is not None and key not in current):
            return False
        if key is None:
            current.clear()
        else:
            del current[key]
        if not current:
            del self.by_scope[scope][name]
        return True

    def restore(self, scope: str, name: str, values: dict[str, int]) -> None:
        """Recovery: the stored limits, without validating again."""
        if values:
            self.by_scope[scope][name] = dict(values)
        else:
            self.by_scope[scope].pop(name, None)

    def _limit(self, scope: str, name: str, key: str) -> int | None:
        value = self.by_scope[scope].get(name, {}).get(key)
        return value if value is not None and value >= 0 else None

    def wants(self, scope: str, name: str, key: str) -> bool:
        """Whether a count is needed at all (counting walks every connection)."""
        return self._limit(scope, name, key) is not None

    # --- checks (RabbitMQ 3.10's refusals) ----------------------------------------------------

    def check_vhost_connections(self, vhost: str, user: str, open_now: int) -> None:
        limit = self._limit("vhost", vhost, "max-connections")
        if limit is not None and open_now >= limit:
            raise LimitReached(f"access to vhost '{vhost}' refused for user '{user}': "
                             f"connection limit ({limit}) is reached")

    def check_user_connections(self, user: str, open_now: int) -> None:
        limit = self._limit("user", user, "max-connections")
        if limit is not None and open_now >= limit:
            raise LimitReached(f"connection refused for user '{user}': "
                             f"user connection limit ({limit}) is reached")

    def check_user_channels(self, user: str, open_now: int) -> None:
        limit = self._limit("user", user, "max-channels")
        if limit is not None and open_now >= limit:
            raise LimitReached(f"number of channels opened for user '{user}' has reached "
                             f"the maximum allowed user limit of ({limit})")

    def check_queues(self, vhost: str, queue: str, declared_now: int) -> None:
        limit = self._limit("vhost", vhost, "max-queues")
        if limit is not None and declared_now >= limit:
            raise PreconditionFailed(f"cannot declare queue '{queue}': "
                                     f"queue limit in vhost '{vhost}' ({limit}) is reached")
