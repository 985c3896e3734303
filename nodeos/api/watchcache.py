"""The watch cache: every object in memory, and a bounded window of events.

Like kube-apiserver's cacher, the API serves gets, lists and watches from
here and sends only writes to the store. The cache follows the store's watch,
so it also orders what every client sees by the store's revision.

Objects in the cache are never modified: the registry copies before it
changes anything. Each object's and each event's JSON is encoded at most once
and shared by every list and watcher that sends it.

Compaction: the window is the cache's own, but a compaction of the store is
recorded first in ``COMPACTION_KEY`` (as Kubernetes' compactor records its
``compact_rev_key``), and every cache following the store drops its events up
to that revision. So after a compaction, a watch from a revision it removed
answers 410 on every master alike, whichever master the client reaches.
"""

from __future__ import annotations

import bisect
import collections
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import trio

from nodeos.api.store import Store, StoreEvent
from nodeos.errors import ApiError, Compacted, StoreError

log = logging.getLogger(__name__)

WINDOW = 100_000  # events kept for watchers that resume
COMPACTION_KEY = "/nodeos/compaction"  # {"revision": R}: the store's history up to R is gone
COMPACT_SECONDS = 300.0  # Kubernetes' --etcd-compaction-interval
WATCHER_BUFFER = 20_000  # events a slow watcher may fall behind before it is cut off


def encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(slots=True, eq=False)
class Cached:
    """An object as stored, decoded once, with ``metadata.resourceVersion`` set."""

    key: str
    revision: int
    obj: dict[str, Any]
    _raw: bytes | None = None

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = encode(self.obj)
        return self._raw


@dataclass(slots=True, eq=False)
class CacheEvent:
    type: str  # ADDED, MODIFIED, DELETED
    revision: int
    current: Cached  # for DELETED: the object as it was last, with the deletion revision
    previous: Cached | None
    _lines: dict[str, bytes] = field(default_factory=dict)

    def line(self, type_: str) -> bytes:
        """The watch line ``{"type":..,"object":..}``, encoded once per type."""
        line = self._lines.get(type_)
        if line is None:
            line = b'{"type":"' + type_.encode() + b'","object":' + self.current.raw + b"}\n"
            self._lines[type_] = line
        return line


def decode(key: str, value: bytes, revision: int) -> Cached:
    obj = json.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return Cached(key, revision, obj)


class Watcher:
    """One client watch: a prefix, a filter, and a channel of events."""

    def __init__(self, prefix: str, match: Callable[[dict[str, Any]], bool]) -> None:
        self.prefix = prefix
        self.match = match
        self.send, self.receive = trio.open_memory_channel[tuple[str, CacheEvent]](WATCHER_BUFFER)
        self.overflowed = False

    def offer(self, event: CacheEvent) -> None:
        kind = self._transition(event)
        if kind is None:
            return
        try:
            self.send.send_nowait((kind, event))
        except trio.WouldBlock:
            self.overflowed = True
            self.send.close()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    def _transition(self, event: CacheEvent) -> str | None:
        """Kubernetes' filtered-watch rule: an object that starts matching is
        ADDED, one that stops matching is DELETED."""
        now = self.match(event.current.obj)
        if event.type != "MODIFIED":
            return event.type if now else None
        before = event.previous is not None and self.match(event.previous.obj)
        if now and before:
            return "MODIFIED"
        if now:
            return "ADDED"
        if before:
            return "DELETED"
        return None


