"""Runtime parameters, as RabbitMQ keeps them: (component, vhost, name) -> a JSON value.

Why one store for several things: RabbitMQ itself keeps operator policies, vhost limits and plugin
settings as runtime parameters, and its definitions carry them so. FerryMQ keeps here what a
definitions file brings that has no model of its own yet, so an export gives it back unchanged:
operator policies (component ``operator_policy``, acted on by ferrymq.core.vhost), global parameters
(``cluster_name``, ``internal_cluster_id``), and, under components named ``ferrymq.*`` that are
never exported as parameters, vhost metadata. (User tags and topic permissions have a model of their
own: ferrymq.core.permissions.)

Every change goes to the TopologyStore at once, so it survives a restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ferrymq.core.store import TopologyStore

OPERATOR_POLICY = "operator_policy"
GLOBAL = "ferrymq.global"  # global parameters (vhost "")
VHOST_METADATA = "ferrymq.vhost-metadata"  # vhost: the vhost, name "", value: its metadata object
INTERNAL_PREFIX = "ferrymq."

Key = tuple[str, str, str]


class Parameters:
    """The broker's runtime parameters; ``owner.topology`` is read at each change (the broker's store
    may be attached after the broker is made)."""

    def __init__(self, owner: Any) -> None:
        self._owner = owner
        self._items: dict[Key, Any] = {}

    def _store(self) -> TopologyStore:
        store: TopologyStore = self._owner.topology
        return store

    def set(self, component: str, vhost: str, name: str, value: Any) -> bool:
        """Set one (True if it was new), stored."""
        key = (component, vhost, name)
        new = key not in self._items
        self._items[key] = value
        self._store().parameter_set(component, vhost, name, value)
        return new

    def clear(self, component: str, vhost: str, name: str) -> bool:
        if self._items.pop((component, vhost, name), None) is None:
            return False
        self._store().parameter_cleared(component, vhost, name)
        return True

    def get(self, component: str, vhost: str, name: str, default: Any = None) -> Any:
        return self._items.get((component, vhost, name), default)

    def items(self, component: str | None = None, vhost: str | None = None) -> Iterator[tuple[Key, Any]]:
        for key, value in list(self._items.items()):
            if (component is None or key[0] == component) and (vhost is None or key[1] == vhost):
                yield key, value

    def forget_vhost(self, vhost: str) -> None:
        """A deleted vhost takes its parameters with it (the store drops its rows itself)."""
        for key in [k for k in self._items if k[1] == vhost]:
            del self._items[key]

    def restore(self, rows: list[tuple[str, str, str, Any]]) -> None:
        """Recovery: the stored rows, without writing them again."""
        for component, vhost, name, value in rows:
            self._items[(component, vhost, name)] = value
