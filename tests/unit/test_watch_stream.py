"""The HTTP watch stream: batching, bookmarks, timeout and disconnect."""

from __future__ import annotations

import json

import pytest
import trio

from nodeos.api.http import watch as watch_module
from nodeos.api.http.watch import WatchStream
from nodeos.api.kinds import by_plural
from nodeos.api.store.sqlite import SQLiteStore
from nodeos.api.watchcache import WatchCache

PODS = by_plural("", "v1", "pods")


def pod(name: str) -> bytes:
    return json.dumps({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name, "namespace": "a"}}).encode()


@pytest.fixture
async def env(tmp_path):
    store = SQLiteStore(tmp_path / "s.db", synchronous="OFF")
    await store.start()
    cache = WatchCache(store)
    async with trio.open_nursery() as nursery:
        await nursery.start(cache.run)
        yield store, cache
        nursery.cancel_scope.cancel()
    await store.close()


class Client:
    """The ASGI side of one response: what was sent, and a way to hang up."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.finished = False
        self.hangup = trio.Event()

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.body":
            self.chunks.append(message["body"])
            self.finished = not message.get("more_body", False)

    async def receive(self) -> dict:
        await self.hangup.wait()
        return {"type": "http.disconnect"}

    def events(self) -> list[dict]:
        return [json.loads(line) for line in b"".join(self.chunks).splitlines() if line]


async def test_events_then_bookmark_when_idle_then_timeout(env, monkeypatch):
    monkeypatch.setattr(watch_module, "BOOKMARK_SECONDS", 0.5)
    store, cache = env
    rev = await store.create("/core/pods/a/x", pod("x"))
    await cache.wait_for(rev)
    watcher, backlog = cache.watch("/core/pods/a/", None, lambda o: True)
    stream = WatchStream(cache, PODS, watcher, backlog, table=None, bookmarks=True, timeout=2.0)
    client = Client()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream.serve, client.send, client.receive)
        await trio.sleep(0.1)
        r2 = await store.create("/core/pods/a/y", pod("y"))
        await trio.sleep(1.0)
    events = client.events()
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events[:2]] == [("ADDED", "x"), ("ADDED", "y")]
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks and bookmarks[0]["object"]["metadata"]["resourceVersion"] == str(r2)
    assert client.finished  # the timeout ended the response cleanly


async def test_disconnect_ends_the_stream_and_unregisters(env):
    _, cache = env
    watcher, backlog = cache.watch("/core/pods/", None, lambda o: True)
    stream = WatchStream(cache, PODS, watcher, backlog, table=None, bookmarks=False, timeout=60)
    client = Client()
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(stream.serve, client.send, client.receive)
            await trio.sleep(0.1)
            client.hangup.set()
    assert watcher not in cache._watchers["/core/pods/"]


async def test_table_mode_sends_column_definitions_once(env):
    store, cache = env
    watcher, backlog = cache.watch("/core/pods/", None, lambda o: True)
    stream = WatchStream(cache, PODS, watcher, backlog, table="Metadata", bookmarks=False, timeout=1.0)
    client = Client()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(stream.serve, client.send, client.receive)
        await trio.sleep(0.1)
        await store.create("/core/pods/a/x", pod("x"))
        await store.create("/core/pods/a/y", pod("y"))
    tables = [e["object"] for e in client.events()]
    assert [t["kind"] for t in tables] == ["Table", "Table"]
    assert tables[0]["columnDefinitions"] and not tables[1]["columnDefinitions"]
    assert [t["rows"][0]["cells"][0] for t in tables] == ["x", "y"]
