"""Pods and nodes as the scheduler reads them (requests, ports, taints), and its cache.

Also the builders the other scheduler tests use: Kubernetes JSON for a Node
or a Pod with just the fields a test cares about.
"""

from __future__ import annotations

from typing import Any

from nodeos.scheduler.cache import SchedulerCache
from nodeos.scheduler.info import DEFAULT_MEMORY, DEFAULT_MILLI_CPU, NodeInfo, PodInfo, wants_scheduling

GI = 1024**3
MI = 1024**2


def node(name: str, cpu: str = "4", memory: str = "8Gi", pods: int = 110, *,
         labels: dict[str, str] | None = None, taints: list[dict[str, Any]] | None = None,
         unschedulable: bool = False, ready: str = "True") -> dict[str, Any]:
    allocatable = {"cpu": cpu, "memory": memory, "pods": str(pods)}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": {**({"taints": taints} if taints else {}), **({"unschedulable": True} if unschedulable else {})},
        "status": {"capacity": allocatable, "allocatable": allocatable,
                   "conditions": [{"type": "Ready", "status": ready, "reason": "KubeletReady"}]},
    }


def pod(name: str, cpu: str | None = None, memory: str | None = None, *, namespace: str = "default",
        host_port: int | None = None, tolerations: list[dict[str, Any]] | None = None,
        node_selector: dict[str, str] | None = None, affinity: dict[str, Any] | None = None,
        owner: str | None = None, node_name: str | None = None, uid: str | None = None) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: dict[str, Any] = {"name": "c", "image": "busybox"}
    if requests:
        container["resources"] = {"requests": requests}
    if host_port:
        container["ports"] = [{"containerPort": 80, "hostPort": host_port}]
    spec: dict[str, Any] = {"containers": [container]}
    for key, value in (("tolerations", tolerations), ("nodeSelector", node_selector), ("nodeName", node_name)):
        if value:
            spec[key] = value
    if affinity:
        spec["affinity"] = {"nodeAffinity": affinity}
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}"}
    if owner:
        metadata["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                        "uid": f"uid-{owner}", "controller": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def node_info(name: str = "n1", **kwargs: Any) -> NodeInfo:
    info = NodeInfo(name)
    info.set_node(node(name, **kwargs))
    return info


def pod_info(name: str = "p", *args: Any, **kwargs: Any) -> PodInfo:
    return PodInfo.from_pod(pod(name, *args, **kwargs))


# -- PodInfo ---------------------------------------------------------------------------

def test_requests_sum_containers_and_take_the_largest_init_container() -> None:
    spec = pod("p")
    spec["spec"]["containers"] = [
        {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
        {"name": "b", "resources": {"requests": {"cpu": "0.5"}}},
    ]
    spec["spec"]["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": "1", "memory": "32Mi"}}}]
    info = PodInfo.from_pod(spec)
    assert (info.cpu, info.memory) == (1000, 64 * MI)  # init's 1 cpu beats 750m; containers' 64Mi beat 32Mi
    # scoring counts the container without a memory request as 200Mi
    assert info.nonzero_memory == 64 * MI + DEFAULT_MEMORY


def test_a_pod_without_requests_asks_for_nothing_but_scores_as_a_small_pod() -> None:
    info = pod_info("p")
    assert (info.cpu, info.memory) == (0, 0)
    assert (info.nonzero_cpu, info.nonzero_memory) == (DEFAULT_MILLI_CPU, DEFAULT_MEMORY)


def test_overhead_ports_owner_and_affinity_are_parsed() -> None:
    spec = pod("p", "100m", owner="rs1", host_port=8080,
               affinity={"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{}]},
                         "preferredDuringSchedulingIgnoredDuringExecution": [
                             {"weight": 5, "preference": {"matchExpressions": []}}]})
    spec["spec"]["overhead"] = {"cpu": "50m"}
    info = PodInfo.from_pod(spec)
    assert info.cpu == 150 and info.owner_uid == "uid-rs1"
    assert info.host_ports == (("0.0.0.0", "TCP", 8080),)
    assert info.required_terms == ({},) and [w for w, _ in info.preferred_terms] == [5]


