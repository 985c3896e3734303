"""The dashboard's copy of the cluster, shared by the trio feed and the Textual UI.

Two threads meet here: the feed's trio thread writes every object an informer
sees, the UI's asyncio thread reads. One lock guards everything, and each
critical section is a dict operation, so neither side waits long.

The UI does not re-read the world on every change. Writers record which keys
changed; ``take_changes()`` hands them over and starts a fresh set, so the row
caches rebuild only those rows. ``version`` grows with every change, letting a
screen that shows no per-object data (the header) skip work when it is equal.

Some rows show other kinds' objects: a Node's PODS/CPU/MEM come from the
pods bound to it (kept in a ``NodeUsage`` index), a Service's ENDPOINTS from
its Endpoints. A change to those marks the dependent row changed too, so a
row cache that rebuilds only changed keys stays right.

Objects are the informers' own dicts: shared, never to be modified.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from nodeos.tui.data.usage import Load, NodeUsage

ApiObject = dict[str, Any]

# The kinds the feed follows, by the name the views use.
KINDS = ("Pod", "Node", "Deployment", "ReplicaSet", "DaemonSet", "Service", "Endpoints", "Event", "Namespace")


def key_of(obj: Mapping[str, Any]) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects (as the informers key them)."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name', '')}" if namespace else str(meta.get("name", ""))


class Store:
    """Objects by kind and key, the keys changed since the last ``take_changes()``, and connection state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, dict[str, ApiObject]] = {}
        self._changes: dict[str, set[str]] = {}
        self._version = 0
        self._connected = False
        self._error = ""
        self._usage = NodeUsage()

    # -- writing (the feed) --------------------------------------------------------------

    def put(self, kind: str, obj: ApiObject) -> None:
        key = key_of(obj)
        with self._lock:
            self._objects.setdefault(kind, {})[key] = obj
            self._changed(kind, key)
            if kind == "Pod":
                for node in self._usage.put(key, obj):
                    self._changed("Node", node)
            elif kind == "Endpoints":
                self._changed("Service", key)

    def remove(self, kind: str, key: str) -> None:
        with self._lock:
            if self._objects.get(kind, {}).pop(key, None) is None:
                return
            self._changed(kind, key)
            if kind == "Pod":
                for node in self._usage.remove(key):
                    self._changed("Node", node)
            elif kind == "Endpoints":
                self._changed("Service", key)

    def set_connected(self, connected: bool, error: str = "") -> None:
        """Record whether the API is reachable (``error`` says why not); bumps ``version`` on change."""
        with self._lock:
            if connected != self._connected or error != self._error:
                self._connected, self._error = connected, error
                self._version += 1

    def _changed(self, kind: str, key: str) -> None:
        self._changes.setdefault(kind, set()).add(key)
        self._version += 1

    # -- reading (the UI) ------------------------------------------------------------------

    def objects(self, kind: str) -> Mapping[str, ApiObject]:
        """A snapshot of one kind's objects by key (a copy of the index; objects are shared)."""
        with self._lock:
            return MappingProxyType(dict(self._objects.get(kind, {})))

    def get(self, kind: str, key: str) -> ApiObject | None:
        with self._lock:
            return self._objects.get(kind, {}).get(key)

    def count(self, kind: str) -> int:
        with self._lock:
            return len(self._objects.get(kind, {}))

    def node_load(self, node: str) -> Load:
        """Pods bound to ``node`` and their summed requests (finished pods excluded)."""
        with self._lock:
            return self._usage.load(node)

    def take_changes(self) -> dict[str, set[str]]:
        """The keys changed (added, updated or removed) per kind since the last call."""
        with self._lock:
            changes, self._changes = self._changes, {}
            return changes

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._connected

    @property
    def error(self) -> str:
        """Why the API is unreachable, while ``connected`` is False ("" before the first sync)."""
        with self._lock:
            return self._error
