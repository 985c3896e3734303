"""ResourceQuota and LimitRange against a real API server: admission on create,
the atomic last unit under concurrent creates, and the controller's recount."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient
from nodeos.controllers.events import EventRecorder
from nodeos.controllers.resourcequota import ResourceQuotaController
from nodeos.errors import ApiError

PODS = by_plural("", "v1", "pods")
SERVICES = by_plural("", "v1", "services")
QUOTAS = by_plural("", "v1", "resourcequotas")
LIMITS = by_plural("", "v1", "limitranges")


def pod(name: str, **resources: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "registry.local/app:1"}
    if resources:
        container["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [container]}}


def quota(name: str, **hard: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name, "namespace": "default"},
            "spec": {"hard": hard}}


async def eventually(read: Any, ok: Any, timeout: float = 10) -> None:
    """Await ``read()`` until ``ok`` holds of it (the controller works asynchronously)."""
    with trio.fail_after(timeout):
        while not ok(value := await read()):
            await trio.sleep(0.05)
    assert ok(value)


async def refused(api: ApiClient, res: Any, obj: dict[str, Any]) -> str:
    with pytest.raises(ApiError) as caught:
        await api.create(res, obj)
    assert caught.value.code == 403, caught.value
    return caught.value.message


async def test_a_new_quota_counts_what_is_already_there(api: ApiClient) -> None:
    await api.create(PODS, pod("before"))
    created = await api.create(QUOTAS, quota("q", pods="5", services="3"))
    # default already holds the kubernetes Service
    assert created["status"] == {"hard": {"pods": "5", "services": "3"}, "used": {"pods": "1", "services": "1"}}


async def test_the_pod_past_the_quota_is_forbidden_with_kubernetes_message(api: ApiClient) -> None:
    await api.create(QUOTAS, quota("q", pods="2"))
    await api.create(PODS, pod("a"))
    await api.create(PODS, pod("b"))
    message = await refused(api, PODS, pod("c"))
    assert message == 'pods "c" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2'
    assert (await api.get(QUOTAS, "q", "default"))["status"]["used"] == {"pods": "2"}


async def test_compute_quota_sums_requests_and_refuses_pods_without_them(api: ApiClient) -> None:
    await api.create(QUOTAS, quota("compute", **{"requests.cpu": "1", "limits.memory": "1Gi"}))
    small = {"requests": {"cpu": "400m"}, "limits": {"memory": "256Mi"}}
    await api.create(PODS, pod("a", **small))
    await api.create(PODS, pod("b", **small))
    message = await refused(api, PODS, pod("c", **small))
    assert message == ('pods "c" is forbidden: exceeded quota: compute, requested: requests.cpu=400m, '
                       'used: requests.cpu=800m, limited: requests.cpu=1')
    message = await refused(api, PODS, pod("d", requests={"cpu": "100m"}))
    assert message == 'pods "d" is forbidden: failed quota: compute: must specify limits.memory for: app'
    status = (await api.get(QUOTAS, "compute", "default"))["status"]
    assert status["used"] == {"limits.memory": "512Mi", "requests.cpu": "800m"}


async def test_a_compute_only_quota_still_requires_requests(api: ApiClient) -> None:
    await api.create(QUOTAS, quota("cpu-only", **{"requests.cpu": "1"}))
    message = await refused(api, PODS, pod("bare"))
    assert message == 'pods "bare" is forbidden: failed quota: cpu-only: must specify requests.cpu for: app'
    await api.create(PODS, pod("stated", requests={"cpu": "100m"}))


async def test_services_and_object_counts(api: ApiClient) -> None:
    await api.create(QUOTAS, quota("q", services="2", **{"count/resourcequotas": "2"}))  # kubernetes + 1
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
               "spec": {"ports": [{"port": 80}]}}
    await api.create(SERVICES, service)
    service["metadata"]["name"] = "web2"
    assert "exceeded quota: q, requested: services=1" in await refused(api, SERVICES, service)
    await api.create(QUOTAS, quota("second", pods="1"))  # q counts itself, as Kubernetes' controller does
    message = await refused(api, QUOTAS, quota("third", pods="1"))
    assert "count/resourcequotas=1, used: count/resourcequotas=2" in message


async def test_concurrent_creates_cannot_both_take_the_last_unit(api: ApiClient) -> None:
    await api.create(QUOTAS, quota("q", pods="3"))
    outcomes: list[str] = []

    async def create(name: str) -> None:
        try:
            await api.create(PODS, pod(name))
            outcomes.append("created")
        except ApiError as exc:
            outcomes.append(str(exc.code))

    async with trio.open_nursery() as nursery:
        for i in range(12):
            nursery.start_soon(create, f"p{i}")
    assert sorted(outcomes) == ["403"] * 9 + ["created"] * 3
    listed = await api.list(PODS, "default")
    assert len(listed["items"]) == 3
    assert (await api.get(QUOTAS, "q", "default"))["status"]["used"] == {"pods": "3"}


async def test_many_concurrent_creates_under_a_roomy_quota_all_pass(api: ApiClient) -> None:
    """Charges take turns within the server: no create fails for losing compare-and-swaps."""
    await api.create(QUOTAS, quota("q", pods="100", **{"requests.cpu": "10"}))
    async with trio.open_nursery() as nursery:
        for i in range(40):
            nursery.start_soon(api.create, PODS, pod(f"p{i}", requests={"cpu": "100m"}))
    status = (await api.get(QUOTAS, "q", "default"))["status"]
    assert status["used"] == {"pods": "40", "requests.cpu": "4"}


async def test_a_refused_create_leaves_no_charge_on_other_quotas(api: ApiClient) -> None:
    await api.create(QUOTAS, quota("a-roomy", pods="10"))
    await api.create(QUOTAS, quota("b-tight", pods="0"))
    await refused(api, PODS, pod("x"))
    assert (await api.get(QUOTAS, "a-roomy", "default"))["status"]["used"] == {"pods": "0"}


async def test_dry_run_and_name_clashes_charge_nothing(api: ApiClient) -> None:
    await api.create(QUOTAS, quota("q", pods="5"))
    await api.create(PODS, pod("a"))
    with pytest.raises(ApiError) as caught:
        await api.create(PODS, pod("a"))
    assert caught.value.code == 409
    assert (await api.get(QUOTAS, "q", "default"))["status"]["used"] == {"pods": "1"}


async def test_limit_range_defaults_requests_and_limits(api: ApiClient) -> None:
    await api.create(LIMITS, {"apiVersion": "v1", "kind": "LimitRange",
                              "metadata": {"name": "lr", "namespace": "default"},
                              "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
                                                   "defaultRequest": {"cpu": "100m"}}]}})
    created = await api.create(PODS, pod("a"))
    resources = created["spec"]["containers"][0]["resources"]
    assert resources == {"limits": {"cpu": "500m", "memory": "256Mi"},
                         "requests": {"cpu": "100m", "memory": "256Mi"}}
    assert created["status"]["qosClass"] == "Burstable"
    kept = await api.create(PODS, pod("b", requests={"cpu": "50m"}, limits={"cpu": "200m"}))
    assert kept["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "50m"
    assert kept["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "200m"


async def test_limit_range_min_max_and_ratio_refuse_with_kubernetes_messages(api: ApiClient) -> None:
    await api.create(LIMITS, {"apiVersion": "v1", "kind": "LimitRange",
                              "metadata": {"name": "lr", "namespace": "default"},
                              "spec": {"limits": [{"type": "Container", "min": {"cpu": "100m"}, "max": {"cpu": "1"},
                                                   "maxLimitRequestRatio": {"cpu": "2"}}]}})
    message = await refused(api, PODS, pod("big", requests={"cpu": "500m"}, limits={"cpu": "2"}))
    assert message == ('pods "big" is forbidden: [maximum cpu usage per Container is 1, but limit is 2, '
                       'cpu max limit to request ratio per Container is 2, but provided ratio is 4.000000]')
    message = await refused(api, PODS, pod("small", requests={"cpu": "50m"}, limits={"cpu": "100m"}))
    assert message == 'pods "small" is forbidden: minimum cpu usage per Container is 100m, but request is 50m'
    created = await api.create(PODS, pod("fits"))  # the max became its default limit and request
    assert created["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}


async def test_bad_policies_are_invalid_not_500(api: ApiClient) -> None:
    with pytest.raises(ApiError) as caught:
        await api.create(QUOTAS, quota("q", pods="lots"))
    assert caught.value.code == 422 and "spec.hard[pods]" in caught.value.message
    for spec in ("x", [1], {"hard": "x"}, {"hard": {"pods": None}}):
        with pytest.raises(ApiError) as caught:
            await api.create(QUOTAS, {**quota("q"), "spec": spec})
        assert caught.value.code == 422, spec
    await api.create(LIMITS, {"apiVersion": "v1", "kind": "LimitRange",
                              "metadata": {"name": "ok", "namespace": "default"},
                              "spec": {"limits": [{"type": "Container", "default": {"cpu": "1"}}]}})
    for resources in ({"limits": "x", "requests": [1]}, "x", {"limits": {"cpu": "lots"}}):
        garbage_pod = pod("p")
        garbage_pod["spec"]["containers"][0]["resources"] = resources
        with pytest.raises(ApiError) as caught:
            await api.create(PODS, garbage_pod)
        assert caught.value.code == 422, resources
    garbage_pod["spec"]["containers"] = ["x"]
    with pytest.raises(ApiError) as caught:
        await api.create(PODS, garbage_pod)
    assert caught.value.code == 422
    bad_range = {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr", "namespace": "default"},
                 "spec": {"limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}}
    with pytest.raises(ApiError) as caught:
        await api.create(LIMITS, bad_range)
    assert caught.value.code == 422 and "max value 1 is less than min value 2" in caught.value.message


async def test_the_controller_gives_back_deleted_and_finished_pods(api: ApiClient) -> None:
    await api.create(QUOTAS, quota("q", pods="2"))
    await api.create(PODS, pod("a"))
    await api.create(PODS, pod("b"))
    controller = ResourceQuotaController(api, EventRecorder(api, "resourcequota-controller"))
    async with trio.open_nursery() as nursery:
        await nursery.start(controller.run)
        await api.delete(PODS, "a", "default", grace_period_seconds=0)

        async def used() -> dict[str, str]:
            return (await api.get(QUOTAS, "q", "default"))["status"]["used"]

        await eventually(used, lambda u: u == {"pods": "1"})
        finished = await api.get(PODS, "b", "default")
        finished["status"]["phase"] = "Succeeded"
        await api.update_status(PODS, finished)
        await eventually(used, lambda u: u == {"pods": "0"})
        await api.create(PODS, pod("c"))
        await api.create(PODS, pod("d"))
        # raising the limit recounts status.hard at once
        raised = await api.get(QUOTAS, "q", "default")
        raised["spec"]["hard"]["pods"] = "5"
        await api.update(QUOTAS, raised)
        await eventually(lambda: api.get(QUOTAS, "q", "default"),
                         lambda q: q["status"]["hard"] == {"pods": "5"} and q["status"]["used"] == {"pods": "2"})
        nursery.cancel_scope.cancel()


# -- two masters on one store: the per-server turns do not span them, the compare-and-swap does --------

class Gated:
    """A store whose watch can be held back: a master whose cache lags the store."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.open = trio.Event()
        self.open.set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def watch(self, from_revision: int) -> Any:
        async for event in self.store.watch(from_revision):
            await self.open.wait()
            yield event


