"""The etcd store against real etcd: the Store contract (run on SQLite too), paging, watch order, failover."""

from __future__ import annotations

import itertools
from contextlib import aclosing

import pytest
import trio

from nodeos.api.store.etcd import EtcdStore
from nodeos.api.store.sqlite import SQLiteStore
from nodeos.errors import Compacted, KeyExists, KeyNotFound, RevisionMismatch
from tests.etcd_fixtures import etcd_single, etcd_three  # noqa: F401  (fixtures)

_prefixes = itertools.count()


def _etcd_store(cluster, **kwargs) -> EtcdStore:
    # Tests share one etcd; each keeps to its own prefix.
    return EtcdStore(cluster.endpoints, prefix=f"/test{next(_prefixes)}", **kwargs)


@pytest.fixture
async def etcd_store(etcd_single):  # noqa: F811
    store = _etcd_store(etcd_single)
    await store.start()
    yield store
    await store.close()


@pytest.fixture(params=["sqlite", "etcd"])
async def store(request, tmp_path):
    if request.param == "etcd":
        s = _etcd_store(request.getfixturevalue("etcd_single"))
    else:
        s = SQLiteStore(tmp_path / "store.db", synchronous="OFF")
    await s.start()
    yield s
    await s.close()


# -- the contract: both backends -------------------------------------------------


async def test_writes_bump_one_global_revision(store):
    start = await store.current_revision()
    r1 = await store.create("/core/pods/a/x", b"1")
    r2 = await store.create("/core/pods/a/y", b"2")
    r3 = await store.update("/core/pods/a/x", b"3", r1)
    r4 = await store.delete("/core/pods/a/y")
    assert [r1, r2, r3, r4] == [start + 1, start + 2, start + 3, start + 4]
    assert await store.current_revision() == r4
    kv = await store.get("/core/pods/a/x")
    assert (kv.key, kv.value, kv.revision) == ("/core/pods/a/x", b"3", r3)
    assert await store.get("/core/pods/a/y") is None


async def test_compare_and_swap(store):
    r1 = await store.create("/k", b"v")
    with pytest.raises(KeyExists):
        await store.create("/k", b"v")
    with pytest.raises(RevisionMismatch) as mismatch:
        await store.update("/k", b"w", r1 - 1)
    assert mismatch.value.current == r1
    with pytest.raises(RevisionMismatch):
        await store.delete("/k", r1 + 5)
    with pytest.raises(KeyNotFound):
        await store.update("/missing", b"w", 1)
    with pytest.raises(KeyNotFound):
        await store.delete("/missing")
    with pytest.raises(KeyNotFound):
        await store.delete("/missing", 3)
    r2 = await store.delete("/k", r1)
    assert r2 > r1 and await store.get("/k") is None


async def test_list_by_prefix_is_ordered_and_exact(store):
    for key in ("/core/pods/b/2", "/core/pods/a/1", "/core/podsx/a/1", "/core/pods/b/1"):
        await store.create(key, b"{}")
    items, revision = await store.list("/core/pods/")
    assert [kv.key for kv in items] == ["/core/pods/a/1", "/core/pods/b/1", "/core/pods/b/2"]
    assert revision == await store.current_revision()
    everything, _ = await store.list("/")
    assert len(everything) == 4


async def test_concurrent_writes_get_distinct_consecutive_revisions(store):
    revisions: list[int] = []

    async def writer(i: int) -> None:
        revisions.append(await store.create(f"/k/{i}", b"x"))

    async with trio.open_nursery() as nursery:
        for i in range(100):
            nursery.start_soon(writer, i)
    assert sorted(revisions) == list(range(min(revisions), min(revisions) + 100))


async def test_watch_replays_history_then_follows(store):
    r1 = await store.create("/a", b"1")
    await store.create("/b", b"2")
    seen = []

    async def follow() -> None:
        async with aclosing(store.watch(r1)) as events:
            async for event in events:
                seen.append((event.type, event.key, event.value, event.revision, event.prev_value))
                if len(seen) == 3:
                    return

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow)
        await trio.sleep(0.1)
        r3 = await store.update("/a", b"3", r1)
        await store.delete("/b")
    assert seen == [
        ("ADDED", "/b", b"2", r1 + 1, None),
        ("MODIFIED", "/a", b"3", r3, b"1"),
        ("DELETED", "/b", b"2", r3 + 1, b"2"),
    ]


async def test_watch_from_compacted_history_raises_compacted(store):
    r1 = await store.create("/a", b"1")
    r2 = await store.update("/a", b"2", r1)
    r3 = await store.update("/a", b"3", r2)
    await store.compact(r3)
    with pytest.raises(Compacted):
        async with aclosing(store.watch(r1 - 1)) as events:
            async for _ in events:
                pass
    r4 = await store.update("/a", b"4", r3)
    async with aclosing(store.watch(r3)) as events:
        async for event in events:
            assert (event.revision, event.value) == (r4, b"4")
            break
