"""A local, always-converging copy of one kind of object: list, then watch.

The informer lists once, then watches from the list's resourceVersion and
applies each event to its cache before telling the handlers. It survives
everything a long watch meets:

- the server ends the stream (its timeout): watch again from the last
  resourceVersion seen, BOOKMARKs included, so nothing is missed or repeated;
- the connection breaks or the server is down: retry the same watch with
  exponential backoff (up to ``backoff_cap`` seconds). A client of several
  servers has switched to the next by then, so the watch resumes there from
  the same resourceVersion, at once if the broken one had been working (all
  masters share one store, so its resourceVersions mean the same on each);
- the resourceVersion is too old (410 Expired): list again and diff the fresh
  list against the cache, emitting adds, updates and deletes for whatever
  changed while we were away (flannel's ``Reset(snapshot)``);
- a missed event somewhere else: periodic resync re-delivers every cached
  object to ``on_update(obj, obj)``, so level-triggered consumers converge.

``on_health(ok, error)`` hears of trouble and recovery: ``(False, message)``
when a list or watch fails (server down, connection broken, an error answer
other than 410), ``(True, "")`` when the next list completes or the next
event (a BOOKMARK included) arrives. A dashboard uses it to show
"disconnected"; the informer retries by itself either way.

Handlers are plain functions, called in order on the informer's task; they
should only enqueue keys (see ``WorkQueue``). Objects in the cache are shared:
never modify them, copy first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, NoReturn

import trio

from nodeos.api.kinds import Resource
from nodeos.client.api import ApiClient, ApiObject, ApiUnavailable
from nodeos.errors import ApiError

log = logging.getLogger(__name__)


def object_key(obj: ApiObject) -> str:
    """The cache key: ``namespace/name``, or ``name`` for cluster-scoped objects."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


def split_key(key: str) -> tuple[str | None, str]:
    """``(namespace, name)`` of a cache key; namespace is None when cluster-scoped."""
    namespace, sep, name = key.rpartition("/")
    return (namespace if sep else None), name


@dataclass(frozen=True)
class _Handlers:
    on_add: Callable[[ApiObject], Any] | None
    on_update: Callable[[ApiObject, ApiObject], Any] | None
    on_delete: Callable[[ApiObject], Any] | None


