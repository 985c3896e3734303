"""The scheduling queue: which pod to try next, and when to try a failed one again.

Three places a pending pod's key can be, as in Kubernetes:

- **active**: ready to be tried, first come first served;
- **backoff**: failed recently; it becomes active when its backoff ends
  (1 s after the first failure, doubling up to 10 s);
- **unschedulable**: it fit nowhere, and trying again is pointless until the
  cluster changes. ``move_all`` (a node added or changed, a pod removed) sends
  every such pod to backoff, or straight to active if its backoff is over.
  Pods left there for ``max_unschedulable`` seconds are retried anyway.

A key popped by the scheduler is *in flight* until ``done`` or ``failed``.
If the cluster changed while it was in flight, a pod that fit nowhere goes
to backoff instead of unschedulable: the change it was waiting for may
already have happened. Updates to an in-flight pod are remembered and the
pod is tried again afterwards.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque

import trio


class SchedulingQueue:
    def __init__(self, *, initial_backoff: float = 1.0, max_backoff: float = 10.0,
                 max_unschedulable: float = 300.0) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self._active: deque[str] = deque()
        self._active_set: set[str] = set()
        self._backoff: dict[str, float] = {}  # key -> when it may be tried again
        self._heap: list[tuple[float, int, str]] = []  # may hold stale entries
        self._unschedulable: dict[str, float] = {}  # key -> when it got there
        self._attempts: dict[str, int] = {}
        self._failed_at: dict[str, float] = {}
        self._in_flight: dict[str, int] = {}  # key -> move cycle when popped
        self._updated_in_flight: set[str] = set()
        self._deleted_in_flight: set[str] = set()
        self._move_cycle = 0
        self._seq = itertools.count()
        self._lot = trio.lowlevel.ParkingLot()

    def __contains__(self, key: str) -> bool:
        return (key in self._active_set or key in self._backoff or key in self._unschedulable
                or key in self._in_flight)

    def counts(self) -> dict[str, int]:
        return {"active": len(self._active_set), "backoff": len(self._backoff),
                "unschedulable": len(self._unschedulable), "in_flight": len(self._in_flight)}

    # -- adding and removing -------------------------------------------------------

    def add(self, key: str) -> None:
        """A pending pod appeared or changed: try it (again) as soon as its backoff allows."""
        if key in self._in_flight:
            self._deleted_in_flight.discard(key)  # deleted and created again meanwhile
            self._updated_in_flight.add(key)
        elif key in self._unschedulable:
            del self._unschedulable[key]
            self._requeue(key)
        elif key not in self._active_set and key not in self._backoff:
            self._activate(key)

    def delete(self, key: str) -> None:
        """The pod is gone, or no longer ours to schedule."""
        self._active_set.discard(key)  # its entry in the deque is skipped when reached
        self._backoff.pop(key, None)
        self._unschedulable.pop(key, None)
        self._updated_in_flight.discard(key)
        if key in self._in_flight:
            self._deleted_in_flight.add(key)
        self._forget(key)

    def move_all(self) -> None:
        """The cluster changed in a way that may let unschedulable pods fit."""
        self._move_cycle += 1
        for key in [*self._unschedulable]:
            del self._unschedulable[key]
            self._requeue(key)

    def flush_unschedulable(self) -> None:
        """Retry pods that have waited ``max_unschedulable`` for a change that never came."""
        horizon = trio.current_time() - self.max_unschedulable
        for key, since in [*self._unschedulable.items()]:
            if since <= horizon:
                del self._unschedulable[key]
                self._requeue(key)

    # -- the scheduler's side ------------------------------------------------------

    async def pop(self) -> str:
        """The next key to try; the caller must end with ``done`` or ``failed``."""
        while True:
            self._move_due()
            while self._active:
                key = self._active.popleft()
                if key in self._active_set:
                    self._active_set.discard(key)
                    self._in_flight[key] = self._move_cycle
                    return key
            with trio.move_on_at(self._heap[0][0] if self._heap else float("inf")):
                await self._lot.park()

    def done(self, key: str) -> None:
        """Scheduled (or dropped): forget its failures; look again if it changed meanwhile."""
        self._in_flight.pop(key, None)
        self._deleted_in_flight.discard(key)
        self._forget(key)
        if key in self._updated_in_flight:
            self._updated_in_flight.discard(key)
            self._activate(key)

    def failed(self, key: str, *, unschedulable: bool) -> None:
        """The attempt failed: ``unschedulable`` if it fit nowhere, else a transient error."""
        popped_cycle = self._in_flight.pop(key, self._move_cycle)
        if key in self._deleted_in_flight:
            self._deleted_in_flight.discard(key)
            return
        self._attempts[key] = self._attempts.get(key, 0) + 1
        self._failed_at[key] = trio.current_time()
        changed = key in self._updated_in_flight or popped_cycle != self._move_cycle
        self._updated_in_flight.discard(key)
        if unschedulable and not changed:
            self._unschedulable[key] = trio.current_time()
        else:
            self._requeue(key)

    def backoff_for(self, key: str) -> float:
        attempts = self._attempts.get(key, 0)
        if not attempts:
            return 0.0
        return min(self.initial_backoff * 2 ** min(attempts - 1, 32), self.max_backoff)

    # -- internals -------------------------------------------------------------------

    def _requeue(self, key: str) -> None:
        due = self._failed_at.get(key, 0.0) + self.backoff_for(key)
        if due <= trio.current_time():
            self._activate(key)
        else:
            self._backoff[key] = due
            heapq.heappush(self._heap, (due, next(self._seq), key))
            self._lot.unpark_all()  # a parked pop may need to wake earlier

    def _activate(self, key: str) -> None:
        self._backoff.pop(key, None)
        if key not in self._active_set:
            self._active_set.add(key)
            self._active.append(key)
            self._lot.unpark()

    def _forget(self, key: str) -> None:
        self._attempts.pop(key, None)
        self._failed_at.pop(key, None)

    def _move_due(self) -> None:
        now = trio.current_time()
        while self._heap and self._heap[0][0] <= now:
            due, _, key = heapq.heappop(self._heap)
            if self._backoff.get(key) == due:
                del self._backoff[key]
                self._activate(key)
