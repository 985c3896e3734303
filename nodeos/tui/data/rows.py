"""One display row per object, one function per view, as ``kubectl get`` prints them.

Cells come from the API server's own printers (``nodeos.api.tables``), which
follow Kubernetes' ``printPod``/``printNode``..., so the dashboard and kubectl
never disagree about a pod's STATUS. On top of kubectl each row carries:

- ``severity`` ("ok", "warn", "error", "info") for colour, always also
  spelled out in a cell (STATUS, READY 1/3, TYPE Warning): colour is never
  the only signal;
- ``sort``: one value per column that sorts naturally (ints for counts,
  creation time for AGE), so sorting never parses display text;
- ``stamps``: which cells are ages and since when, so the UI can refresh
  them for the visible rows (``cells_at``) without rebuilding any row;
- ``labels`` and a lower-cased ``search`` text for the filters.

A pod that cannot be scheduled shows STATUS ``Unschedulable`` (the
PodScheduled condition's reason) instead of kubectl's bare ``Pending``: it is
what an operator looking for trouble needs to see; ``pod_problem`` gives the
scheduler's message for describe.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from nodeos.api.tables import core, pods, workloads
from nodeos.api.tables._common import human_duration, parse_time
from nodeos.tui.data.store import Store, key_of

Severity = Literal["ok", "warn", "error", "info"]
Align = Literal["left", "right"]

_FAILED_REASONS = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "Error", "Failed", "Unschedulable",
                   "OOMKilled", "CreateContainerConfigError", "CreateContainerError", "InvalidImageName",
                   "RunContainerError", "ContainerCannotRun", "Evicted", "Unknown", "NodeLost", "ExitCode:",
                   "Signal:", "Init:Error", "Init:CrashLoopBackOff", "Init:ImagePullBackOff", "Init:ExitCode:")
_DONE_REASONS = ("Completed", "Succeeded")
CONTROL_PLANE_ROLES = ("control-plane", "master")


@dataclass(frozen=True, slots=True)
class Row:
    key: str  # the store key, "namespace/name" or "name"
    cells: tuple[str, ...]
    severity: Severity
    sort: tuple[Any, ...]  # one value per column, comparable with the same column of other rows; () if unprintable
    labels: Mapping[str, str] = field(default_factory=dict)
    stamps: Mapping[int, float] = field(default_factory=dict)  # cell index -> epoch seconds it is the age of
    search: str = ""  # the cells, lower-cased and joined, for the substring filter


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    width: int  # preferred width; the last column of a view takes what is left
    align: Align = "left"
    sort_key: Literal["text", "number", "time"] = "text"  # what Row.sort holds for this column


@dataclass(frozen=True, slots=True)
class ViewSpec:
    name: str  # the plural resource name: "pods"
    kind: str  # the Store kind: "Pod"
    aliases: tuple[str, ...]  # every name ``:`` accepts: plural, singular, short names
    columns: tuple[Column, ...]
    namespaced: bool
    row: Callable[[Mapping[str, Any], Store], Row]
    default_sort: tuple[str, bool] = ("NAME", False)  # (column, descending)

    def column_index(self, name: str) -> int:
        """The index of a column by name (case-insensitive); ValueError if there is none."""
        for i, column in enumerate(self.columns):
            if column.name.lower() == name.lower():
                return i
        raise ValueError(f"view {self.name} has no column {name!r}")


@dataclass(frozen=True, slots=True)
class Summary:
    masters: int
    nodes_ready: int
    nodes_total: int
    pods_running: int
    pods_total: int
    warnings_last_hour: int


# -- helpers -----------------------------------------------------------------------------------------

def _now() -> datetime:
    return datetime.now(UTC)


def _epoch(value: Any) -> float | None:
    when = parse_time(value)
    return when.timestamp() if when else None


def _created(obj: Mapping[str, Any]) -> float | None:
    return _epoch((obj.get("metadata") or {}).get("creationTimestamp"))


def _age_sort(stamp: float | None) -> float:
    """Younger first when ascending; objects without a time last."""
    return -stamp if stamp is not None else float("inf")


def _ip_sort(ip: str) -> tuple[int, int]:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return (9, 0)
    return (address.version, int(address))


def _make(obj: Mapping[str, Any], cells: list[Any], severity: Severity, sort: list[Any],
          stamps: Mapping[int, float | None] | None = None) -> Row:
    text = tuple(str(c) for c in cells)
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return Row(key=key_of(obj), cells=text, severity=severity, sort=tuple(sort), labels=labels,
               stamps={i: s for i, s in (stamps or {}).items() if s is not None},
               search="\x00".join(text).lower())


def _namespace(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def cells_at(row: Row, now: float | None = None) -> tuple[str, ...]:
    """The row's cells with its age cells recomputed for ``now`` (epoch seconds, default: the clock)."""
    if not row.stamps:
        return row.cells
    now = time.time() if now is None else now
    cells = list(row.cells)
    for index, stamp in row.stamps.items():
        cells[index] = human_duration(now - stamp)
    return tuple(cells)


