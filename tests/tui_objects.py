"""A fixed little cluster for the dashboard's snapshot and unit tests: same objects, same clock, every run.

``NOW`` is the clock the app is given (``DashboardApp(now=lambda: NOW)``), so
ages print the same. ``RecordingFeed`` stands in for the Feed where no API is
needed: it records the actions it is asked to run and answers with a message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from nodeos.tui.data.feed import LineBuffer
from nodeos.tui.data.store import Store

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def ago(seconds: float) -> str:
    return (datetime.fromtimestamp(NOW, UTC) - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(name: str, *, ready: bool = True, cordoned: bool = False, master: bool = False) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name}
    if master:
        labels["node-role.kubernetes.io/control-plane"] = ""
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": f"uid-{name}", "labels": labels, "creationTimestamp": ago(86400)},
            "spec": {"unschedulable": True} if cordoned else {},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "Unknown",
                                       "reason": "KubeletReady" if ready else "NodeStatusUnknown"}],
                       "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "nodeInfo": {"kubeletVersion": "v1.32.0-nodeos"}}}


def pod(name: str, *, ns: str = "shop", node_name: str | None = "worker-0", app: str = "web", age: float = 3600,
        waiting: str | None = None, restarts: int = 0, phase: str = "Running", ip: str = "10.244.1.5",
        terminated: str | None = None) -> dict[str, Any]:
    ready = waiting is None and terminated is None and phase == "Running"
    state: dict[str, Any] = {"running": {"startedAt": ago(age)}}
    if waiting:
        state = {"waiting": {"reason": waiting, "message": f"back-off restarting failed container app in {name}"}}
    if terminated:
        state = {"terminated": {"reason": terminated, "exitCode": 1}}
    status: dict[str, Any] = {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False"},
        {"type": "PodScheduled", "status": "True" if node_name else "False",
         "reason": None if node_name else "Unschedulable",
         "message": None if node_name else "0/3 nodes are available: 3 Insufficient cpu."}]}
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx:1.27",
                                            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
                                           {"name": "sidecar", "image": "busybox"}]}
    if node_name:
        spec["nodeName"] = node_name
        status["podIP"] = ip
        status["containerStatuses"] = [
            {"name": "app", "ready": ready, "restartCount": restarts, "state": state},
            {"name": "sidecar", "ready": True, "restartCount": 0, "state": {"running": {"startedAt": ago(age)}}}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-{ns}-{name}", "labels": {"app": app},
                         "creationTimestamp": ago(age)},
            "spec": spec, "status": status}


def deployment(name: str, *, ns: str = "shop", replicas: int = 3, ready: int = 3) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-d-{name}", "generation": 2,
                         "creationTimestamp": ago(7200), "labels": {"app": name}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}},
            "status": {"observedGeneration": 2, "replicas": replicas, "readyReplicas": ready,
                       "updatedReplicas": replicas, "availableReplicas": ready,
                       "conditions": [{"type": "Available", "status": "True" if ready == replicas else "False",
                                       "reason": "MinimumReplicasAvailable"}]}}


def replicaset(name: str, *, ns: str = "shop", replicas: int = 3, ready: int = 3) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": ns, "uid": f"uid-rs-{name}", "creationTimestamp": ago(7200)},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
            "status": {"replicas": replicas, "readyReplicas": ready}}


def service(name: str, *, ns: str = "shop", ip: str = "10.96.0.20", port: int = 80) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": ago(7200)},
            "spec": {"type": "ClusterIP", "clusterIP": ip, "selector": {"app": name},
                     "ports": [{"port": port, "protocol": "TCP", "targetPort": port}]}}


def endpoints(name: str, *, ns: str = "shop", ips: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": ns},
            "subsets": [{"addresses": [{"ip": ip} for ip in ips], "ports": [{"port": 80}]}] if ips else []}


def event(name: str, *, ns: str = "shop", kind: str = "Pod", obj: str = "web-1", reason: str = "Started",
          message: str = "Started container app", warning: bool = False, seconds_ago: float = 60,
          count: int = 1) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": ago(seconds_ago)},
            "involvedObject": {"kind": kind, "name": obj, "namespace": ns, "uid": f"uid-{ns}-{obj}"},
            "reason": reason, "message": message, "type": "Warning" if warning else "Normal", "count": count,
            "firstTimestamp": ago(seconds_ago), "lastTimestamp": ago(seconds_ago)}


def fixed_store(connected: bool = True) -> Store:
    """A master, two workers (one cordoned), a shop with a crash-looping and an unschedulable pod, events."""
    store = Store()
    for obj in (node("master", master=True), node("worker-0"), node("worker-1", cordoned=True)):
        store.put("Node", obj)
    pods = [pod("web-1", ip="10.244.1.5"), pod("web-2", node_name="worker-1", ip="10.244.2.7", age=1800),
            pod("web-3", waiting="CrashLoopBackOff", restarts=7, age=900, ip="10.244.1.9"),
            pod("api-1", app="api", ip="10.244.2.3", age=5400),
            pod("batch-1", app="batch", node_name=None, phase="Pending", age=120),
            pod("coredns-1", ns="kube-system", app="dns", ip="10.244.0.2", age=86000)]
    for obj in pods:
        store.put("Pod", obj)
    store.put("Deployment", deployment("web", ready=2))
    store.put("Deployment", deployment("api", replicas=1, ready=1))
    store.put("ReplicaSet", replicaset("web-5d8f", ready=2))
    store.put("ReplicaSet", replicaset("api-7c9b", replicas=1, ready=1))
    store.put("Service", service("web"))
    store.put("Endpoints", endpoints("web", ips=("10.244.1.5", "10.244.2.7")))
    store.put("Service", service("api", ip="10.96.0.21", port=8080))
    events = [event("e1", obj="web-3", reason="BackOff", message="Back-off restarting failed container app",
                    warning=True, seconds_ago=30, count=12),
              event("e2", obj="batch-1", reason="FailedScheduling",
                    message="0/3 nodes are available: 3 Insufficient cpu.", warning=True, seconds_ago=90),
              event("e3", obj="web-1", reason="Started", message="Started container app", seconds_ago=3000),
              event("e4", kind="Deployment", obj="web", reason="ScalingReplicaSet",
                    message="Scaled up replica set web-5d8f to 3", seconds_ago=3500)]
    for obj in events:
        store.put("Event", obj)
    store.set_connected(connected, "" if connected else "connection refused")
    return store


class RecordingFeed:
    """Runs actions nowhere: records each, answers as kubectl would; logs are a few fixed lines."""

    def __init__(self, log_lines: tuple[str, ...] = ("hello", "world")) -> None:
        self.calls: list[Any] = []
        self.log_lines = log_lines

    def call(self, action: Any) -> str:
        self.calls.append(action)
        return "done"

    def follow(self, source: Any, buffer: LineBuffer) -> Any:
        for line in self.log_lines:
            buffer.add(line)
        buffer.finish()
        return _NoSubscription()


class _NoSubscription:
    def cancel(self) -> None:
        pass
