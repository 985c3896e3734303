"""The dashboard's connection to the cluster: trio informers in a thread of their own.

Textual runs on asyncio; the client library is trio. Rather than mix event
loops, the feed runs ``trio.run`` in a background thread with one Informer per
kind the views show (all namespaces). Informers list once, then watch; they
reconnect with backoff and relist on 410 by themselves. Every add, update and
delete lands in the ``Store``, which the UI reads under its lock. There is no
list polling.

Connection state: ``store.connected`` is False until every informer has
synced, and again whenever one reports trouble through ``on_health``
(server down, connection broken); it turns True once every informer is
listing or watching again. An informer only hears that its new watch works
when an event arrives (a BOOKMARK comes after 10 quiet seconds), so the
feed's client also reports each watch the server accepts: "connected" shows
as soon as the server answers. ``store.error`` says what went wrong.

Calls from the UI: ``call(action)`` runs ``async (api) -> T`` on the trio
thread with ``trio.from_thread.run`` and blocks the calling thread until it
is done, so call it from a worker (``asyncio.to_thread``), never from the UI
loop itself. ``follow(source, buffer)`` streams lines (a followed log) into a
bounded ``LineBuffer`` that the UI drains on its own schedule, so a chatty
pod costs the UI nothing but a periodic ``take()``; the oldest lines are
dropped when the UI falls behind.

Resource handling: ``stop()`` cancels the trio run (informers, follows,
running actions), closes the HTTP client and joins the thread.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from functools import partial
from typing import Any, TypeVar

import httpx
import trio

from nodeos.api.kinds import Resource, resolve
from nodeos.client import ApiClient, ApiUnavailable, Connection, Informer
from nodeos.client.api import resource_path
from nodeos.errors import NodeosError
from nodeos.tui.data.actions import Action, ActionError, LineSource, error_message
from nodeos.tui.data.store import KINDS, ApiObject, Store, key_of

log = logging.getLogger(__name__)
T = TypeVar("T")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class LineBuffer:
    """The last ``limit`` lines of a stream, thread-safe: the feed appends, the UI takes.

    ``take()`` returns the lines added since the last take (at most ``limit``)
    and how many were dropped meanwhile. ``done`` is set when the stream ended;
    ``error`` then says why, if it failed.
    """

    def __init__(self, limit: int = 5000) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._lines: deque[str] = deque(maxlen=limit)
        self._dropped = 0
        self.done = False
        self.error = ""

    def add(self, line: str) -> None:
        with self._lock:
            if len(self._lines) == self.limit:
                self._dropped += 1
            self._lines.append(line)

    def take(self) -> tuple[list[str], int]:
        with self._lock:
            lines, dropped = [*self._lines], self._dropped
            self._lines.clear()
            self._dropped = 0
            return lines, dropped

    def finish(self, error: str = "") -> None:
        with self._lock:
            self.done, self.error = True, error


class Subscription:
    """A running ``follow``; ``cancel()`` stops it (safe from any thread but the feed's, and twice)."""

    def __init__(self, feed: Feed, scope: trio.CancelScope) -> None:
        self._feed = feed
        self._scope = scope

    def cancel(self) -> None:
        self._feed._run_sync(self._scope.cancel)


class _WatchReportingClient(ApiClient):
    """An ApiClient that tells ``on_watch(path)`` when the server accepts a watch request."""

    def __init__(self, conn: Connection, on_watch: Callable[[str], None], **kwargs: Any) -> None:
        super().__init__(conn, **kwargs)
        self._on_watch = on_watch

    @asynccontextmanager
    async def stream(self, method: str, path: str, **kwargs: Any) -> AsyncIterator[httpx.Response]:
        async with super().stream(method, path, **kwargs) as response:
            if (kwargs.get("params") or {}).get("watch"):
                self._on_watch(path)
            yield response


class Feed:
    """Informers for every kind in ``kinds`` feeding ``store``, on a trio thread; actions on demand."""

    def __init__(self, connection: Connection, store: Store, *, kinds: Iterable[str] = KINDS,
                 backoff_cap: float = 5.0, user_agent: str = "nodeos-dashboard") -> None:
        self.connection = connection
        self.store = store
        self.resources: dict[str, Resource] = {kind: _resource(kind) for kind in kinds}
        self.backoff_cap = backoff_cap
        self.user_agent = user_agent
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._api: ApiClient | None = None
        self._nursery: trio.Nursery | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._troubles: dict[str, str] = {}  # kind -> error, while its informer is unhealthy
        self._informers: dict[str, Informer] = {}

    # -- lifecycle (UI thread) -----------------------------------------------------------------

    def start(self) -> Feed:
        """Start the trio thread; return once it can take calls (data keeps arriving after)."""
        if self._thread is not None:
            raise RuntimeError("the feed is already started")
        self._thread = threading.Thread(target=self._thread_main, name="nodeos-feed", daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT):
            raise RuntimeError("the feed's trio thread did not start")
        if self._failure is not None:
            raise self._failure
        return self

    def stop(self) -> None:
        """Cancel everything on the trio thread and join it."""
        if self._thread is None:
            return
        if self._nursery is not None:
            self._run_sync(self._nursery.cancel_scope.cancel)
        self._thread.join(STOP_TIMEOUT)
        if self._thread.is_alive():
            log.warning("the feed's thread did not stop within %ss", STOP_TIMEOUT)
        self._thread = None

    def __enter__(self) -> Feed:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- calls from the UI (any thread but the feed's) -------------------------------------------

    def call(self, action: Action) -> Any:
        """Run ``action(api)`` on the trio thread and return its result; failures raise ActionError."""
        if self._token is None or self._thread is None:
            raise ActionError("the dashboard is not connected")
        try:
            return trio.from_thread.run(self._run_action, action, trio_token=self._token)
        except (trio.RunFinishedError, trio.Cancelled) as exc:
            raise ActionError("the dashboard is shutting down") from exc

    def follow(self, source: LineSource, buffer: LineBuffer) -> Subscription:
        """Stream ``source``'s lines into ``buffer`` until it ends, fails or is cancelled."""
        scope = trio.CancelScope()
        nursery = self._nursery
        if nursery is None:
            raise ActionError("the dashboard is not connected")
        self._run_sync(nursery.start_soon, self._pump, source, buffer, scope)
        return Subscription(self, scope)

    def _run_sync(self, fn: Any, *args: Any) -> None:
        if self._token is None:
            return
        with suppress(trio.RunFinishedError):
            trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    # -- the trio side ---------------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to start(), or logged if it happens later
            self._failure = exc
            if self._started.is_set():
                log.exception("the dashboard's feed stopped")
        finally:
            self._token = None
            self._nursery = None
            self._started.set()
            self.store.set_connected(False, self.store.error or "stopped")

    async def _main(self) -> None:
        api = _WatchReportingClient(self.connection, self._watch_opened, user_agent=self.user_agent)
        async with api, trio.open_nursery() as nursery:
            self._api, self._nursery = api, nursery
            self._token = trio.lowlevel.current_trio_token()
            for kind, res in self.resources.items():
                informer = Informer(api, res, None, backoff_cap=self.backoff_cap,
                                    on_health=partial(self._health, kind))
                informer.add_handlers(on_add=partial(self.store.put, kind),
                                      on_update=partial(self._updated, kind),
                                      on_delete=partial(self._deleted, kind))
                self._informers[kind] = informer
                nursery.start_soon(informer.run)
            nursery.start_soon(self._report_sync)
            self._started.set()

    def _updated(self, kind: str, old: ApiObject, new: ApiObject) -> None:
        if old is not new:  # a periodic resync re-delivers the same object: nothing to redraw
            self.store.put(kind, new)

    def _deleted(self, kind: str, obj: ApiObject) -> None:
        self.store.remove(kind, key_of(obj))

    async def _report_sync(self) -> None:
        for informer in self._informers.values():
            await informer.wait_synced()
        self._publish()

    def _health(self, kind: str, ok: bool, error: str) -> None:
        if ok:
            self._troubles.pop(kind, None)
        else:
            self._troubles[kind] = error
        self._publish()

    def _watch_opened(self, path: str) -> None:
        for kind, res in self.resources.items():
            if kind in self._troubles and path == resource_path(res):
                self._health(kind, True, "")

    def _publish(self) -> None:
        synced = all(i.has_synced for i in self._informers.values())
        error = next(iter(self._troubles.values()), "")
        self.store.set_connected(synced and not self._troubles, error)

    async def _run_action(self, action: Action) -> Any:
        assert self._api is not None
        try:
            return await action(self._api)
        except ActionError:
            raise
        except (NodeosError, ApiUnavailable) as exc:
            raise ActionError(error_message(exc)) from exc

    async def _pump(self, source: LineSource, buffer: LineBuffer, scope: trio.CancelScope) -> None:
        assert self._api is not None
        error = ""
        with scope:
            try:
                async for line in source(self._api):
                    buffer.add(line)
            except (NodeosError, ApiUnavailable) as exc:
                error = error_message(exc)
        buffer.finish(error)


def _resource(kind: str) -> Resource:
    res = resolve(kind)
    if res is None:
        raise ValueError(f"unknown kind {kind!r}")
    return res
