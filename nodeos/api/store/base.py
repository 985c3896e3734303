"""The store interface: a revisioned key-value map with compare-and-swap and watch.

It is shaped after etcd's v3 model on purpose, so that the etcd backend is a
translation, not a redesign:

- every write bumps one global revision; an object's ``resourceVersion`` is the
  revision of its last write (etcd's ``mod_revision``);
- values are opaque bytes (JSON without ``metadata.resourceVersion``: the
  revision is only known once written, so it is added on read);
- update and delete are compare-and-swap on that revision;
- ``watch(from_revision)`` yields every change after a revision, in order,
  or raises ``Compacted`` if that history is gone.

Selectors are not the store's business: the API filters what it lists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    revision: int  # the revision of the last write to this key


@dataclass(frozen=True, slots=True)
class StoreEvent:
    type: EventType
    key: str
    value: bytes  # the new value; for DELETED, the last value before deletion
    revision: int  # the revision of this change
    prev_value: bytes | None = None  # the value before a MODIFIED or DELETED, when known


class Store(Protocol):
    async def start(self) -> None:
        """Open connections and files; called once before any other method."""

    async def close(self) -> None:
        """Release everything; safe to call twice."""

    async def current_revision(self) -> int: ...

    async def get(self, key: str) -> KeyValue | None: ...

    async def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Every key under ``prefix`` and the revision the listing reflects."""

    async def create(self, key: str, value: bytes) -> int:
        """Store a new key; raises ``KeyExists``. Returns the new revision."""

    async def update(self, key: str, value: bytes, expected_revision: int) -> int:
        """Replace a key if its revision is still ``expected_revision``.
        Raises ``KeyNotFound`` or ``RevisionMismatch``."""

    async def delete(self, key: str, expected_revision: int | None = None) -> int:
        """Remove a key, optionally only at ``expected_revision``."""

    def watch(self, from_revision: int) -> AsyncIterator[StoreEvent]:
        """Every change with revision > ``from_revision``, in order, forever.
        Raises ``Compacted`` when that history is gone."""

    async def compact(self, revision: int) -> None:
        """Forget history at and before ``revision``."""
