"""Expectations: what a controller has asked for and not yet seen in its cache.

A reconcile reads the informer cache, and the cache lags the API by a watch
event. Right after a ReplicaSet creates three pods, a second reconcile (a
status update, a resync) would still see three missing pods and create them
again. client-go's answer, kept here: before creating N pods the controller
*expects* N creations for the owner; each pod the informer then sees added
lowers the count; while anything is still expected, the owner's replicas are
not managed (its status still is). Deletions are tracked by pod key, so a pod
seen terminating and later seen deleted counts once.

Expectations expire after five minutes, so a lost watch event (a create whose
answer was lost but that did happen, say) stalls an owner for at most that
long; a resync then sees the truth. Everything here runs on the trio thread
and needs no lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from nodeos.client import Informer, object_key
from nodeos.controllers.pods import is_terminating

EXPECTATIONS_TIMEOUT = 300.0


@dataclass
class _Pending:
    adds: int
    deletes: set[str] = field(default_factory=set)
    since: float = 0.0


class Expectations:
    """Pending creations (a count) and deletions (pod keys) per owner key."""

    def observe(self, pods: Informer, owner_key: Callable[[dict[str, Any]], str | None]) -> None:
        """Lower the expectations as the ``pods`` informer sees pods of an
        owner (``owner_key(pod)``, None for no owner) appear and go."""

        def added(pod: dict[str, Any]) -> None:
            key = owner_key(pod)
            if key is not None:
                self.creation_observed(key)
                if is_terminating(pod):
                    self.deletion_observed(key, object_key(pod))

        def updated(old: dict[str, Any], new: dict[str, Any]) -> None:
            key = owner_key(new)
            if key is not None and is_terminating(new) and not is_terminating(old):
                self.deletion_observed(key, object_key(new))

        def deleted(pod: dict[str, Any]) -> None:
            key = owner_key(pod)
            if key is not None:
                self.deletion_observed(key, object_key(pod))

        pods.add_handlers(on_add=added, on_update=updated, on_delete=deleted)

    def __init__(self, clock: Callable[[], float] = time.monotonic, timeout: float = EXPECTATIONS_TIMEOUT) -> None:
        self._clock = clock
        self._timeout = timeout
        self._pending: dict[str, _Pending] = {}

    def satisfied(self, owner: str) -> bool:
        """True when the owner may act again: nothing pending, or the wait expired."""
        pending = self._pending.get(owner)
        if pending is None:
            return True
        if pending.adds <= 0 and not pending.deletes:
            return True
        return self._clock() - pending.since > self._timeout

    def expect_creations(self, owner: str, count: int) -> None:
        self._pending[owner] = _Pending(adds=count, since=self._clock())

    def expect_deletions(self, owner: str, keys: Iterable[str]) -> None:
        self._pending[owner] = _Pending(adds=0, deletes=set(keys), since=self._clock())

    def creation_observed(self, owner: str) -> None:
        pending = self._pending.get(owner)
        if pending is not None and pending.adds > 0:
            pending.adds -= 1

    def deletion_observed(self, owner: str, key: str) -> None:
        pending = self._pending.get(owner)
        if pending is not None:
            pending.deletes.discard(key)

    def forget(self, owner: str) -> None:
        """The owner is gone: drop whatever it was waiting for."""
        self._pending.pop(owner, None)

    def pending(self, owner: str) -> tuple[int, int]:
        """(creations, deletions) still expected, for logs and tests."""
        pending = self._pending.get(owner)
        return (max(pending.adds, 0), len(pending.deletes)) if pending else (0, 0)
