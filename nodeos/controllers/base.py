"""The shape every controller has: informers in, keys on a queue, reconcile out.

A controller subclass creates its informers in ``__init__`` with
``self.informer(...)``, whose handlers only put keys on ``self.queue`` (often
the key of an *owner*, found from an ownerReference or a selector), and
implements ``reconcile(key)``: read desired and observed state from the
informer caches, close the gap with API calls, write status. Reconcile is
level-triggered and idempotent: it may run any number of times for a key,
and a missed event is repaired at the next resync.

Error handling: ``reconcile`` raising ``Requeue(after)`` asks for another look
later; any ``ApiError`` or ``ApiUnavailable`` is logged and the key retried
with per-key exponential backoff; a key that reconciles cleanly is forgotten
(its backoff reset). Anything else is a bug: logged with its traceback, and
the key is retried with backoff too, so one bad object cannot stop the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import trio

from nodeos.api.kinds import Resource
from nodeos.client import ApiClient, ApiUnavailable, Informer, WorkQueue, object_key
from nodeos.controllers.events import EventRecorder
from nodeos.errors import ApiError

log = logging.getLogger(__name__)


class Requeue(Exception):  # a request, not an error
    """Raised by ``reconcile`` to look at the key again after ``after`` seconds."""

    def __init__(self, after: float) -> None:
        super().__init__(f"requeue after {after}s")
        self.after = after


class Controller:
    name = "controller"
    workers = 2
    resync_period: float | None = 300.0

    def __init__(self, api: ApiClient, recorder: EventRecorder) -> None:
        self.api = api
        self.recorder = recorder
        self.queue: WorkQueue[str] = WorkQueue()
        self._informers: list[Informer] = []

    def informer(self, resource: Resource, *, on_change: Callable[[dict[str, Any]], None] | None = None,
                 **selectors: Any) -> Informer:
        """Create an informer; ``on_change(obj)`` is called for adds, updates
        (with the new object, and the old one too when they differ in the
        keys they map to) and deletes. Default: enqueue the object's own key."""
        informer = Informer(self.api, resource, resync_period=self.resync_period, **selectors)
        handle = on_change or self.enqueue

        def on_update(old: dict[str, Any], new: dict[str, Any]) -> None:
            handle(new)
            if old is not new:
                handle(old)

        informer.add_handlers(on_add=handle, on_update=on_update, on_delete=handle)
        self._informers.append(informer)
        return informer

    def enqueue(self, obj: dict[str, Any]) -> None:
        self.queue.add(object_key(obj))

    async def reconcile(self, key: str) -> None:
        raise NotImplementedError

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for informer in self._informers:
                await nursery.start(informer.run)
            log.info("%s: caches synced", self.name)
            for _ in range(self.workers):
                nursery.start_soon(self._worker)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self.queue.shut_down()

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except trio.EndOfChannel:
                return
            try:
                await self.reconcile(key)
            except Requeue as again:
                self.queue.forget(key)
                self.queue.add_after(key, again.after)
            except (ApiError, ApiUnavailable) as exc:
                log.info("%s: %s: %s (retrying)", self.name, key, exc)
                self.queue.add_rate_limited(key)
            except Exception:
                log.exception("%s: reconciling %s failed", self.name, key)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
            finally:
                self.queue.done(key)
