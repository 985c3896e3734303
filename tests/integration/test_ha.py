"""Three masters on a three-member etcd cluster, two simulated workers, as real processes.

One cluster serves the module; the tests that break something (an etcd member,
the leading master) come last and leave the rest usable. What they show:
every master serves consistent reads and ordered watches of what any master
wrote, allocation is unique across masters, compaction reaches every watch
cache, losing an etcd member loses no writes, and losing the leading master
hands scheduling and reconciling to another within the lease duration.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import json
import threading
import time
import uuid

import httpx
import pytest
import trio

from nodeos.api.store.etcd import EtcdStore
from nodeos.api.watchcache import compact
from tests.ha import HACluster
from tests.waiting import poll

LEASE_SECONDS = 15  # the leader election's default lease duration
FAILOVER_MARGIN = 10  # retry period, a busy CI machine
TAKEOVER_SLACK = 1.0  # a standby wakes at the Lease's expiry; this covers its round trip on a busy machine


@pytest.fixture(scope="module")
def ha(tmp_path_factory):
    with HACluster(tmp_path_factory.mktemp("ha"), etcd_members=3, masters=3, workers=2) as cluster:
        yield cluster


@pytest.fixture
def ns(ha):
    """A namespace of the test's own, created through the first master."""
    name = f"t-{uuid.uuid4().hex[:6]}"
    response = httpx.post(f"{ha.masters[0].url}/api/v1/namespaces", json={"metadata": {"name": name}}, timeout=10)
    assert response.status_code == 201, response.text
    return name


def lease(name: str) -> dict:
    """Leases are the simplest kind to write many of (nodeos serves no ConfigMaps)."""
    return {"metadata": {"name": name}, "spec": {"holderIdentity": "a"}}


def leases(master, ns: str) -> str:
    return f"{master.url}/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"


def test_a_write_through_one_master_is_read_at_once_through_the_others(ha, ns):
    a, b, c = ha.masters
    for i in range(15):
        created = httpx.post(leases(a, ns), json=lease(f"c{i}"), timeout=10)
        assert created.status_code == 201, created.text
        for other in (b, c):
            got = httpx.get(f"{leases(other, ns)}/c{i}", timeout=10)
            assert got.status_code == 200, f"{other.name}: {got.text}"
            listed = httpx.get(leases(other, ns), timeout=10).json()
            assert f"c{i}" in [item["metadata"]["name"] for item in listed["items"]]


def test_a_watch_on_another_master_sees_every_write_in_order(ha, ns):
    a, b = ha.masters[0], ha.masters[1]
    start = httpx.get(leases(b, ns), timeout=10).json()["metadata"]["resourceVersion"]
    connected = threading.Event()

    def watch() -> list[tuple[str, str]]:
        seen = []
        url = f"{leases(b, ns)}?watch=1&resourceVersion={start}&timeoutSeconds=30"
        with httpx.stream("GET", url, timeout=30) as response:
            connected.set()
            for line in response.iter_lines():
                event = json.loads(line)
                seen.append((event["type"], event["object"]["metadata"]["resourceVersion"]))
                if len(seen) == 30:
                    break
        return seen

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        watching = pool.submit(watch)
        assert connected.wait(10)
        written: list[tuple[str, str | None]] = []
        for i in range(10):
            created = httpx.post(leases(a, ns), json=lease(f"w{i}"), timeout=10).json()
            written.append(("ADDED", created["metadata"]["resourceVersion"]))
            updated = httpx.patch(f"{leases(a, ns)}/w{i}", json={"spec": {"holderIdentity": "b"}}, timeout=10,
                                  headers={"content-type": "application/merge-patch+json"}).json()
            written.append(("MODIFIED", updated["metadata"]["resourceVersion"]))
            assert httpx.delete(f"{leases(a, ns)}/w{i}", timeout=10).status_code == 200
            written.append(("DELETED", None))  # the delete's revision is not in its answer
        seen = watching.result(timeout=30)
    assert [kind for kind, _ in seen] == [kind for kind, _ in written]
    for (_, wrote), (_, got) in zip(written, seen, strict=True):
        assert wrote is None or wrote == got
    revisions = [int(rv) for _, rv in seen]
    assert revisions == sorted(revisions) and len(set(revisions)) == len(revisions)