# -- pods --------------------------------------------------------------------------------------------

def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return None


def pod_problem(pod: Mapping[str, Any]) -> str:
    """Why an unscheduled pod waits: the scheduler's message on PodScheduled=False, or ""."""
    scheduled = _condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False":
        return str(scheduled.get("message") or scheduled.get("reason") or "")
    return ""


def pod_status(pod: Mapping[str, Any], printed: str) -> str:
    """kubectl's STATUS, with the scheduling reason for a pod no node can take."""
    scheduled = _condition(pod, "PodScheduled")
    if (printed == "Pending" and not (pod.get("spec") or {}).get("nodeName") and scheduled
            and scheduled.get("status") == "False" and scheduled.get("reason")):
        return str(scheduled["reason"])
    return printed


def pod_severity(status: str, ready: str) -> Severity:
    if status.startswith(_FAILED_REASONS):
        return "error"
    if status in _DONE_REASONS:
        return "info"
    have, _, want = ready.partition("/")
    return "ok" if status == "Running" and have == want else "warn"


def _restart_count(text: str) -> int:
    head = text.split(" ", 1)[0]
    return int(head) if head.isdigit() else 0


def pod_row(pod: Mapping[str, Any], store: Store) -> Row:
    name, ready, printed, restarts, age, ip, node, *_ = pods.print_pod(pod, _now())
    status = pod_status(pod, printed)
    have, _, want = ready.partition("/")
    created = _created(pod)
    namespace = _namespace(pod)
    cells = [namespace, name, ready, status, restarts, age, ip, node]
    sort = [namespace, name, (int(have or 0) - int(want or 0), int(want or 0)), status, _restart_count(restarts),
            _age_sort(created), _ip_sort(ip), node]
    return _make(pod, cells, pod_severity(status, ready), sort, {5: created})


# -- nodes -------------------------------------------------------------------------------------------

def _percent(used: int, total: int) -> tuple[str, float]:
    if total <= 0:
        return "n/a", 0.0
    share = 100.0 * used / total
    return f"{share:.0f}%", share


def node_row(node: Mapping[str, Any], store: Store) -> Row:
    from nodeos.tui.data.usage import quantity

    name, status, roles, age, version, *_ = core.print_node(node, _now())
    load = store.node_load(name)
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    cpu_text, cpu = _percent(load.cpu, quantity(allocatable.get("cpu", 0), 1000))
    mem_text, mem = _percent(load.memory, quantity(allocatable.get("memory", 0)))
    severity: Severity = "error" if not status.startswith("Ready") else \
        "warn" if "SchedulingDisabled" in status else "ok"
    created = _created(node)
    cells = [name, status, roles, load.pods, cpu_text, mem_text, age, version]
    sort = [name, status, roles, load.pods, cpu, mem, _age_sort(created), version]
    return _make(node, cells, severity, sort, {6: created})


def is_master(node: Mapping[str, Any]) -> bool:
    return any(role in CONTROL_PLANE_ROLES for role in core.node_roles(node))


def node_ready(node: Mapping[str, Any]) -> bool:
    ready = _condition(node, "Ready")
    return bool(ready and ready.get("status") == "True")


