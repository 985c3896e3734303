"""Garbage collection out of the way of keys.

The dashboard holds every object of the cluster (5,000 pods are a few
hundred thousand Python objects) and, under 100 changes a second, makes
new ones steadily. CPython then runs a full collection every few seconds,
which walks all of them with every thread stopped: 100 to 500 ms during which
a key waits. Measured in bench_dashboard_ui (gc callbacks): these pauses
were the worst key latencies.

So, in a terminal (not in headless tests):

- once the store holds the cluster, ``gc.freeze()`` moves what is alive then
  — the first list, the app's widgets — out of the collector's sight for
  good: later full collections walk only what was made since. (Frozen objects
  are still freed when their last reference goes; only a reference cycle
  among them would outlive its use, and the cluster's objects are plain JSON
  dicts and lists, without cycles.)
- automatic full collections are off; ``tick()`` runs one when no key came
  for ``IDLE_SECONDS`` and the last is ``FULL_EVERY_SECONDS`` old, or, if
  the keys never pause, every ``BACKSTOP_SECONDS`` regardless, so cyclic
  garbage is still reclaimed. Young-generation collections stay as they are
  (a few milliseconds).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

IDLE_SECONDS = 1.0
FULL_EVERY_SECONDS = 30.0
BACKSTOP_SECONDS = 300.0
NO_AUTOMATIC_FULL = 1_000_000  # CPython's third threshold: gen-1 collections before it considers a full one


class Collector:
    """When the process collects its garbage: after keys have paused, not while they come."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.last_key = self.last_full = clock()
        self.frozen = False
        self.full_collections = 0
        self._saved: tuple[int, int, int] | None = None

    def start(self) -> None:
        """Turn CPython's automatic full collections off (``stop()`` restores its thresholds)."""
        if self._saved is None:
            self._saved = gc.get_threshold()
            gc.set_threshold(self._saved[0], self._saved[1], NO_AUTOMATIC_FULL)

    def stop(self) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def key_pressed(self) -> None:
        self.last_key = self.clock()

    def freeze(self) -> None:
        """Once: take what is alive now (the cluster as first listed) out of every later collection."""
        if not self.frozen:
            gc.freeze()
            self.frozen = True

    def tick(self) -> bool:
        """Collect fully if it is time and the keys have paused; whether it did."""
        now = self.clock()
        since_full = now - self.last_full
        due = since_full >= FULL_EVERY_SECONDS and now - self.last_key >= IDLE_SECONDS
        if not (due or since_full >= BACKSTOP_SECONDS):
            return False
        gc.collect()
        self.last_full = self.clock()
        self.full_collections += 1
        return True
