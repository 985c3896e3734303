"""The etcd store against real etcd: the Store contract (run on SQLite too), paging, watch order, failover."""

from __future__ import annotations

import itertools
import re
from contextlib import aclosing

import pytest
import trio

from nodeos.api.kinds import resolve
from nodeos.api.store import etcd as etcd_module
from nodeos.api.store.etcd import EtcdStore, EtcdTLS
from nodeos.api.store.sqlite import SQLiteStore
from nodeos.client import ApiClient, Connection
from nodeos.errors import Compacted, KeyExists, KeyNotFound, RevisionMismatch, StoreError
from tests.daemon import Daemon
from tests.etcd import EtcdCluster
from tests.etcd_fixtures import etcd_single, etcd_three  # noqa: F401  (fixtures)

PODS = resolve("pods")

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


# -- etcd only ---------------------------------------------------------------------


async def test_a_listing_larger_than_a_page_is_complete_and_one_snapshot(etcd_store, monkeypatch):
    monkeypatch.setattr(etcd_module, "PAGE", 50)
    created: dict[str, int] = {}

    async def create(i: int) -> None:
        created[f"/k/{i:04d}"] = await etcd_store.create(f"/k/{i:04d}", str(i).encode())

    async with trio.open_nursery() as nursery:
        for i in range(0, 460, 2):
            nursery.start_soon(create, i)
    async with trio.open_nursery() as nursery:  # more keys land between the pages of the listing
        for i in range(1, 460, 2):
            nursery.start_soon(create, i)
        items, revision = await etcd_store.list("/k/")
    expected = sorted(key for key, rev in created.items() if rev <= revision)
    assert len(expected) >= 230
    assert [kv.key for kv in items] == expected
    assert all(kv.revision == created[kv.key] and kv.value == str(int(kv.key[3:])).encode() for kv in items)


async def test_watch_delivers_concurrent_writes_in_revision_order(etcd_store):
    start = await etcd_store.current_revision()
    written: list[int] = []

    async def writer(w: int) -> None:
        revision = await etcd_store.create(f"/w/{w}", b"0")
        written.append(revision)
        for i in range(1, 25):
            revision = await etcd_store.update(f"/w/{w}", str(i).encode(), revision)
            written.append(revision)

    async with trio.open_nursery() as nursery:
        for w in range(4):
            nursery.start_soon(writer, w)
    seen = []
    with trio.fail_after(10):
        async with aclosing(etcd_store.watch(start)) as events:
            async for event in events:
                seen.append(event)
                if len(seen) == len(written):
                    break
    assert [e.revision for e in seen] == sorted(written)
    for w in range(4):
        values = [e.value for e in seen if e.key == f"/w/{w}"]
        assert values == [str(i).encode() for i in range(25)]


def _leader_first(cluster) -> None:
    """Make member 0 the leader, so that killing the store's endpoint kills the leader too."""
    import httpx

    statuses = [httpx.post(f"{e}/v3/maintenance/status", json={}, timeout=5).json() for e in cluster.endpoints]
    leader = statuses[0]["leader"]
    ids = [s["header"]["member_id"] for s in statuses]
    if leader != ids[0]:
        answer = httpx.post(f"{cluster.endpoints[ids.index(leader)]}/v3/maintenance/transfer-leadership",
                            json={"targetID": ids[0]}, timeout=10)
        assert answer.status_code == 200, answer.text


async def test_killing_the_leader_in_use_loses_no_write_and_no_watch_event(etcd_three):  # noqa: F811
    _leader_first(etcd_three)
    store = EtcdStore(etcd_three.endpoints, prefix="/ha")
    await store.start()
    try:
        assert store.endpoint == etcd_three.endpoints[0]
        start = await store.current_revision()
        revisions: list[int] = []
        seen: list[int] = []

        async def watch() -> None:
            async with aclosing(store.watch(start)) as events:
                async for event in events:
                    seen.append(event.revision)

        async def write() -> None:
            revision = await store.create("/counter", b"0")
            revisions.append(revision)
            for i in range(1, 40):
                revision = await store.update("/counter", str(i).encode(), revision)
                revisions.append(revision)
                await trio.sleep(0.01)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            async with trio.open_nursery() as writers:
                writers.start_soon(write)
                await trio.sleep(0.15)
                await trio.to_thread.run_sync(etcd_three.kill, 0)
            assert store.endpoint != etcd_three.endpoints[0]
            assert (await store.get("/counter")).value == b"39"
            with trio.fail_after(10):
                while len(seen) < len(revisions):
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
        assert seen == revisions
    finally:
        await store.close()


async def test_all_members_down_is_a_store_error_naming_them_then_recovery(etcd_three):  # noqa: F811
    store = EtcdStore(etcd_three.endpoints, prefix="/down", request_timeout=1.5)
    await store.start()
    try:
        revision = await store.create("/k", b"1")
        watch_error: list[BaseException] = []

        async def watch() -> None:
            try:
                async with aclosing(store.watch(revision)) as events:
                    async for _ in events:
                        pass
            except StoreError as exc:
                watch_error.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            await trio.sleep(0.1)
            for i in range(3):
                await trio.to_thread.run_sync(etcd_three.kill, i)
            with pytest.raises(StoreError) as info:
                await store.get("/k")
            assert all(endpoint in str(info.value) for endpoint in etcd_three.endpoints)
            with pytest.raises(StoreError):
                await store.update("/k", b"2", revision)
            with trio.fail_after(5):  # the watch gives up too, after request_timeout
                while not watch_error:
                    await trio.sleep(0.05)
        assert "etcd unreachable" in str(watch_error[0])

        def restart() -> None:
            for i in range(3):
                etcd_three.start_member(i, wait=False)
            for i in range(3):
                etcd_three.wait_healthy(i)

        await trio.to_thread.run_sync(restart)
        assert (await store.get("/k")).value == b"1"
        updated = await store.update("/k", b"2", revision)
        async with aclosing(store.watch(revision)) as events:  # resumed from where it stopped
            with trio.fail_after(5):
                event = await anext(aiter(events))
        assert (event.type, event.revision, event.value) == ("MODIFIED", updated, b"2")
    finally:
        await store.close()