# -- workloads ---------------------------------------------------------------------------------------

def deployment_row(d: Mapping[str, Any], store: Store) -> Row:
    name, ready, updated, available, age, *_ = workloads.print_deployment(d, _now())
    have, _, want = ready.partition("/")
    complete = int(have) == int(want) == updated == available
    created = _created(d)
    cells = [_namespace(d), name, ready, updated, available, age]
    sort = [_namespace(d), name, (int(have) - int(want), int(want)), updated, available, _age_sort(created)]
    return _make(d, cells, "ok" if complete else "warn", sort, {5: created})


def replicaset_row(rs: Mapping[str, Any], store: Store) -> Row:
    name, desired, current, ready, age, *_ = workloads.print_replica_set(rs, _now())
    created = _created(rs)
    cells = [_namespace(rs), name, desired, current, ready, age]
    sort = [_namespace(rs), name, desired, current, ready, _age_sort(created)]
    return _make(rs, cells, "ok" if ready == desired else "warn", sort, {5: created})


def daemonset_row(ds: Mapping[str, Any], store: Store) -> Row:
    name, desired, current, ready, updated, available, selector, age, *_ = workloads.print_daemon_set(ds, _now())
    created = _created(ds)
    cells = [_namespace(ds), name, desired, current, ready, updated, available, selector, age]
    sort = [_namespace(ds), name, desired, current, ready, updated, available, selector, _age_sort(created)]
    complete = ready == desired == available
    return _make(ds, cells, "ok" if complete else "warn", sort, {8: created})


# -- services, namespaces, events --------------------------------------------------------------------

def ready_addresses(endpoints: Mapping[str, Any] | None) -> int:
    subsets = (endpoints or {}).get("subsets") or ()
    return sum(len(s.get("addresses") or ()) for s in subsets if isinstance(s, Mapping))


def service_row(svc: Mapping[str, Any], store: Store) -> Row:
    name, kind, cluster_ip, _external, ports, age, _selector = core.print_service(svc, _now())
    count = ready_addresses(store.get("Endpoints", key_of(svc)))
    selects = bool((svc.get("spec") or {}).get("selector"))
    created = _created(svc)
    cells = [_namespace(svc), name, kind, cluster_ip, ports, count, age]
    sort = [_namespace(svc), name, kind, _ip_sort(cluster_ip), ports, count, _age_sort(created)]
    return _make(svc, cells, "warn" if selects and count == 0 else "ok", sort, {6: created})


def namespace_row(ns: Mapping[str, Any], store: Store) -> Row:
    name, phase, age = core.print_namespace(ns, _now())
    created = _created(ns)
    return _make(ns, [name, phase, age], "ok" if phase == "Active" else "warn",
                 [name, phase, _age_sort(created)], {2: created})


def event_time(ev: Mapping[str, Any]) -> float | None:
    """When an event last happened: series, lastTimestamp, eventTime or firstTimestamp."""
    series = ev.get("series")
    if isinstance(series, Mapping) and series.get("lastObservedTime"):
        return _epoch(series["lastObservedTime"])
    for field_ in ("lastTimestamp", "eventTime", "firstTimestamp"):
        if ev.get(field_):
            return _epoch(ev[field_])
    return _created(ev)


def event_row(ev: Mapping[str, Any], store: Store) -> Row:
    last, kind, reason, target, _sub, _source, message, *_ = core.print_event(ev, _now())
    when = event_time(ev)
    cells = [_namespace(ev), last, kind, reason, target, message]
    sort = [_namespace(ev), _age_sort(when), kind, reason, target, message]
    return _make(ev, cells, "warn" if kind == "Warning" else "info", sort, {1: when})


# -- the views ---------------------------------------------------------------------------------------

NS = Column("NAMESPACE", 12)
NAME = Column("NAME", 30)
AGE = Column("AGE", 5, "right", "time")


def _n(name: str, width: int) -> Column:
    return Column(name, width, "right", "number")