def test_two_masters_creating_services_at_once_hand_out_distinct_addresses(ha, ns):
    a, b = ha.masters[0], ha.masters[1]

    def create(i: int) -> dict:
        master = (a, b)[i % 2]
        body = {"metadata": {"name": f"s{i}"},
                "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}}
        response = httpx.post(f"{master.url}/api/v1/namespaces/{ns}/services", json=body, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        services = list(pool.map(create, range(50)))
    ips = {s["spec"]["clusterIP"] for s in services}
    ports = {s["spec"]["ports"][0]["nodePort"] for s in services}
    assert len(ips) == 50 and len(ports) == 50
    listed = httpx.get(f"{ha.masters[2].url}/api/v1/namespaces/{ns}/services", timeout=10).json()["items"]
    assert {s["spec"]["clusterIP"] for s in listed} == ips


def test_the_kubernetes_endpoints_list_every_master(ha):
    poll(lambda: _kubernetes_endpoints(ha) == _live_master_endpoints(ha), 15,
         "kubernetes Endpoints on every master", ha.logs)


def _kubernetes_endpoints(ha) -> set[tuple[str, int]]:
    endpoints = httpx.get(f"{ha.url}/api/v1/namespaces/default/endpoints/kubernetes", timeout=5)
    if endpoints.status_code != 200:
        return set()
    return {(address["ip"], port["port"]) for subset in endpoints.json().get("subsets") or []
            for address in subset["addresses"] for port in subset["ports"]}


def _live_master_endpoints(ha) -> set[tuple[str, int]]:
    return {(ha.address(i), m.port) for i, m in enumerate(ha.masters) if m in ha.live_masters}


async def test_a_watch_from_before_a_compaction_gets_410_on_every_master_and_a_relist_works(ha, ns):
    a = ha.masters[0]
    async with httpx.AsyncClient(timeout=10) as client:
        url = leases(a, ns)
        old = (await client.get(url)).json()["metadata"]["resourceVersion"]
        for i in range(3):
            assert (await client.post(url, json=lease(f"k{i}"))).status_code == 201
        store = EtcdStore(ha.etcd.endpoints)
        await store.start()
        try:
            await compact(store, await store.current_revision())
        finally:
            await store.close()
        for master in ha.masters:
            watch = f"{leases(master, ns)}?watch=1&resourceVersion={old}"
            with trio.fail_after(10):
                while True:  # until this master's cache has seen the compaction record
                    first = _first_event(watch)
                    if first["type"] == "ERROR":
                        break
                    await trio.sleep(0.1)
            assert first["object"]["code"] == 410, first
            relisted = (await client.get(leases(master, ns))).json()
            assert {item["metadata"]["name"] for item in relisted["items"]} >= {"k0", "k1", "k2"}
            fresh = f"{leases(master, ns)}?watch=1&timeoutSeconds=1" \
                    f"&resourceVersion={relisted['metadata']['resourceVersion']}"
            assert (await client.get(fresh)).status_code == 200


def _first_event(url: str) -> dict:
    """The first line of a watch; a watch refused outright (HTTP 410) as the ERROR event it stands for."""
    with httpx.stream("GET", url, timeout=10) as response:
        if response.status_code != 200:
            return {"type": "ERROR", "object": json.loads(response.read())}
        for line in response.iter_lines():
            return json.loads(line)
    raise AssertionError(f"{url}: the watch ended without an event")


def test_losing_one_etcd_member_keeps_every_master_writing(ha, ns):
    ha.etcd.kill(0)
    try:
        for master in ha.masters:
            for i in range(5):
                url = leases(master, ns)
                poll(lambda url=url, name=f"e-{master.name}-{i}":
                     httpx.post(url, json=lease(name), timeout=10).status_code in (201, 409),
                     15, f"a write through {master.name} with one etcd member down", ha.logs)
        names = {c["metadata"]["name"] for c in
                 httpx.get(leases(ha.masters[2], ns), timeout=10).json()["items"]}
        assert len(names) == 15
    finally:
        ha.etcd.start_member(0)


@pytest.mark.slow
def test_killing_the_leading_master_hands_over_and_a_deployment_made_meanwhile_runs(ha, ns):
    leaders = [ha.leader("scheduler"), ha.leader("controller-manager")]
    assert None not in leaders, "no leader before the kill"
    killed = time.monotonic()
    for master in leaders:
        ha.kill_master(master)  # one master, or the two that lead
    survivor = ha.live_masters[0]
    last_renewed = {c: _lease_spec(survivor, c)["renewTime"] for c in ("scheduler", "controller-manager")}
    deployment = {
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    }
    created = httpx.post(f"{survivor.url}/apis/apps/v1/namespaces/{ns}/deployments", json=deployment, timeout=10)
    assert created.status_code == 201, created.text

    def taken_over() -> bool:
        return all(ha.leader(c) in ha.live_masters for c in ("scheduler", "controller-manager"))

    poll(taken_over, LEASE_SECONDS + FAILOVER_MARGIN, "both Leases taken by surviving masters", ha.logs)
    took = time.monotonic() - killed
    assert took < LEASE_SECONDS + FAILOVER_MARGIN
    for component, renewed in last_renewed.items():  # within the lease duration of the killed leader's last renewal
        acquired = _lease_spec(survivor, component)["acquireTime"]
        assert _seconds_between(renewed, acquired) < LEASE_SECONDS + TAKEOVER_SLACK, (component, renewed, acquired)

    def running() -> bool:
        pods = httpx.get(f"{survivor.url}/api/v1/namespaces/{ns}/pods", timeout=5).json()["items"]
        return len(pods) == 3 and all(p["spec"].get("nodeName") in ha.node_names
                                      and (p.get("status") or {}).get("phase") == "Running" for p in pods)

    poll(running, 40, "the Deployment's 3 pods bound and Running", ha.logs)
    poll(lambda: _kubernetes_endpoints(ha) == _live_master_endpoints(ha), LEASE_SECONDS + FAILOVER_MARGIN,
         "the killed masters gone from the kubernetes Endpoints", ha.logs)
    print(f"leases taken over {took:.1f} s after the kill")


def _lease_spec(master, component: str) -> dict:
    response = httpx.get(f"{master.url}/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/"
                         f"nodeos-{component}", timeout=5)
    response.raise_for_status()
    return response.json()["spec"]


def _seconds_between(earlier: str, later: str) -> float:
    def parse(text: str) -> datetime.datetime:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (parse(later) - parse(earlier)).total_seconds()