class WatchCache:
    def __init__(self, store: Store, *, window: int = WINDOW) -> None:
        self._store = store
        self._objects: dict[str, dict[str, Cached]] = collections.defaultdict(dict)
        self._window = window
        self._events: list[CacheEvent] = []  # trimmed in halves: O(1) amortised, indexable
        self._watchers: dict[str, set[Watcher]] = collections.defaultdict(set)
        self._changed = trio.Event()
        self.revision = 0
        self.oldest = 0  # the oldest revision a watch may resume from

    # -- following the store -----------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        items, revision = await self._store.list("/")
        for kv in items:
            cached = decode(kv.key, kv.value, kv.revision)
            self._objects[_bucket(kv.key)][kv.key] = cached
        self.revision = self.oldest = revision
        log.info("watch cache loaded %d objects at revision %d", len(items), revision)
        task_status.started()
        while True:
            try:
                async for event in self._store.watch(self.revision):
                    self._apply(event)
                return
            except StoreError as exc:
                if isinstance(exc, Compacted):
                    raise  # history is gone: the component restarts and reloads
                log.warning("watch cache: %s; resuming from %d", exc, self.revision)

    def _apply(self, event: StoreEvent) -> None:
        bucket = self._objects[_bucket(event.key)]
        previous = bucket.get(event.key)
        current = decode(event.key, event.value, event.revision)
        if event.type == "DELETED":
            bucket.pop(event.key, None)
        else:
            bucket[event.key] = current
        cache_event = CacheEvent(event.type, event.revision, current, previous)
        self._events.append(cache_event)
        if len(self._events) > 2 * self._window:
            del self._events[: self._window]
            self.oldest = self._events[0].revision - 1
        self.revision = event.revision
        if event.key == COMPACTION_KEY and event.type != "DELETED":
            self._forget_through(int(current.obj.get("revision") or 0))
        for prefix in _prefixes(event.key):
            for watcher in list(self._watchers.get(prefix, ())):
                watcher.offer(cache_event)
        self._changed.set()
        self._changed = trio.Event()

    def _forget_through(self, revision: int) -> None:
        """The store compacted through ``revision``: resuming from there is over."""
        if revision <= self.oldest:
            return
        del self._events[:bisect.bisect_right(self._events, revision, key=lambda e: e.revision)]
        self.oldest = revision

    async def wait_for(self, revision: int, timeout: float = 10.0) -> None:
        """Block until the cache has seen ``revision``: read-your-writes."""
        if self.revision >= revision:
            return
        with trio.move_on_after(timeout) as scope:
            while self.revision < revision:
                await self._changed.wait()
        if scope.cancelled_caught:
            raise ApiError.unavailable(f"the watch cache did not reach revision {revision} in time")

    # -- reads -----------------------------------------------------------------------

    def get(self, key: str) -> Cached | None:
        return self._objects.get(_bucket(key), {}).get(key)

    def list(self, prefix: str) -> list[Cached]:
        """Objects whose key starts with ``prefix`` (a resource or resource+namespace
        prefix ending in '/'), in key order."""
        bucket = self._objects.get(_bucket(prefix), {})
        if prefix.count("/") <= 3:  # "/group/plural/": the whole bucket
            items = list(bucket.values())
        else:
            items = [c for k, c in bucket.items() if k.startswith(prefix)]
        items.sort(key=lambda c: c.key)
        return items

    # -- watches ---------------------------------------------------------------------

    def watch(self, prefix: str, from_revision: int | None,
              match: Callable[[dict[str, Any]], bool]) -> tuple[Watcher, list[tuple[str, CacheEvent]]]:
        """Register a watcher; return it with the backlog it must send first.

        ``from_revision`` None means "start now with the current state as
        ADDED events" (Kubernetes' unset or "0" resourceVersion).
        """
        watcher = Watcher(prefix, match)
        backlog: list[tuple[str, CacheEvent]] = []
        if from_revision is None:
            for cached in self.list(prefix):
                if match(cached.obj):
                    backlog.append(("ADDED", CacheEvent("ADDED", cached.revision, cached, None)))
        else:
            if from_revision < self.oldest:
                raise ApiError.gone(f"too old resource version: {from_revision} ({self.oldest})")
            for event in self._events_after(from_revision):
                if event.current.key.startswith(prefix):
                    kind = watcher._transition(event)
                    if kind:
                        backlog.append((kind, event))
        self._watchers[prefix].add(watcher)
        return watcher, backlog

    def _events_after(self, revision: int) -> list[CacheEvent]:
        if not self._events or self._events[-1].revision <= revision:
            return []
        start = bisect.bisect_right(self._events, revision, key=lambda e: e.revision)
        return self._events[start:]

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers[watcher.prefix].discard(watcher)
        watcher.send.close()


def _bucket(key: str) -> str:
    """``/group/plural/`` of a key: objects are kept per resource."""
    parts = key.split("/", 3)
    return f"/{parts[1]}/{parts[2]}/" if len(parts) >= 3 else key


def _prefixes(key: str) -> tuple[str, ...]:
    """The watch prefixes a key falls under: resource, and resource+namespace."""
    parts = key.split("/")
    # ["", group, plural, ns, name] for namespaced, ["", group, plural, name] otherwise
    resource = f"/{parts[1]}/{parts[2]}/"
    if len(parts) == 5:
        return (resource, f"{resource}{parts[3]}/", key)
    return (resource, key)


async def compact(store: Store, revision: int) -> None:
    """Compact the store through ``revision``, recording it first so that every
    watch cache drops the same history (see the module's docstring)."""
    value = encode({"revision": revision})
    kv = await store.get(COMPACTION_KEY)
    if kv is None:
        await store.create(COMPACTION_KEY, value)
    elif int(json.loads(kv.value).get("revision") or 0) < revision:
        await store.update(COMPACTION_KEY, value, kv.revision)
    await store.compact(revision)


async def compact_forever(store: Store, interval: float = COMPACT_SECONDS) -> None:
    """Every ``interval``, compact through the revision seen one interval ago —
    unless another master compacted meanwhile (the record moved), so that of
    several masters about one compacts per interval, as in Kubernetes."""
    target, seen = 0, -1
    while True:
        await trio.sleep(interval)
        try:
            record = await store.get(COMPACTION_KEY)
            moved = record.revision if record is not None else 0
            if target and moved == seen:
                await compact(store, target)
                record = await store.get(COMPACTION_KEY)
            seen = record.revision if record is not None else 0
            target = await store.current_revision()
        except StoreError as exc:  # a lost race (KeyExists, RevisionMismatch) included: next interval
            log.warning("compaction: %s", exc)
