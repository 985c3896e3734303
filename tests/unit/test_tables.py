"""Server-side printing: columns and cells as kubectl shows them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodeos.api.kinds import RESOURCES, by_kind
from nodeos.api.tables import column_definitions, table_for, table_rows
from nodeos.api.tables._common import human_duration
from nodeos.errors import ApiError

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def cells(kind: str, obj: dict, api_version: str = "v1") -> dict[str, Any]:
    """The row of ``obj`` as {column name: cell}."""
    resource = by_kind(api_version, kind)
    assert resource is not None
    row = table_rows(resource, [obj], "None", NOW)[0]
    names = [c["name"] for c in column_definitions(resource)]
    assert len(row["cells"]) == len(names)
    return dict(zip(names, row["cells"], strict=True))


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-1.5, "0s"), (0, "0s"), (45, "45s"), (119, "119s"), (120, "2m"), (125, "2m5s"),
    (599, "9m59s"), (600, "10m"), (179 * 60 + 59, "179m"), (3 * 3600, "3h"), (3 * 3600 + 300, "3h5m"),
    (8 * 3600, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"), (51 * 3600, "2d3h"), (8 * 86400, "8d"),
    (729 * 86400, "729d"), (730 * 86400, "2y"), (735 * 86400, "2y5d"), (8 * 365 * 86400, "8y"),
])
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


# -- Pod ---------------------------------------------------------------------------------------------

def pod(**status: Any) -> dict:
    return {"metadata": {"name": "web", "creationTimestamp": ago(minutes=5)},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]}, "status": {"phase": "Running", **status}}


def running(name: str, ready: bool = True, restarts: int = 0, **extra: Any) -> dict:
    return {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {}}, **extra}


def test_pod_columns() -> None:
    names = [(c["name"], c["priority"]) for c in column_definitions(by_kind("v1", "Pod"))]
    assert names == [("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0), ("IP", 1),
                     ("Node", 1), ("Nominated Node", 1), ("Readiness Gates", 1)]


def test_running_pod() -> None:
    row = cells("Pod", {**pod(containerStatuses=[running("a"), running("b")], podIP="10.1.0.5"),
                        "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}]}})
    assert row == {"Name": "web", "Ready": "2/2", "Status": "Running", "Restarts": "0", "Age": "5m",
                   "IP": "10.1.0.5", "Node": "n1", "Nominated Node": "<none>", "Readiness Gates": "<none>"}


def test_crash_looping_pod_shows_reason_and_last_restart() -> None:
    crashing = {"name": "b", "ready": False, "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(seconds=30)}}}
    row = cells("Pod", pod(containerStatuses=[running("a", restarts=1), crashing]))
    assert (row["Ready"], row["Status"], row["Restarts"]) == ("1/2", "CrashLoopBackOff", "5 (30s ago)")


@pytest.mark.parametrize(("statuses", "extra", "expected"), [
    ([], {}, "Running"),
    ([{"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}], {}, "Completed"),
    ([{"name": "a", "state": {"terminated": {"exitCode": 137}}}], {}, "ExitCode:137"),
    ([{"name": "a", "state": {"terminated": {"exitCode": 0, "signal": 9}}}], {}, "Signal:9"),
    ([{"name": "a", "state": {"waiting": {"reason": "ImagePullBackOff"}}}], {}, "ImagePullBackOff"),
    ([running("a"), {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
     {"conditions": [{"type": "Ready", "status": "False"}]}, "NotReady"),
    ([running("a"), {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
     {"conditions": [{"type": "Ready", "status": "True"}]}, "Running"),
    ([], {"phase": "Pending", "conditions": [{"type": "PodScheduled", "reason": "SchedulingGated"}]},
     "SchedulingGated"),
    ([], {"phase": "Failed", "reason": "Evicted"}, "Evicted"),
])
def test_pod_status_column(statuses: list, extra: dict, expected: str) -> None:
    assert cells("Pod", pod(containerStatuses=statuses, **extra))["Status"] == expected


def test_terminating_and_unknown_pods() -> None:
    deleting = {**pod(), "metadata": {"name": "web", "deletionTimestamp": ago(seconds=1)}}
    assert cells("Pod", deleting)["Status"] == "Terminating"
    lost = {**deleting, "status": {"phase": "Running", "reason": "NodeLost"}}
    assert cells("Pod", lost)["Status"] == "Unknown"
    done = {**deleting, "status": {"phase": "Succeeded"}}
    assert cells("Pod", done)["Status"] == "Succeeded"


def test_initializing_pods() -> None:
    spec = {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]}
    base = {"metadata": {"name": "p"}, "spec": spec}
    waiting = {**base, "status": {"phase": "Pending", "initContainerStatuses": [
        {"name": "i1", "state": {"terminated": {"exitCode": 0}}}, {"name": "i2", "state": {"running": {}}}]}}
    assert cells("Pod", waiting)["Status"] == "Init:1/2"
    failing = {**base, "status": {"phase": "Pending", "initContainerStatuses": [
        {"name": "i1", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    assert cells("Pod", failing)["Status"] == "Init:CrashLoopBackOff"
    assert cells("Pod", failing)["Restarts"] == "3"
    failed = {**base, "status": {"phase": "Pending", "initContainerStatuses": [
        {"name": "i1", "state": {"terminated": {"exitCode": 2}}}]}}
    assert cells("Pod", failed)["Status"] == "Init:ExitCode:2"


def test_sidecars_count_as_containers() -> None:
    sidecar_pod = {"metadata": {"name": "p"},
                   "spec": {"initContainers": [{"name": "s", "restartPolicy": "Always"}],
                            "containers": [{"name": "a"}]},
                   "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                              "initContainerStatuses": [{"name": "s", "started": True, "ready": True,
                                                         "restartCount": 2, "state": {"running": {}}}],
                              "containerStatuses": [running("a")]}}
    row = cells("Pod", sidecar_pod)
    assert (row["Ready"], row["Restarts"], row["Status"]) == ("2/2", "2", "Running")


def test_readiness_gates_and_nominated_node() -> None:
    gated = {**pod(), "spec": {"containers": [], "readinessGates": [{"conditionType": "a"}, {"conditionType": "b"}]}}
    gated["status"] = {"phase": "Running", "nominatedNodeName": "n2",
                       "conditions": [{"type": "a", "status": "True"}, {"type": "b", "status": "False"}]}
    row = cells("Pod", gated)
    assert (row["Readiness Gates"], row["Nominated Node"]) == ("1/2", "n2")


def test_finished_pods_carry_row_conditions() -> None:
    rows = table_rows(by_kind("v1", "Pod"), [pod(phase="Succeeded"), pod(phase="Failed"), pod()], "None", NOW)
    assert rows[0]["conditions"][0]["type"] == "Completed" and rows[0]["conditions"][0]["reason"] == "Succeeded"
    assert rows[1]["conditions"][0]["reason"] == "Failed"
    assert "conditions" not in rows[2]


# -- Node --------------------------------------------------------------------------------------------

def node(ready: str | None = "True", unschedulable: bool = False, **labels: str) -> dict:
    return {
        "metadata": {"name": "n1", "creationTimestamp": ago(days=3), "labels": labels},
        "spec": {"unschedulable": unschedulable},
        "status": {"conditions": [{"type": "Ready", "status": ready}] if ready else [],
                   "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "n1"}],
                   "nodeInfo": {"kubeletVersion": "v1.32.0-nodeos", "osImage": "Debian GNU/Linux 12",
                                "kernelVersion": "6.1.0", "containerRuntimeVersion": "podman://4.3.1"}},
    }


def test_node_row() -> None:
    row = cells("Node", node(**{"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": ""}))
    assert row == {"Name": "n1", "Status": "Ready", "Roles": "control-plane,worker", "Age": "3d",
                   "Version": "v1.32.0-nodeos", "Internal-IP": "10.0.0.1", "External-IP": "<none>",
                   "OS-Image": "Debian GNU/Linux 12", "Kernel-Version": "6.1.0",
                   "Container-Runtime": "podman://4.3.1"}


@pytest.mark.parametrize(("ready", "unschedulable", "status"), [
    ("True", False, "Ready"), ("False", False, "NotReady"), ("Unknown", False, "NotReady"),
    (None, False, "Unknown"), ("True", True, "Ready,SchedulingDisabled"),
])
def test_node_status(ready: str | None, unschedulable: bool, status: str) -> None:
    assert cells("Node", node(ready, unschedulable))["Status"] == status


def test_node_roles_from_legacy_label_and_none() -> None:
    assert cells("Node", node(**{"kubernetes.io/role": "edge"}))["Roles"] == "edge"
    assert cells("Node", node())["Roles"] == "<none>"
    bare = cells("Node", {"metadata": {"name": "n"}})
    assert (bare["OS-Image"], bare["Internal-IP"], bare["Age"]) == ("<unknown>", "<none>", "<unknown>")


# -- Service, Endpoints ------------------------------------------------------------------------------

def test_service_rows() -> None:
    svc = {"metadata": {"name": "web", "creationTimestamp": ago(hours=2)},
           "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                    "selector": {"app": "web"},
                    "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}}
    assert cells("Service", svc) == {"Name": "web", "Type": "NodePort", "Cluster-IP": "10.96.0.10",
                                     "External-IP": "<none>", "Port(s)": "80:30080/TCP,53/UDP", "Age": "120m",
                                     "Selector": "app=web"}
    lb = cells("Service", {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer"}})
    assert (lb["External-IP"], lb["Port(s)"], lb["Cluster-IP"], lb["Selector"]) == \
        ("<pending>", "<none>", "<none>", "<none>")
    served = {"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "externalIPs": ["1.2.3.4"]},
              "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example"}]}}}
    assert cells("Service", served)["External-IP"] == "5.6.7.8,lb.example,1.2.3.4"
    external = {"metadata": {"name": "x"}, "spec": {"type": "ExternalName", "externalName": "db.example"}}
    assert cells("Service", external)["External-IP"] == "db.example"


@pytest.mark.parametrize(("subsets", "text"), [
    ([], "<none>"),
    ([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}]}], "10.0.0.1:80,10.0.0.2:80"),
    ([{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 6)], "ports": [{"port": 80}]}],
     "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more..."),
    ([{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}, {"port": 443}]},
      {"addresses": [{"ip": "10.0.0.9"}, {"ip": "10.0.0.8"}], "ports": [{"port": 80}]}],
     "10.0.0.1:80,10.0.0.1:443,10.0.0.9:80 + 1 more..."),
    ([{"addresses": [{"ip": "10.0.0.1"}]}], "10.0.0.1"),
    ([{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}], "[fd00::1]:80"),
    ([{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}], ""),
])
def test_endpoints_column(subsets: list, text: str) -> None:
    assert cells("Endpoints", {"metadata": {"name": "web"}, "subsets": subsets})["Endpoints"] == text


# -- workloads ---------------------------------------------------------------------------------------

TEMPLATE = {"spec": {"containers": [{"name": "a", "image": "nginx:1"}, {"name": "b", "image": "busybox"}],
                     "nodeSelector": {"disk": "ssd"}}}


def test_deployment_row() -> None:
    deployment = {"metadata": {"name": "web", "creationTimestamp": ago(seconds=90)},
                  "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE},
                  "status": {"readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1}}
    assert cells("Deployment", deployment, "apps/v1") == {
        "Name": "web", "Ready": "1/3", "Up-to-date": 2, "Available": 1, "Age": "90s",
        "Containers": "a,b", "Images": "nginx:1,busybox", "Selector": "app=web"}
    assert cells("Deployment", {"metadata": {"name": "x"}}, "apps/v1")["Ready"] == "0/1"


def test_replica_set_and_replication_controller_rows() -> None:
    rs = {"metadata": {"name": "web-1"}, "spec": {"replicas": 2, "template": TEMPLATE, "selector": {
        "matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}},
        "status": {"replicas": 2, "readyReplicas": 1}}
    row = cells("ReplicaSet", rs, "apps/v1")
    assert (row["Desired"], row["Current"], row["Ready"], row["Selector"]) == (2, 2, 1, "app in (web)")
    rc = {"metadata": {"name": "web"}, "spec": {"replicas": 0, "selector": {"b": "2", "a": "1"}, "template": TEMPLATE}}
    row = cells("ReplicationController", rc)
    assert (row["Desired"], row["Current"], row["Selector"], row["Containers"]) == (0, 0, "a=1,b=2", "a,b")
    bad = cells("ReplicaSet", {"metadata": {"name": "x"}, "spec": {"selector": {"matchLabels": {"a": 1}}}}, "apps/v1")
    assert bad["Selector"] == "<invalid>"


def test_daemon_set_row() -> None:
    ds = {"metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": TEMPLATE},
          "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                     "updatedNumberScheduled": 3, "numberAvailable": 2}}
    assert list(cells("DaemonSet", ds, "apps/v1").values()) == [
        "agent", 3, 3, 2, 3, 2, "disk=ssd", "<unknown>", "a,b", "nginx:1,busybox", "app=agent"]


# -- Event, Lease, Namespace, default ----------------------------------------------------------------

def test_event_row() -> None:
    event = {"metadata": {"name": "web.17a"}, "type": "Warning", "reason": "BackOff", "message": " Back-off \n",
             "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{a}"},
             "source": {"component": "kubelet", "host": "n1"},
             "firstTimestamp": ago(hours=1), "lastTimestamp": ago(seconds=10), "count": 7}
    assert cells("Event", event) == {
        "Last Seen": "10s", "Type": "Warning", "Reason": "BackOff", "Object": "pod/web",
        "Subobject": "spec.containers{a}", "Source": "kubelet, n1", "Message": "Back-off",
        "First Seen": "60m", "Count": 7, "Name": "web.17a"}


def test_new_style_events() -> None:
    event = {"metadata": {"name": "e"}, "eventTime": "2024-06-01T11:59:00.000000Z", "reportingController": "sched",
             "involvedObject": {"kind": "Node"}, "series": {"count": 4, "lastObservedTime": ago(seconds=5)}}
    row = cells("Event", event)
    assert (row["First Seen"], row["Last Seen"], row["Count"], row["Object"], row["Source"]) == \
        ("60s", "5s", 4, "node", "sched")
    assert cells("Event", {"metadata": {"name": "e"}})["Count"] == 1


def test_lease_namespace_and_default_tables() -> None:
    lease = {"metadata": {"name": "scheduler", "creationTimestamp": ago(days=10)}, "spec": {"holderIdentity": "m1"}}
    assert cells("Lease", lease, "coordination.k8s.io/v1") == {"Name": "scheduler", "Holder": "m1", "Age": "10d"}
    ns = {"metadata": {"name": "default", "creationTimestamp": ago(days=400)}, "status": {"phase": "Active"}}
    assert cells("Namespace", ns) == {"Name": "default", "Status": "Active", "Age": "400d"}
    binding = {"metadata": {"name": "b", "creationTimestamp": "2024-01-01T00:00:00Z"}}
    assert cells("Binding", binding) == {"Name": "b", "Created At": "2024-01-01T00:00:00Z"}


# -- the Table object --------------------------------------------------------------------------------

def test_table_for_carries_list_metadata_and_partial_objects() -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"x": "y"}}}
    table = table_for(by_kind("v1", "Namespace"), [obj], list_meta={"resourceVersion": "42", "continue": "c"}, now=NOW)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42", "continue": "c"}
    assert table["columnDefinitions"][0] == {"name": "Name", "type": "string", "format": "name",
                                             "description": table["columnDefinitions"][0]["description"],
                                             "priority": 0}
    assert table["rows"][0]["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                          "metadata": {"name": "a", "labels": {"x": "y"}}}
    table["rows"][0]["object"]["metadata"]["labels"]["x"] = "changed"
    assert obj["metadata"]["labels"]["x"] == "y"


def test_include_object_modes() -> None:
    resource = by_kind("v1", "Namespace")
    obj = {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "a"}}
    assert table_rows(resource, [obj], "Object", NOW)[0]["object"] == obj
    assert "object" not in table_rows(resource, [obj], "None", NOW)[0]
    assert table_rows(resource, [], "Metadata", NOW) == []
    with pytest.raises(ApiError) as err:
        table_rows(resource, [obj], "Everything", NOW)
    assert err.value.code == 400


def test_every_kind_has_as_many_cells_as_columns() -> None:
    for resource in RESOURCES:
        columns = column_definitions(resource)
        assert columns[0]["name"] in ("Name", "Last Seen")
        assert all(set(c) == {"name", "type", "format", "description", "priority"} for c in columns)
        row = table_rows(resource, [{"metadata": {"name": "x"}}], "None", NOW)[0]
        assert len(row["cells"]) == len(columns), resource.kind


GARBAGE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.floats(allow_nan=False),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["metadata", "spec", "status", "name", "containers", "containerStatuses",
                                       "conditions", "state", "type", "ports", "subsets", "addresses",
                                       "creationTimestamp", "labels", "selector", "template", "involvedObject",
                                       "initContainerStatuses", "lastState", "terminated", "ip", "port"]),
                      children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(GARBAGE)
def test_printers_never_raise_on_garbage(obj: Any) -> None:
    for resource in RESOURCES:
        rows = table_rows(resource, [obj], "Metadata", NOW)
        assert len(rows) == 1 and len(rows[0]["cells"]) == len(column_definitions(resource))