def test_which_pods_are_ours() -> None:
    assert wants_scheduling(pod("p"))
    assert not wants_scheduling(pod("p", node_name="n1"))
    other = pod("p")
    other["spec"]["schedulerName"] = "someone-else"
    assert not wants_scheduling(other)
    for name in ("default-scheduler", "nodeos"):
        other["spec"]["schedulerName"] = name
        assert wants_scheduling(other)
    other["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert not wants_scheduling(other)


# -- NodeInfo ------------------------------------------------------------------------------

def test_node_facts_and_whether_they_changed() -> None:
    info = NodeInfo("n1")
    taints = [{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "PreferNoSchedule"}]
    assert info.set_node(node("n1", "2500m", "1Gi", 10, taints=taints))
    assert (info.allocatable_cpu, info.allocatable_memory, info.allocatable_pods) == (2500, GI, 10)
    assert [t["key"] for t in info.hard_taints] == ["a"] and [t["key"] for t in info.soft_taints] == ["b"]
    assert info.ready == "True"
    heartbeat = node("n1", "2500m", "1Gi", 10, taints=taints)
    heartbeat["status"]["conditions"][0]["lastHeartbeatTime"] = "2024-01-01T00:00:00Z"
    assert not info.set_node(heartbeat)  # a heartbeat changes nothing the scheduler reads
    assert info.set_node(node("n1", "2500m", "1Gi", 10, taints=taints, ready="Unknown"))


# -- the cache ----------------------------------------------------------------------------------

def test_assume_confirm_and_forget() -> None:
    cache = SchedulerCache(assumed_ttl=5)
    cache.set_node(node("n1"))
    p = pod_info("p", "500m", "1Gi", owner="rs")
    cache.assume(p, "n1")
    n1 = cache.node("n1")
    assert (n1.requested_cpu, n1.requested_memory, n1.pod_count) == (500, GI, 1)
    assert cache.owner_counts("uid-rs") == {"n1": 1} and cache.is_assumed("default/p")
    cache.forget("default/p")
    assert (n1.requested_cpu, n1.pod_count) == (0, 0) and cache.owner_counts("uid-rs") == {}

    cache.assume(p, "n1")
    cache.finish_binding("default/p", now=100)
    cache.add_pod(pod("p", "500m", "1Gi", owner="rs", node_name="n1"))  # the informer confirms it
    assert not cache.is_assumed("default/p") and n1.pod_count == 1
    assert cache.expire_assumed(now=1000) == []
    cache.forget("default/p")  # a confirmed pod is not forgotten
    assert n1.pod_count == 1
    cache.remove_pod("default/p")
    assert n1.pod_count == 0


def test_a_bound_pod_the_informer_never_reports_expires() -> None:
    cache = SchedulerCache(assumed_ttl=5)
    cache.set_node(node("n1"))
    cache.assume(pod_info("p", "1"), "n1")
    assert cache.expire_assumed(now=10**9) == []  # still binding: never expires
    cache.finish_binding("default/p", now=100)
    assert cache.expire_assumed(now=104) == []
    assert cache.expire_assumed(now=105) == ["default/p"]
    assert cache.node("n1").requested_cpu == 0


def test_the_api_overrides_an_assumption_to_another_node() -> None:
    cache = SchedulerCache()
    for name in ("n1", "n2"):
        cache.set_node(node(name))
    cache.assume(pod_info("p", "1"), "n1")
    cache.add_pod(pod("p", "1", node_name="n2"))
    assert cache.node("n1").requested_cpu == 0 and cache.node("n2").requested_cpu == 1000


def test_pods_on_unknown_and_removed_nodes() -> None:
    cache = SchedulerCache()
    cache.add_pod(pod("p", "1", node_name="ghost"))  # bound before the Node was seen
    assert cache.nodes() == []
    cache.set_node(node("ghost"))
    assert [n.name for n in cache.nodes()] == ["ghost"] and cache.node("ghost").requested_cpu == 1000
    cache.remove_node("ghost")
    assert cache.nodes() == [] and cache.node("ghost") is not None  # its pod is still accounted
    cache.remove_pod("default/p")
    assert cache.node("ghost") is None
