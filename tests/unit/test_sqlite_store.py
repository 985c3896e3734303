"""The embedded store: revisions, compare-and-swap, watch order, restart."""

from __future__ import annotations

from contextlib import aclosing

import pytest
import trio

from nodeos.api.store.sqlite import SQLiteStore
from nodeos.errors import Compacted, KeyExists, KeyNotFound, RevisionMismatch


@pytest.fixture
async def store(tmp_path):
    s = SQLiteStore(tmp_path / "store.db", synchronous="OFF")
    await s.start()
    yield s
    await s.close()


async def test_writes_bump_one_global_revision(store):
    start = await store.current_revision()
    r1 = await store.create("/core/pods/a/x", b"1")
    r2 = await store.create("/core/pods/a/y", b"2")
    r3 = await store.update("/core/pods/a/x", b"3", r1)
    r4 = await store.delete("/core/pods/a/y")
    assert [r1, r2, r3, r4] == [start + 1, start + 2, start + 3, start + 4]
    kv = await store.get("/core/pods/a/x")
    assert (kv.value, kv.revision) == (b"3", r3)
    assert await store.get("/core/pods/a/y") is None


async def test_compare_and_swap(store):
    r1 = await store.create("/k", b"v")
    with pytest.raises(KeyExists):
        await store.create("/k", b"v")
    with pytest.raises(RevisionMismatch):
        await store.update("/k", b"w", r1 - 1)
    with pytest.raises(RevisionMismatch):
        await store.delete("/k", r1 + 5)
    with pytest.raises(KeyNotFound):
        await store.update("/missing", b"w", 1)


async def test_list_by_prefix_is_ordered_and_exact(store):
    for key in ("/core/pods/b/2", "/core/pods/a/1", "/core/podsx/a/1", "/core/pods/b/1"):
        await store.create(key, b"{}")
    items, revision = await store.list("/core/pods/")
    assert [kv.key for kv in items] == ["/core/pods/a/1", "/core/pods/b/1", "/core/pods/b/2"]
    assert revision == await store.current_revision()


async def test_concurrent_writes_are_group_committed_in_order(store):
    revisions: list[int] = []

    async def writer(i: int) -> None:
        revisions.append(await store.create(f"/k/{i}", b"x"))

    async with trio.open_nursery() as nursery:
        for i in range(200):
            nursery.start_soon(writer, i)
    assert sorted(revisions) == list(range(min(revisions), min(revisions) + 200))


async def test_watch_replays_history_then_follows(store):
    r1 = await store.create("/a", b"1")
    await store.create("/b", b"2")
    seen = []

    async def follow() -> None:
        async with aclosing(store.watch(r1)) as events:
            async for event in events:
                seen.append((event.type, event.key, event.revision))
                if len(seen) == 3:
                    return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow)
        await trio.sleep(0.05)
        r3 = await store.update("/a", b"3", r1)
        await store.delete("/b")
    assert seen == [("ADDED", "/b", r1 + 1), ("MODIFIED", "/a", r3), ("DELETED", "/b", r3 + 1)]


async def test_restart_keeps_data_and_forgets_history(tmp_path):
    path = tmp_path / "s.db"
    first = SQLiteStore(path)
    await first.start()
    r1 = await first.create("/a", b"1")
    r2 = await first.create("/b", b"2")
    await first.close()
    second = SQLiteStore(path)
    await second.start()
    try:
        assert await second.current_revision() == r2
        assert (await second.get("/a")).revision == r1
        with pytest.raises(Compacted):
            async with aclosing(second.watch(r1)) as events:
                async for _ in events:
                    pass
        assert await second.create("/c", b"3") == r2 + 1
    finally:
        await second.close()


async def test_a_watcher_that_falls_behind_is_cut_off_and_can_resume(tmp_path, monkeypatch):
    from nodeos.api.store import sqlite

    monkeypatch.setattr(sqlite, "WATCH_BUFFER", 3)
    store = SQLiteStore(tmp_path / "s.db", synchronous="OFF")
    await store.start()
    try:
        start = await store.current_revision()
        events = store.watch(start)
        first = await store.create("/a", b"1")
        assert (await events.__anext__()).revision == first
        for i in range(10):  # nobody reads: the buffer of 3 overflows
            await store.create(f"/b{i}", b"x")
        received = []
        with pytest.raises(sqlite.WatchCutOff) as cut:
            async for event in events:
                received.append(event.revision)
        await events.aclose()
        resumed = [e.revision async for e in _take(store.watch(cut.value.last), 10 - len(received))]
        assert received + resumed == list(range(first + 1, first + 11))
    finally:
        await store.close()


async def _take(events, count):
    async with aclosing(events):
        async for event in events:
            yield event
            count -= 1
            if count == 0:
                return
