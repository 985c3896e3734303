import itertools
import json

import httpx
import pytest
import trio

from nodeos.api.kinds import resolve
from nodeos.client import Informer, object_key, split_key
from nodeos.client.testing import FakeApi

PODS = resolve("pods")


def pod(name, ns="default", **labels):
    return {"metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": {}}


class Recorder:
    def __init__(self, informer):
        self.events = []
        informer.add_handlers(on_add=lambda o: self.events.append(("add", o["metadata"]["name"])),
                              on_update=lambda a, b: self.events.append(("update", b["metadata"]["name"])),
                              on_delete=lambda o: self.events.append(("delete", o["metadata"]["name"])))

    def take(self):
        events, self.events = self.events, []
        return events


@pytest.fixture
def fake():
    api = FakeApi()
    api.put(PODS, pod("a"))
    api.put(PODS, pod("b"))
    return api


def watch_requests(fake):
    return [r for r in fake.requests if r.url.params.get("watch") == "true"]


def list_requests(fake):
    return [r for r in fake.requests if "watch" not in r.url.params]


def test_keys():
    assert object_key(pod("x", "ns")) == "ns/x"
    assert object_key({"metadata": {"name": "node1"}}) == "node1"
    assert split_key("ns/x") == ("ns", "x")
    assert split_key("node1") == (None, "node1")


async def test_lists_then_follows_watch_events(fake, autojump_clock):
    async with fake.client() as api, trio.open_nursery() as nursery:
        informer = Informer(api, PODS, resync_period=None)
        seen = Recorder(informer)
        assert not informer.has_synced
        await nursery.start(informer.run)
        assert informer.has_synced
        assert seen.take() == [("add", "a"), ("add", "b")]
        assert informer.get("default/a")["kind"] == "Pod"
        listed_at = informer.resource_version

        fake.put(PODS, pod("c"))
        fake.put(PODS, pod("a", tier="web"))
        fake.remove(PODS, "default", "b")
        await trio.sleep(1)
        assert seen.take() == [("add", "c"), ("update", "a"), ("delete", "b")]
        assert sorted(informer.keys()) == ["default/a", "default/c"]
        assert informer.get("default/a")["metadata"]["labels"] == {"tier": "web"}
        assert watch_requests(fake)[0].url.params["resourceVersion"] == listed_at
        assert informer.resource_version == str(fake.revision)
        nursery.cancel_scope.cancel()


async def test_rewatches_from_last_version_including_bookmarks(fake, autojump_clock):
    async with fake.client() as api, trio.open_nursery() as nursery:
        informer = Informer(api, PODS, resync_period=None)
        await nursery.start(informer.run)
        await trio.sleep(1)
        fake.bookmark(PODS)
        await trio.sleep(1)
        assert informer.resource_version == str(fake.revision)
        fake.end_watches()  # the server's timeout
        await trio.sleep(1)
        watches = watch_requests(fake)
        assert len(watches) == 2
        assert watches[1].url.params["resourceVersion"] == str(fake.revision)
        assert len(list_requests(fake)) == 1
        nursery.cancel_scope.cancel()


async def test_expired_watch_relists_and_diffs_the_cache(fake, autojump_clock):
    async with fake.client() as api, trio.open_nursery() as nursery:
        informer = Informer(api, PODS, resync_period=None)
        seen = Recorder(informer)
        await nursery.start(informer.run)
        await trio.sleep(1)
        seen.take()
        # While the informer is away: b changes, a goes, c comes; history is compacted.
        fake.end_watches()
        fake.remove(PODS, "default", "a")
        fake.put(PODS, pod("b", changed="yes"))
        fake.put(PODS, pod("c"))
        fake.compact()
        await trio.sleep(1)
        assert sorted(seen.take()) == [("add", "c"), ("delete", "a"), ("update", "b")]
        assert sorted(informer.keys()) == ["default/b", "default/c"]
        assert len(list_requests(fake)) == 2
        nursery.cancel_scope.cancel()


async def test_reconnects_with_capped_exponential_backoff(fake, autojump_clock):
    attempts = []

    def down(request):
        attempts.append(trio.current_time())
        raise httpx.ConnectError("[Errno 111] Connection refused")

    async with fake.client() as api, trio.open_nursery() as nursery:
        informer = Informer(api, PODS, resync_period=None, backoff_cap=30)
        seen = Recorder(informer)
        await nursery.start(informer.run)
        seen.take()
        fake.hook = down
        fake.end_watches(httpx.ReadError("connection reset"))
        await trio.sleep(300)
        gaps = [round(b - a, 3) for a, b in itertools.pairwise(attempts)]
        assert gaps[:5] == [2.0, 4.0, 8.0, 16.0, 30.0]
        assert max(gaps) == 30.0

        fake.hook = None
        fake.put(PODS, pod("late"))
        await trio.sleep(31)
        assert seen.take() == [("add", "late")]
        assert len(list_requests(fake)) == 1  # resumed the watch, no relist needed
        nursery.cancel_scope.cancel()