VIEWS: dict[str, ViewSpec] = {spec.name: spec for spec in (
    ViewSpec("pods", "Pod", ("pods", "pod", "po"),
             (NS, NAME, Column("READY", 5, "right", "number"), Column("STATUS", 17), _n("RESTARTS", 8), AGE,
              Column("IP", 15), Column("NODE", 12)), True, pod_row),
    ViewSpec("nodes", "Node", ("nodes", "node", "no"),
             (NAME, Column("STATUS", 24), Column("ROLES", 13), _n("PODS", 4), _n("CPU", 4), _n("MEM", 4), AGE,
              Column("VERSION", 10)), False, node_row),
    ViewSpec("deployments", "Deployment", ("deployments", "deployment", "deploy", "dp"),
             (NS, NAME, Column("READY", 7, "right", "number"), _n("UP-TO-DATE", 10), _n("AVAILABLE", 9), AGE),
             True, deployment_row),
    ViewSpec("replicasets", "ReplicaSet", ("replicasets", "replicaset", "rs"),
             (NS, NAME, _n("DESIRED", 7), _n("CURRENT", 7), _n("READY", 5), AGE), True, replicaset_row),
    ViewSpec("daemonsets", "DaemonSet", ("daemonsets", "daemonset", "ds"),
             (NS, NAME, _n("DESIRED", 7), _n("CURRENT", 7), _n("READY", 5), _n("UP-TO-DATE", 10),
              _n("AVAILABLE", 9), Column("NODE SELECTOR", 13), AGE), True, daemonset_row),
    ViewSpec("services", "Service", ("services", "service", "svc"),
             (NS, NAME, Column("TYPE", 9), Column("CLUSTER-IP", 15), Column("PORTS", 16), _n("ENDPOINTS", 9),
              AGE), True, service_row),
    ViewSpec("events", "Event", ("events", "event", "ev"),
             (NS, Column("LAST SEEN", 9, "right", "time"), Column("TYPE", 7), Column("REASON", 16),
              Column("OBJECT", 24), Column("MESSAGE", 40)), True, event_row, ("LAST SEEN", False)),
    ViewSpec("namespaces", "Namespace", ("namespaces", "namespace", "ns"),
             (NAME, Column("STATUS", 11), AGE), False, namespace_row),
)}


def view_for(name: str) -> ViewSpec | None:
    """The view a user means by ``name`` (``:po``, ``:deploy``...), or None."""
    lowered = name.strip().lower()
    for spec in VIEWS.values():
        if lowered in spec.aliases:
            return spec
    return None


def build_row(spec: ViewSpec, obj: Mapping[str, Any], store: Store) -> Row:
    """``spec.row``, but an object the printers choke on still gets a row (its key, flagged)."""
    try:
        return spec.row(obj, store)
    except Exception as exc:  # one odd object must not blank a view
        cells = ["" for _ in spec.columns]
        cells[1 if spec.namespaced else 0] = key_of(obj).rpartition("/")[2]
        cells[-1] = f"<unprintable: {type(exc).__name__}>"
        return _make(obj, cells, "error", [])  # no sort values: such rows sort last


# -- the header --------------------------------------------------------------------------------------

def _masters(store: Store, nodes: Iterable[Mapping[str, Any]]) -> int:
    """The control-plane Nodes; and a master need not be a Node (role "master" runs no agent), so at least
    the one this dashboard is connected to."""
    return max(1 if store.connected else 0, sum(1 for n in nodes if is_master(n)))


def summary(store: Store, now: float | None = None) -> Summary:
    """The cluster at a glance, for the header."""
    now = time.time() if now is None else now
    nodes = store.objects("Node").values()
    all_pods = store.objects("Pod").values()
    running = sum(1 for p in all_pods if (p.get("status") or {}).get("phase") == "Running")
    hour_ago = now - 3600
    warnings = sum(1 for ev in store.objects("Event").values()
                   if ev.get("type") == "Warning" and (event_time(ev) or 0) >= hour_ago)
    return Summary(masters=_masters(store, nodes), nodes_ready=sum(1 for n in nodes if node_ready(n)),
                   nodes_total=len(nodes), pods_running=running, pods_total=len(all_pods),
                   warnings_last_hour=warnings)