async def _serve_lost_answers(port: int, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """A proxy to etcd at ``port`` that passes each request on and lets etcd
    apply it, then hangs up without the answer: a write whose outcome is unknown."""

    async def handle(client: trio.SocketStream) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += await client.receive_some(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: *(\d+)", head, re.IGNORECASE).group(1))
        while len(body) < length:
            body += await client.receive_some(65536)
        async with await trio.open_tcp_stream("127.0.0.1", port) as upstream:
            await upstream.send_all(head + b"\r\n\r\n" + body)
            await upstream.receive_some(65536)  # etcd has answered: the request was applied
        await client.aclose()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started(listeners[0].socket.getsockname()[1])
    await trio.serve_listeners(handle, listeners)


async def test_a_write_whose_answer_is_lost_is_resolved_by_reading_the_key(etcd_single):  # noqa: F811
    etcd = etcd_single.endpoints[0]
    direct = EtcdStore([etcd], prefix="/lost")
    await direct.start()

    async def through_proxy(operation):
        # A new store each time: its first try goes to the proxy, the retry to etcd itself.
        store = EtcdStore([f"http://127.0.0.1:{proxy_port}", etcd], prefix="/lost")
        await store.start()
        try:
            return await operation(store)
        finally:
            assert store.endpoint == etcd
            await store.close()

    async with trio.open_nursery() as nursery:
        proxy_port = await nursery.start(_serve_lost_answers, int(etcd.rsplit(":", 1)[1]))
        created = await through_proxy(lambda s: s.create("/k", b"v1"))
        assert (await direct.get("/k")).revision == created
        updated = await through_proxy(lambda s: s.update("/k", b"v2", created))
        assert (await direct.get("/k")).revision == updated > created
        deleted = await through_proxy(lambda s: s.delete("/k", updated))
        assert deleted > updated and await direct.get("/k") is None
        # Real conflicts stay conflicts: the key holds someone else's value.
        theirs = await direct.create("/taken", b"theirs")
        with pytest.raises(KeyExists):
            await through_proxy(lambda s: s.create("/taken", b"mine"))
        with pytest.raises(RevisionMismatch):
            await through_proxy(lambda s: s.update("/taken", b"mine", theirs - 1))
        nursery.cancel_scope.cancel()
    await direct.close()


async def test_a_daemon_on_etcd_serves_the_api(etcd_single, tmp_path):  # noqa: F811
    store = '[store]\nbackend = "etcd"\netcd_endpoints = [' + ", ".join(f'"{e}"' for e in etcd_single.endpoints)
    daemon = Daemon(tmp_path / "d", extra_config=store + ']\netcd_prefix = "/daemon-test"\n')
    await trio.to_thread.run_sync(daemon.start)
    try:
        async with ApiClient(Connection(daemon.url, namespace="default")) as api:
            listed = await api.list(PODS, "default")
            async with aclosing(api.watch(PODS, "default", resource_version=listed["metadata"]["resourceVersion"],
                                          timeout_seconds=30)) as events:
                created = await api.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
                with trio.fail_after(10):
                    kind, obj = await anext(aiter(events))
            assert (kind, obj["metadata"]["uid"]) == ("ADDED", created["metadata"]["uid"])
            assert (await api.get(PODS, "p"))["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
            assert [p["metadata"]["name"] for p in (await api.list(PODS, "default"))["items"]] == ["p"]
        # The object is in etcd, under the prefix, at the revision the API reported.
        reader = EtcdStore(etcd_single.endpoints, prefix="/daemon-test")
        await reader.start()
        try:
            kv = await reader.get("/core/pods/default/p")
        finally:
            await reader.close()
        assert kv is not None and str(kv.revision) == created["metadata"]["resourceVersion"]
    finally:
        await trio.to_thread.run_sync(daemon.stop)


def test_watch_messages_are_cut_at_newlines_however_chunks_split_them():
    lines = etcd_module._Lines()
    assert lines.feed(b'{"a":1}\n{"b"') == [b'{"a":1}']
    assert lines.feed(b":2}") == []
    assert lines.feed(b'\n\n{"c":3}\n{') == [b'{"b":2}', b'{"c":3}']
    assert lines.feed(b"}\n") == [b"{}"]


async def test_https_with_client_certificates(tmp_path):
    with EtcdCluster(tmp_path / "etcd", client_tls=True) as cluster:
        assert cluster.endpoints[0].startswith("https://")
        ca, cert, key = cluster.tls_files
        store = EtcdStore(cluster.endpoints, prefix="/tls", tls=EtcdTLS(ca, cert, key))
        await store.start()
        try:
            revision = await store.create("/k", b"v")
            assert (await store.get("/k")).revision == revision
        finally:
            await store.close()
        anonymous = EtcdStore(cluster.endpoints, prefix="/tls", tls=EtcdTLS(ca), request_timeout=1)
        await anonymous.start()
        try:
            with pytest.raises(StoreError, match="etcd unreachable"):
                await anonymous.get("/k")  # etcd wants a client certificate
        finally:
            await anonymous.close()
