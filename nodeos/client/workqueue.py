"""A de-duplicating work queue with Kubernetes' workqueue semantics.

Controllers put *keys* here, never events: however many times a key is added
before a worker takes it, it is processed once, and with the latest state
(the worker re-reads the cache). The rules, as in client-go:

- a key is queued at most once (``dirty`` set);
- a key being processed is never handed to a second worker; if it is added
  meanwhile, it is queued again when the first worker calls ``done``;
- ``add_after`` delays an add; a key already waiting keeps the earlier time;
- ``add_rate_limited`` delays by a per-key exponential backoff (5 ms doubling
  up to 1000 s by default) until ``forget`` resets it after a success;
- after ``shut_down`` adds are ignored, workers drain what is queued, and
  then ``get`` raises ``trio.EndOfChannel`` (``async for`` simply ends).

Delayed keys need no timer task: waiting getters sleep until the earliest
delayed key is due and move due keys to the queue themselves.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

import trio

K = TypeVar("K", bound=Hashable)


class ExponentialBackoff(Generic[K]):
    """Per-key delay ``base * 2**failures``, capped at ``cap`` seconds."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base, self.cap = base, cap
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        # Bound the exponent so huge failure counts cannot overflow a float.
        return min(self.base * 2 ** min(failures, 64), self.cap)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)


class WorkQueue(Generic[K]):
    """Keys to reconcile, each handed to at most one worker at a time."""

    def __init__(self, backoff: ExponentialBackoff[K] | None = None) -> None:
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiting: dict[K, float] = {}  # key -> time it is due
        self._heap: list[tuple[float, int, K]] = []  # may hold stale entries
        self._seq = itertools.count()
        self._lot = trio.lowlevel.ParkingLot()
        self._shutting_down = False
        self.backoff: ExponentialBackoff[K] = backoff or ExponentialBackoff()

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._lot.unpark()

    def add_after(self, key: K, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        due = trio.current_time() + delay
        if key in self._waiting and self._waiting[key] <= due:
            return
        self._waiting[key] = due
        heapq.heappush(self._heap, (due, next(self._seq), key))
        # Parked getters sleep until the earliest due time: let them recompute it.
        self._lot.unpark_all()

    def add_rate_limited(self, key: K) -> None:
        self.add_after(key, self.backoff.when(key))

    def forget(self, key: K) -> None:
        """The key succeeded: its next failure starts the backoff over."""
        self.backoff.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.backoff.failures(key)

    async def get(self) -> K:
        """The next key to process; call ``done(key)`` when finished with it."""
        while True:
            self._move_due()
            if self._queue:
                key = self._queue.popleft()
                self._processing.add(key)
                self._dirty.discard(key)
                return key
            if self._shutting_down:
                raise trio.EndOfChannel
            with trio.move_on_at(self._heap[0][0] if self._heap else float("inf")):
                await self._lot.park()

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._lot.unpark()

    def shut_down(self) -> None:
        self._shutting_down = True
        self._waiting.clear()
        self._heap.clear()
        self._lot.unpark_all()

    def __aiter__(self) -> WorkQueue[K]:
        return self

    async def __anext__(self) -> K:
        try:
            return await self.get()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def _move_due(self) -> None:
        now = trio.current_time()
        while self._heap and self._heap[0][0] <= now:
            due, _, key = heapq.heappop(self._heap)
            if self._waiting.get(key) == due:
                del self._waiting[key]
                self.add(key)