class Informer:
    """Keeps a cache of ``resource`` objects in sync and tells handlers what changed."""

    def __init__(self, api: ApiClient, resource: Resource, namespace: str | None = None, *,
                 label_selector: str | None = None, field_selector: str | None = None,
                 resync_period: float | None = 300.0, watch_timeout: int = 300,
                 backoff_cap: float = 30.0, on_health: Callable[[bool, str], Any] | None = None) -> None:
        self.api = api
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.watch_timeout = watch_timeout
        self.backoff_cap = backoff_cap
        self.resource_version: str | None = None  # the last one seen, from a list or any event
        self._cache: dict[str, ApiObject] = {}
        self._handlers: list[_Handlers] = []
        self._synced = trio.Event()
        self._need_list = True
        self._events = 0  # events received, to tell a working watch from a failing one
        self.on_health = on_health
        self.healthy = True  # False from a failed list/watch until the next list or event

    # -- reading the cache ------------------------------------------------------

    def get(self, key: str) -> ApiObject | None:
        return self._cache.get(key)

    def list(self) -> list[ApiObject]:
        return [*self._cache.values()]

    def keys(self) -> list[str]:
        return [*self._cache]

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def add_handlers(self, *, on_add: Callable[[ApiObject], Any] | None = None,
                     on_update: Callable[[ApiObject, ApiObject], Any] | None = None,
                     on_delete: Callable[[ApiObject], Any] | None = None) -> None:
        """Register callbacks; a late handler first gets ``on_add`` for every cached object."""
        handlers = _Handlers(on_add, on_update, on_delete)
        self._handlers.append(handlers)
        if on_add:
            for obj in self.list():
                _call(on_add, obj)

    # -- running ------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
        """List and watch forever; ``task_status.started()`` once the first list is cached."""
        failures = 0
        async with trio.open_nursery() as nursery:
            while True:
                progressed = await self._list_and_watch()
                if not self._synced.is_set() and not self._need_list:
                    self._synced.set()
                    task_status.started()
                    if self.resync_period:
                        nursery.start_soon(self._resync_loop)
                failures = 0 if progressed else failures + 1
                if failures:
                    await trio.sleep(min(self.backoff_cap, 0.5 * 2 ** min(failures, 16)))

    async def _list_and_watch(self) -> bool:
        """One round: list if needed, then follow a watch. True if it got anywhere,
        False if it should be retried after a backoff."""
        events_before, listed = self._events, False
        started = float("inf")
        try:
            if self._need_list:
                await self._relist()
                self._need_list, listed = False, True
                if not self._synced.is_set():
                    return True  # let run() report started before watching
            started = trio.current_time()
            await self._watch()
        except ApiError as exc:
            if exc.code == 410:
                log.info("%s: watch expired, listing again", self.resource.plural)
                self._need_list = True
                return not listed  # at once, unless a fresh list was already too old
            log.warning("%s: list/watch failed: %s", self.resource.plural, exc)
            self._health(False, str(exc))
        except ApiUnavailable as exc:
            log.warning("%s: API unavailable: %s", self.resource.plural, exc)
            self._health(False, str(exc))
        # A stream that breaks or ends at once, silently, is a failure.
        lasted = trio.current_time() - started >= 1.0
        return listed or lasted or self._events > events_before

    async def _relist(self) -> None:
        listed = await self.api.list_all(self.resource, self.namespace, label_selector=self.label_selector,
                                         field_selector=self.field_selector)
        items = [self._typed(obj) for obj in listed.get("items") or []]
        self._reset(items)
        self.resource_version = (listed.get("metadata") or {}).get("resourceVersion") or None
        self._health(True, "")

    async def _watch(self) -> None:
        """Follow one watch stream until the server ends it."""
        events = self.api.watch(self.resource, self.namespace, resource_version=self.resource_version,
                                label_selector=self.label_selector, field_selector=self.field_selector,
                                timeout_seconds=self.watch_timeout, allow_bookmarks=True)
        async with aclosing(events) as stream:
            async for kind, obj in stream:
                self._events += 1
                if not self.healthy:
                    self._health(True, "")
                self._apply(kind, obj)

    def _health(self, ok: bool, error: str) -> None:
        if ok == self.healthy and ok:
            return
        self.healthy = ok
        if self.on_health:
            try:
                self.on_health(ok, error)
            except Exception:
                log.exception("informer health handler %r failed", self.on_health)

    async def _resync_loop(self) -> NoReturn:
        assert self.resync_period
        while True:
            await trio.sleep(self.resync_period)
            for obj in self.list():
                self._emit_update(obj, obj)

    # -- applying changes -------------------------------------------------------

    def _apply(self, kind: str, obj: ApiObject) -> None:
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self.resource_version = version
        if kind == "BOOKMARK":
            return
        key = object_key(obj)
        old = self._cache.get(key)
        if kind == "DELETED":
            if self._cache.pop(key, None) is not None:
                self._emit_delete(obj)
            return
        self._cache[key] = obj
        if old is None:
            self._emit_add(obj)
        else:
            self._emit_update(old, obj)

    def _reset(self, items: list[ApiObject]) -> None:
        """Replace the cache by a fresh list, emitting events for the differences."""
        fresh = {object_key(obj): obj for obj in items}
        for key, old in [*self._cache.items()]:
            if key not in fresh:
                del self._cache[key]
                self._emit_delete(old)
        for key, obj in fresh.items():
            old = self._cache.get(key)
            self._cache[key] = obj
            if old is None:
                self._emit_add(obj)
            elif _version(old) != _version(obj):
                self._emit_update(old, obj)

    def _typed(self, obj: ApiObject) -> ApiObject:
        # List items carry no kind/apiVersion on the wire; consumers expect them.
        obj.setdefault("kind", self.resource.kind)
        obj.setdefault("apiVersion", self.resource.api_version)
        return obj

    def _emit_add(self, obj: ApiObject) -> None:
        for h in self._handlers:
            if h.on_add:
                _call(h.on_add, obj)

    def _emit_update(self, old: ApiObject, new: ApiObject) -> None:
        for h in self._handlers:
            if h.on_update:
                _call(h.on_update, old, new)

    def _emit_delete(self, obj: ApiObject) -> None:
        for h in self._handlers:
            if h.on_delete:
                _call(h.on_delete, obj)


def _version(obj: ApiObject) -> str | None:
    return (obj.get("metadata") or {}).get("resourceVersion")


def _call(fn: Callable[..., Any], *args: ApiObject) -> None:
    # A handler's bug must not stop the cache from following the server.
    try:
        fn(*args)
    except Exception:
        log.exception("informer handler %r failed", fn)
