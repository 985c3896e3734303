"""The dashboard's model without a terminal: rows as kubectl prints them, the header summary,
filtering, sorting, and incremental row caches."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from nodeos.tui.data.query import Query, QueryError, RowCache, RowCaches, select
from nodeos.tui.data.rows import VIEWS, cells_at, pod_problem, summary, view_for
from nodeos.tui.data.store import Store


def stamp(seconds_ago: float = 0) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, *, ns: str = "default", node: str | None = "worker-0", phase: str = "Running",
        ready: bool = True, waiting: str | None = None, terminated: dict | None = None, restarts: int = 0,
        labels: dict | None = None, age: float = 600, deleting: bool = False, conditions: list | None = None,
        cpu: str = "100m", memory: str = "128Mi", ip: str = "10.244.0.5") -> dict[str, Any]:
    state: dict[str, Any] = {"running": {"startedAt": stamp(age)}}
    if waiting:
        state = {"waiting": {"reason": waiting}}
    elif terminated is not None:
        state = {"terminated": terminated}
    meta: dict[str, Any] = {"name": name, "namespace": ns, "creationTimestamp": stamp(age), "labels": labels or {}}
    if deleting:
        meta["deletionTimestamp"] = stamp()
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx",
                                            "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}
    if node:
        spec["nodeName"] = node
    status: dict[str, Any] = {"phase": phase, "conditions": conditions or []}
    if node:
        status["podIP"] = ip
        status["containerStatuses"] = [{"name": "app", "ready": ready, "restartCount": restarts, "state": state}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def node(name: str, *, ready: str = "True", unschedulable: bool = False, roles: tuple[str, ...] = ()) -> dict:
    labels = {f"node-role.kubernetes.io/{r}": "" for r in roles}
    return {"kind": "Node", "metadata": {"name": name, "labels": labels, "creationTimestamp": stamp(3600)},
            "spec": {"unschedulable": True} if unschedulable else {},
            "status": {"conditions": [{"type": "Ready", "status": ready}],
                       "allocatable": {"cpu": "2", "memory": "1Gi", "pods": "110"},
                       "nodeInfo": {"kubeletVersion": "v1.32.0-nodeos"}}}


def store_with(kind: str, *objects: dict) -> Store:
    store = Store()
    for obj in objects:
        store.put(kind, obj)
    return store


def one_row(kind: str, view: str, obj: dict, store: Store | None = None):
    store = store or Store()
    store.put(kind, obj)
    return dict(zip([c.name for c in VIEWS[view].columns], select(store, Query(view))[0].cells, strict=True)), \
        select(store, Query(view))[0]


# -- pods ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "status", "severity"), [
    ({}, "Running", "ok"),
    ({"ready": False}, "Running", "warn"),
    ({"waiting": "CrashLoopBackOff", "restarts": 4}, "CrashLoopBackOff", "error"),
    ({"waiting": "ImagePullBackOff", "phase": "Pending"}, "ImagePullBackOff", "error"),
    ({"waiting": "ContainerCreating", "phase": "Pending"}, "ContainerCreating", "warn"),
    ({"deleting": True}, "Terminating", "warn"),
    ({"phase": "Succeeded", "ready": False, "terminated": {"exitCode": 0, "reason": "Completed"}},
     "Completed", "info"),
    ({"phase": "Failed", "ready": False, "terminated": {"exitCode": 1, "reason": "Error"}}, "Error", "error"),
    ({"phase": "Pending", "node": None}, "Pending", "warn"),
    ({"phase": "Pending", "node": None, "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/3 nodes are available: 3 Insufficient cpu."}]}, "Unschedulable", "error"),
])
def test_pod_status_as_kubectl_prints_it(kwargs, status, severity):
    cells, row = one_row("Pod", "pods", pod("web-1", **kwargs))
    assert cells["STATUS"] == status
    assert row.severity == severity
    assert cells["NAMESPACE"] == "default" and cells["NAME"] == "web-1"


def test_pod_cells():
    cells, row = one_row("Pod", "pods", pod("web-1", waiting="CrashLoopBackOff", restarts=3, ready=False))
    assert cells == {"NAMESPACE": "default", "NAME": "web-1", "READY": "0/1", "STATUS": "CrashLoopBackOff",
                     "RESTARTS": "3", "AGE": "10m", "IP": "10.244.0.5", "NODE": "worker-0"}
    assert row.key == "default/web-1"
    unscheduled = pod("big", node=None, phase="Pending", conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes: no cpu"}])
    cells, _ = one_row("Pod", "pods", unscheduled)
    assert (cells["READY"], cells["IP"], cells["NODE"]) == ("0/1", "<none>", "<none>")
    assert pod_problem(unscheduled) == "0/3 nodes: no cpu"


def test_age_cells_refresh_without_rebuilding():
    _, row = one_row("Pod", "pods", pod("web-1", age=30))
    assert row.cells[5] == "30s"
    assert cells_at(row, time.time() + 600)[5] == "10m"


# -- nodes --------------------------------------------------------------------------------------------

def test_node_rows_count_pods_and_requests():
    store = store_with("Node", node("worker-0"), node("worker-1", unschedulable=True),
                       node("worker-2", ready="False"), node("master", roles=("control-plane",)))
    store.put("Pod", pod("a", cpu="500m", memory="256Mi"))
    store.put("Pod", pod("b", cpu="500m", memory="256Mi"))
    store.put("Pod", pod("done", phase="Succeeded", ready=False, terminated={"exitCode": 0, "reason": "Completed"}))
    rows = {row.key: row for row in select(store, Query("nodes"))}
    assert rows["worker-0"].cells == ("worker-0", "Ready", "<none>", "2", "50%", "50%", "60m", "v1.32.0-nodeos")
    assert rows["worker-1"].cells[1] == "Ready,SchedulingDisabled" and rows["worker-1"].severity == "warn"
    assert rows["worker-2"].cells[1] == "NotReady" and rows["worker-2"].severity == "error"
    assert rows["master"].cells[2] == "control-plane" and rows["master"].severity == "ok"


def test_a_pod_change_marks_its_nodes_row_changed():
    store = store_with("Node", node("worker-0"), node("worker-1"))
    caches = RowCaches(store, ["nodes"])
    store.put("Pod", pod("a", node="worker-0"))
    assert caches.refresh() == {"nodes"}
    assert caches["nodes"].get("worker-0").cells[3] == "1"
    store.put("Pod", pod("a", node="worker-1"))  # moved (re-created elsewhere under the same name)
    caches.refresh()
    assert caches["nodes"].get("worker-0").cells[3] == "0" and caches["nodes"].get("worker-1").cells[3] == "1"
    store.remove("Pod", "default/a")
    caches.refresh()
    assert caches["nodes"].get("worker-1").cells[3] == "0"


# -- workloads, services, events ----------------------------------------------------------------------

def test_workload_rows():
    meta = {"name": "web", "namespace": "shop", "creationTimestamp": stamp(120)}
    deployment = {"metadata": meta, "spec": {"replicas": 3},
                  "status": {"readyReplicas": 1, "updatedReplicas": 3, "availableReplicas": 1}}
    cells, row = one_row("Deployment", "deployments", deployment)
    assert list(cells.values()) == ["shop", "web", "1/3", "3", "1", "2m"] and row.severity == "warn"
    rs = {"metadata": {**meta, "name": "web-5d8f"}, "spec": {"replicas": 2},
          "status": {"replicas": 2, "readyReplicas": 2}}
    cells, row = one_row("ReplicaSet", "replicasets", rs)
    assert list(cells.values()) == ["shop", "web-5d8f", "2", "2", "2", "2m"] and row.severity == "ok"
    ds = {"metadata": {**meta, "name": "agent"}, "spec": {"template": {"spec": {"nodeSelector": {"os": "linux"}}}},
          "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                     "updatedNumberScheduled": 3, "numberAvailable": 2}}
    cells, row = one_row("DaemonSet", "daemonsets", ds)
    assert list(cells.values()) == ["shop", "agent", "3", "3", "2", "3", "2", "os=linux", "2m"]
    assert row.severity == "warn"


def test_service_rows_count_ready_endpoints():
    svc = {"metadata": {"name": "web", "namespace": "default", "creationTimestamp": stamp(60)},
           "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "selector": {"app": "web"},
                    "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}}
    store = store_with("Service", svc)
    caches = RowCaches(store, ["services"])
    row = caches["services"].get("default/web")
    assert row.cells == ("default", "web", "NodePort", "10.96.0.10", "80:30080/TCP", "0", "60s")
    assert row.severity == "warn"
    store.put("Endpoints", {"metadata": {"name": "web", "namespace": "default"}, "subsets": [
        {"addresses": [{"ip": "10.244.0.5"}, {"ip": "10.244.1.5"}], "notReadyAddresses": [{"ip": "10.244.2.5"}],
         "ports": [{"port": 80}]}]})
    assert caches.refresh() == {"services"}
    row = caches["services"].get("default/web")
    assert row.cells[5] == "2" and row.severity == "ok"


def event(name: str, kind: str, seconds_ago: float, reason: str = "BackOff", message: str = "Back-off") -> dict:
    return {"metadata": {"name": name, "namespace": "default", "creationTimestamp": stamp(seconds_ago)},
            "type": kind, "reason": reason, "message": message, "count": 1,
            "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default"},
            "firstTimestamp": stamp(seconds_ago), "lastTimestamp": stamp(seconds_ago)}


def test_events_newest_first_and_warnings_flagged():
    store = store_with("Event", event("old", "Normal", 7200, "Scheduled", "assigned"),
                       event("new", "Warning", 5), event("mid", "Warning", 600))
    rows = select(store, Query("events"))
    assert [r.key for r in rows] == ["default/new", "default/mid", "default/old"]
    assert rows[0].cells == ("default", "5s", "Warning", "BackOff", "pod/web-1", "Back-off")
    assert [r.severity for r in rows] == ["warn", "warn", "info"]


def test_summary():
    store = store_with("Node", node("master", roles=("control-plane",)), node("w0"), node("w1", ready="False"))
    for i, phase in enumerate(["Running", "Running", "Pending"]):
        store.put("Pod", pod(f"p{i}", phase=phase))
    for ev in (event("a", "Warning", 60), event("b", "Warning", 7200), event("c", "Normal", 60)):
        store.put("Event", ev)
    s = summary(store)
    assert (s.masters, s.nodes_ready, s.nodes_total, s.pods_running, s.pods_total, s.warnings_last_hour) == \
        (1, 2, 3, 2, 3, 1)


def test_views_answer_to_k9s_names():
    for alias, view in [("po", "pods"), ("no", "nodes"), ("deploy", "deployments"), ("dp", "deployments"),
                        ("rs", "replicasets"), ("ds", "daemonsets"), ("svc", "services"), ("ev", "events"),
                        ("ns", "namespaces"), ("Pods", "pods")]:
        assert view_for(alias).name == view
    assert view_for("nope") is None


def test_an_unprintable_object_still_gets_a_row():
    cells, row = one_row("Pod", "pods", {"metadata": {"name": "odd", "namespace": "x"}, "status": "garbage"})
    assert row.key == "x/odd" and cells["NAME"] == "odd"


# -- filtering and sorting ----------------------------------------------------------------------------

@pytest.fixture
def pods_store() -> Store:
    return store_with("Pod",
                      pod("web-1", labels={"app": "web", "tier": "front"}, restarts=2, age=100),
                      pod("web-2", labels={"app": "web", "tier": "back"}, restarts=10, age=50),
                      pod("db-0", ns="data", labels={"app": "db"}, waiting="CrashLoopBackOff", restarts=5, age=900),
                      pod("batch", ns="data", labels={"app": "batch"}, phase="Pending", node=None, age=10))


def names(rows) -> list[str]:
    return [r.key for r in rows]


def test_filter_by_substring_namespace_and_labels(pods_store):
    assert names(select(pods_store, Query("pods", text="crashloop"))) == ["data/db-0"]
    assert names(select(pods_store, Query("pods", namespace="default"))) == ["default/web-1", "default/web-2"]
    assert names(select(pods_store, Query.parse("pods", None, "-l app=web,tier in (back)"))) == ["default/web-2"]
    assert names(select(pods_store, Query.parse("pods", None, "-l app!=web"))) == ["data/batch", "data/db-0"]
    assert names(select(pods_store, Query.parse("pods", "data", "WEB"))) == []
    with pytest.raises(QueryError):
        select(pods_store, Query.parse("pods", None, "-l app in (web"))


def test_sort_by_any_column(pods_store):
    assert names(select(pods_store, Query("pods"))) == ["data/batch", "data/db-0", "default/web-1", "default/web-2"]
    assert names(select(pods_store, Query("pods"), "RESTARTS", True)) == \
        ["default/web-2", "data/db-0", "default/web-1", "data/batch"]
    assert names(select(pods_store, Query("pods"), "AGE")) == \
        ["data/batch", "default/web-2", "default/web-1", "data/db-0"]
    assert names(select(pods_store, Query("pods"), "STATUS")) == \
        ["data/db-0", "data/batch", "default/web-1", "default/web-2"]  # ties by key


def test_row_cache_rebuilds_only_changed_rows():
    store = store_with("Pod", *(pod(f"p{i:04}") for i in range(1000)))
    cache = RowCache("pods")
    cache.update(store)
    assert len(cache) == 1000 and cache.builds == 1000
    store.take_changes()
    for i in range(100):
        store.put("Pod", pod(f"p{i:04}", waiting="CrashLoopBackOff"))
    store.remove("Pod", "default/p0999")
    version = cache.version
    assert cache.update(store, store.take_changes()["Pod"]) == 101
    assert cache.builds == 1000 + 100 and len(cache) == 999 and cache.version == version + 1
    assert len(cache.select(Query("pods", text="crashloop"))) == 100
    assert store.take_changes() == {}


def test_store_is_a_snapshot_and_counts_versions():
    store = Store()
    version = store.version
    store.put("Pod", pod("a"))
    snapshot = store.objects("Pod")
    store.put("Pod", pod("b"))
    assert list(snapshot) == ["default/a"] and store.count("Pod") == 2
    assert store.version > version
    store.remove("Pod", "default/zzz")  # unknown: no change
    assert store.take_changes() == {"Pod": {"default/a", "default/b"}, "Node": {"worker-0"}}
    store.set_connected(True)
    assert store.connected and store.error == ""
    store.set_connected(False, "refused")
    assert not store.connected and store.error == "refused"


def _changed(cache: RowCache, store: Store) -> None:
    cache.update(store, store.take_changes().get("Pod", set()))


def test_a_kept_selection_takes_changes_that_move_no_row_in_place():
    store = store_with("Pod", *(pod(f"p{i:02}", restarts=i % 3) for i in range(20)))
    store.take_changes()
    cache = RowCache("pods")
    cache.update(store)
    by_name = cache.select(Query("pods"))
    assert cache.sorts == 1
    store.put("Pod", pod("p05", restarts=7, labels={"tick": "1"}))  # NAME order: nothing moves
    _changed(cache, store)
    rows = cache.select(Query("pods"))
    assert cache.sorts == 1 and names(rows) == names(by_name)
    assert rows[5].cells[4] == "7"  # the new row, in place
    assert cache.select(Query("pods"), "RESTARTS", True)[0].key == "default/p05"
    assert cache.sorts == 2
    store.put("Pod", pod("p06", restarts=9))  # moves under RESTARTS: that selection is sorted again
    _changed(cache, store)
    assert names(cache.select(Query("pods"), "RESTARTS", True))[:2] == ["default/p06", "default/p05"]
    assert cache.sorts == 3
    assert cache.select(Query("pods"))[6].cells[4] == "9" and cache.sorts == 3  # NAME kept it in place


def test_a_kept_selection_follows_rows_into_and_out_of_its_filter():
    store = store_with("Pod", *(pod(f"p{i:02}") for i in range(10)))
    store.take_changes()
    cache = RowCache("pods")
    cache.update(store)
    crashing = Query("pods", text="crashloop")
    assert cache.select(crashing) == []
    store.put("Pod", pod("p03", waiting="CrashLoopBackOff"))
    _changed(cache, store)
    assert names(cache.select(crashing)) == ["default/p03"]
    store.put("Pod", pod("p04", ns="other"))  # a new row outside the filter: the selection still holds
    _changed(cache, store)
    sorts = cache.sorts
    assert names(cache.select(crashing)) == ["default/p03"] and cache.sorts == sorts
    store.remove("Pod", "default/p03")
    _changed(cache, store)
    assert cache.select(crashing) == []
    assert len(cache.select(Query("pods"))) == 10  # p03 gone, other/p04 added


def test_going_back_to_the_unfiltered_view_sorts_nothing():
    store = store_with("Pod", *(pod(f"p{i:02}") for i in range(30)))
    cache = RowCache("pods")
    cache.update(store)
    cache.select(Query("pods"))
    cache.select(Query("pods", text="p1"))
    cache.select(Query("pods", text="p1", labels=""))
    sorts = cache.sorts
    assert len(cache.select(Query("pods"))) == 30 and cache.sorts == sorts  # Esc: the kept selection