@pytest.fixture
async def masters(tmp_path):
    """Two registries ("masters") on one store, each with its own watch cache; the second's can lag."""
    import ipaddress

    from nodeos.api.allocators import ServiceAllocator
    from nodeos.api.lifecycle import ensure_builtins
    from nodeos.api.registry import Registry
    from nodeos.api.store.sqlite import SQLiteStore
    from nodeos.api.watchcache import WatchCache

    store = SQLiteStore(tmp_path / "s.db", synchronous="OFF")
    await store.start()
    async with trio.open_nursery() as nursery:
        registries = []
        for cache_store in (store, Gated(store)):
            cache = WatchCache(cache_store)
            await nursery.start(cache.run)
            registry = Registry(store, cache, ServiceAllocator(store, cache, ipaddress.ip_network("10.96.0.0/24")))
            registry.shared = True
            registries.append(registry)
        await ensure_builtins(registries[0], 6443)
        await registries[1].sync()
        yield registries
        nursery.cancel_scope.cancel()
    await store.close()


async def test_two_masters_cannot_both_take_the_last_unit(masters) -> None:
    a, b = masters
    await a.create(QUOTAS, "default", quota("q", pods="4"))
    await b.sync()
    outcomes: list[str] = []

    async def create(master: Any, name: str) -> None:
        try:
            await master.create(PODS, "default", pod(name))
            outcomes.append("created")
        except ApiError as exc:
            outcomes.append(str(exc.code))

    async with trio.open_nursery() as nursery:
        for i in range(16):
            nursery.start_soon(create, (a, b)[i % 2], f"p{i}")
    assert sorted(outcomes) == ["403"] * 12 + ["created"] * 4
    await a.sync()
    assert len(a.cache.list(PODS.store_prefix("default"))) == 4
    assert a.get(QUOTAS, "default", "q").obj["status"]["used"] == {"pods": "4"}


