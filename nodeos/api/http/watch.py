"""Watch streams: one ``{"type","object"}`` JSON line per event, flushed.

Events are sent in batches: whatever is queued when the stream wakes up goes
out in one body chunk, so a burst of changes costs one write per watcher, not
one per event. The line for an event is encoded once and shared by every
watcher that sends it as plain JSON.
"""

from __future__ import annotations

import contextlib
import json
import random
from typing import Any

import trio

from nodeos.api.http.request import Receive, Send
from nodeos.api.kinds import Resource
from nodeos.api.tables import table_for
from nodeos.api.watchcache import CacheEvent, WatchCache, Watcher

BOOKMARK_SECONDS = 10.0
MAX_BATCH = 1000
# After the first event of a burst, wait this long for more before writing:
# one chunk per few milliseconds instead of one per event keeps a busy
# server's cost per watcher low, at a latency cost well under the 100 ms
# Kubernetes' own watch cache targets.
COALESCE_SECONDS = 0.005


class WatchStream:
    def __init__(self, cache: WatchCache, resource: Resource, watcher: Watcher,
                 backlog: list[tuple[str, CacheEvent]], *, table: str | None,
                 bookmarks: bool, timeout: float | None) -> None:
        self.cache = cache
        self.resource = resource
        self.watcher = watcher
        self.backlog = backlog
        self.table = table  # None for plain objects, else the includeObject mode
        self.bookmarks = bookmarks
        # Kubernetes ends watches after a random 30-60 minutes so clients spread their relists.
        self.timeout = timeout if timeout is not None else random.uniform(1800, 3600)
        self._sent_columns = False
        self.last_revision = 0

    async def serve(self, send: Send, receive: Receive) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"cache-control", b"no-cache, private"),
            (b"transfer-encoding", b"chunked")]})
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_cancel_on_disconnect, receive, nursery.cancel_scope)
                with trio.move_on_after(self.timeout):
                    await self._pump(send)
                nursery.cancel_scope.cancel()
        finally:
            self.cache.unwatch(self.watcher)
        # The client may be gone: then there is nothing left to tell it.
        with trio.CancelScope(shield=True), trio.move_on_after(1), contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, send: Send) -> None:
        if self.backlog:
            await self._send_events(send, self.backlog)
            self.backlog = []
        receive = self.watcher.receive
        while True:
            with trio.move_on_after(BOOKMARK_SECONDS) as idle:
                try:
                    first = await receive.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return  # overflowed: the client resumes from its last revision
            if idle.cancelled_caught:
                if self.bookmarks:
                    await send({"type": "http.response.body", "body": self._bookmark(), "more_body": True})
                continue
            batch = [first]
            await trio.sleep(COALESCE_SECONDS)
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(receive.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
            await self._send_events(send, batch)

    async def _send_events(self, send: Send, events: list[tuple[str, CacheEvent]]) -> None:
        lines = [self._line(kind, event) for kind, event in events]
        self.last_revision = max(self.last_revision, events[-1][1].revision)
        await send({"type": "http.response.body", "body": b"".join(lines), "more_body": True})

    def _line(self, kind: str, event: CacheEvent) -> bytes:
        if self.table is None:
            return event.line(kind)
        table = table_for(self.resource, [event.current.obj], include_object=self.table)
        if self._sent_columns:
            table["columnDefinitions"] = None
        self._sent_columns = True
        return json.dumps({"type": kind, "object": table}, separators=(",", ":")).encode() + b"\n"

    def _bookmark(self) -> bytes:
        revision = max(self.cache.revision, self.last_revision)
        obj: dict[str, Any] = {"kind": self.resource.kind, "apiVersion": self.resource.api_version,
                               "metadata": {"resourceVersion": str(revision)}}
        return json.dumps({"type": "BOOKMARK", "object": obj}, separators=(",", ":")).encode() + b"\n"


async def _cancel_on_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
