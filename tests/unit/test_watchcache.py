"""The watch cache: lists, filtered watches, resumption and 410."""

from __future__ import annotations

import json

import pytest
import trio

from nodeos.api.store.sqlite import SQLiteStore
from nodeos.api.watchcache import WatchCache, compact
from nodeos.errors import ApiError


def pod(name: str, labels: dict | None = None) -> bytes:
    return json.dumps({"kind": "Pod", "metadata": {"name": name, "namespace": "a", "labels": labels or {}}}).encode()


@pytest.fixture
async def env(tmp_path):
    store = SQLiteStore(tmp_path / "s.db", synchronous="OFF")
    await store.start()
    cache = WatchCache(store, window=4)
    async with trio.open_nursery() as nursery:
        await nursery.start(cache.run)
        yield store, cache
        nursery.cancel_scope.cancel()
    await store.close()


async def test_reads_follow_writes(env):
    store, cache = env
    rev = await store.create("/core/pods/a/x", pod("x"))
    await cache.wait_for(rev)
    cached = cache.get("/core/pods/a/x")
    assert cached.obj["metadata"]["resourceVersion"] == str(rev)
    assert json.loads(cached.raw) == cached.obj
    await store.create("/core/pods/b/y", pod("y"))
    await cache.wait_for(rev + 1)
    assert [c.key for c in cache.list("/core/pods/")] == ["/core/pods/a/x", "/core/pods/b/y"]
    assert [c.key for c in cache.list("/core/pods/b/")] == ["/core/pods/b/y"]


async def test_filtered_watch_turns_label_changes_into_added_and_deleted(env):
    store, cache = env
    rev = await store.create("/core/pods/a/x", pod("x"))
    await cache.wait_for(rev)
    watcher, backlog = cache.watch("/core/pods/a/", rev,
                                   lambda o: o["metadata"]["labels"].get("app") == "web")
    assert backlog == []
    r2 = await store.update("/core/pods/a/x", pod("x", {"app": "web"}), rev)
    r3 = await store.update("/core/pods/a/x", pod("x", {"app": "web", "v": "2"}), r2)
    r4 = await store.update("/core/pods/a/x", pod("x", {"app": "db"}), r3)
    await cache.wait_for(r4)
    got = [(kind, event.revision) for kind, event in (watcher.receive.receive_nowait() for _ in range(3))]
    assert got == [("ADDED", r2), ("MODIFIED", r3), ("DELETED", r4)]


async def test_resume_inside_the_window_and_410_before_it(env):
    store, cache = env
    revs = []
    for i in range(12):
        revs.append(await store.create(f"/core/pods/a/p{i}", pod(f"p{i}")))
    await cache.wait_for(revs[-1])
    _, backlog = cache.watch("/core/pods/", revs[-2], lambda o: True)
    assert [e.revision for _, e in backlog] == [revs[-1]]
    with pytest.raises(ApiError) as err:
        cache.watch("/core/pods/", revs[0], lambda o: True)
    assert err.value.code == 410


async def test_unset_revision_starts_with_synthetic_added(env):
    store, cache = env
    r1 = await store.create("/core/pods/a/x", pod("x"))
    r2 = await store.create("/core/pods/a/y", pod("y"))
    await cache.wait_for(r2)
    _, backlog = cache.watch("/core/pods/a/", None, lambda o: True)
    assert [(k, e.revision) for k, e in backlog] == [("ADDED", r1), ("ADDED", r2)]


async def test_a_recorded_compaction_ends_resuming_from_before_it(env):
    store, cache = env
    r1 = await store.create("/core/pods/a/x", pod("x"))
    r2 = await store.create("/core/pods/a/y", pod("y"))
    await cache.wait_for(r2)
    cache.watch("/core/pods/", r1, lambda o: True)  # inside the window: fine
    await compact(store, r2)
    await cache.wait_for(await store.current_revision())
    assert cache.oldest == r2
    with pytest.raises(ApiError) as err:
        cache.watch("/core/pods/", r1, lambda o: True)
    assert err.value.code == 410
    _, backlog = cache.watch("/core/pods/", r2, lambda o: True)
    assert backlog == []  # the compaction record is no pod