async def test_a_master_with_a_stale_quota_loses_the_swap_and_is_refused(masters) -> None:
    """The second master still sees the last unit free; its write of status.used is conditioned on the
    revision it read, fails, and once its cache catches up it refuses."""
    a, b = masters
    await a.create(QUOTAS, "default", quota("q", pods="1"))
    await b.sync()
    gate = b.cache._store
    gate.open = trio.Event()  # b's cache stops following the store
    await a.create(PODS, "default", pod("first"))
    outcome: list[int] = []

    async def create_on_b() -> None:
        try:
            await b.create(PODS, "default", pod("second"))
            outcome.append(201)
        except ApiError as exc:
            outcome.append(exc.code)
            assert "exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1" in exc.message

    async with trio.open_nursery() as nursery:
        nursery.start_soon(create_on_b)
        await trio.sleep(0.2)
        assert outcome == []  # b lost its swap and waits for its cache
        gate.open.set()
    assert outcome == [403]


# -- the daemon: its controller manager runs the resourcequota controller ----------------------------

async def test_the_daemons_controller_manager_recounts_after_a_delete(tmp_path) -> None:
    from nodeos.client import Connection
    from tests.daemon import Daemon

    daemon = Daemon(tmp_path / "node", disable=("scheduler",))  # the API and the controller manager
    await trio.to_thread.run_sync(daemon.start)
    try:
        async with ApiClient(Connection(server=f"http://127.0.0.1:{daemon.insecure_port}")) as api:
            await api.create(QUOTAS, quota("q", pods="1"))
            await api.create(PODS, pod("a"))
            assert "exceeded quota: q" in await refused(api, PODS, pod("b"))
            await api.delete(PODS, "a", "default", grace_period_seconds=0)
            await eventually(lambda: api.get(QUOTAS, "q", "default"), lambda q: q["status"]["used"] == {"pods": "0"})
            await api.create(PODS, pod("b"))
    finally:
        await trio.to_thread.run_sync(daemon.stop)