async def test_first_list_waits_for_the_server(fake, autojump_clock):
    fake.hook = lambda request: httpx.Response(503, json={"kind": "Status", "code": 503,
                                                          "reason": "ServiceUnavailable", "message": "starting"})
    async with fake.client() as api, trio.open_nursery() as nursery:
        informer = Informer(api, PODS, resync_period=None)
        nursery.start_soon(informer.run)
        await trio.sleep(10)
        assert not informer.has_synced
        fake.hook = None
        with trio.fail_after(60):
            await informer.wait_synced()
        assert len(informer.list()) == 2
        nursery.cancel_scope.cancel()


async def test_periodic_resync_redelivers_every_object(fake, autojump_clock):
    async with fake.client() as api, trio.open_nursery() as nursery:
        informer = Informer(api, PODS, resync_period=60)
        seen = Recorder(informer)
        await nursery.start(informer.run)
        seen.take()
        await trio.sleep(59)
        assert seen.take() == []
        await trio.sleep(2)
        assert sorted(seen.take()) == [("update", "a"), ("update", "b")]
        nursery.cancel_scope.cancel()


async def test_late_handlers_get_the_cache_and_bad_handlers_do_not_stop_it(fake, autojump_clock, caplog):
    async with fake.client() as api, trio.open_nursery() as nursery:
        informer = Informer(api, PODS, resync_period=None)
        await nursery.start(informer.run)

        def broken(obj):
            raise RuntimeError("bug")

        informer.add_handlers(on_add=broken)
        seen = Recorder(informer)
        assert seen.take() == [("add", "a"), ("add", "b")]
        fake.put(PODS, pod("c"))
        await trio.sleep(1)
        assert seen.take() == [("add", "c")]
        assert "informer handler" in caplog.text
        nursery.cancel_scope.cancel()


async def test_namespace_and_selectors_are_sent(fake, autojump_clock):
    fake.put(PODS, pod("x", "other", app="web"))
    async with fake.client() as api, trio.open_nursery() as nursery:
        informer = Informer(api, PODS, "other", label_selector="app=web", field_selector="metadata.name=x")
        await nursery.start(informer.run)
        assert informer.keys() == ["other/x"]
        await trio.sleep(1)
        params = watch_requests(fake)[0].url.params
        assert (params["labelSelector"], params["fieldSelector"]) == ("app=web", "metadata.name=x")
        assert watch_requests(fake)[0].url.path == "/api/v1/namespaces/other/pods"
        nursery.cancel_scope.cancel()


async def test_a_server_that_always_expires_watches_is_not_hammered(fake, autojump_clock):
    expired = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version"}

    def always_expired(request):
        if request.url.params.get("watch"):
            return httpx.Response(200, content=json.dumps({"type": "ERROR", "object": expired}).encode() + b"\n")
        assert len(list_requests(fake)) < 100, "relisting in a tight loop"
        return None

    fake.hook = always_expired
    async with fake.client() as api, trio.open_nursery() as nursery:
        informer = Informer(api, PODS, resync_period=None, backoff_cap=30)
        await nursery.start(informer.run)
        await trio.sleep(120)
        assert 3 < len(list_requests(fake)) < 12
        nursery.cancel_scope.cancel()


async def test_health_hook_reports_outage_and_recovery(fake, autojump_clock):
    reports = []

    def down(request):
        raise httpx.ConnectError("[Errno 111] Connection refused")

    async with fake.client() as api, trio.open_nursery() as nursery:
        informer = Informer(api, PODS, resync_period=None, backoff_cap=4,
                            on_health=lambda ok, error: reports.append((ok, error)))
        await nursery.start(informer.run)
        assert reports == [] and informer.healthy
        fake.hook = down
        fake.end_watches(httpx.ReadError("connection reset"))
        await trio.sleep(10)
        assert not informer.healthy
        assert "connection reset" in reports[0][1] and "refused" in reports[-1][1]
        assert all(ok is False for ok, _ in reports)
        fake.hook = None
        fake.put(PODS, pod("late"))
        await trio.sleep(5)
        assert informer.healthy and reports[-1] == (True, "")
        assert [ok for ok, _ in reports].count(True) == 1
        nursery.cancel_scope.cancel()
