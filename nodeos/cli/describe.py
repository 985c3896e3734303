"""``nodeos describe``: an object, its status and its recent events, for people.

Every kind gets the common header (name, namespace, labels, annotations,
creation time, owner), its conditions as a table, and the Events whose
``involvedObject`` is this object. Kinds people describe most (pods,
workloads, services, nodes) get their highlights; the rest get their spec
and status printed as nested fields.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from nodeos.api.kinds import Resource, resolve
from nodeos.cli.common import command, global_flags, targets
from nodeos.cli.printers import TablePrinter, cell, human_age
from nodeos.client import ApiClient
from nodeos.errors import ApiError

Obj = dict[str, Any]
HIDDEN_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
STATE_FIELDS = {"reason": "Reason", "message": "Message", "exitCode": "Exit Code",
                "startedAt": "Started", "finishedAt": "Finished"}


class Doc:
    """Lines of ``Label:  value`` at indent levels, values aligned per level like kubectl's."""

    def __init__(self) -> None:
        # (level, label, value): value None is a section heading, label None a line of free text
        self.rows: list[tuple[int, str | None, str | None]] = []

    def add(self, label: str, value: Any = None, level: int = 0) -> None:
        self.rows.append((level, label, None if value is None else cell(value)))

    def text(self, text: str, level: int = 0) -> None:
        self.rows.append((level, None, text))

    def render(self) -> str:
        widths: dict[int, int] = {}
        for level, label, value in self.rows:
            if label is not None and value is not None:
                widths[level] = max(widths.get(level, 0), len(label) + 1)
        out = []
        for level, label, value in self.rows:
            pad = "  " * level
            if label is None:
                out.append(f"{pad}{value}")
            elif value is None:
                out.append(f"{pad}{label}:")
            else:
                head = (label + ":") if label else ""
                out.append(f"{pad}{head.ljust(widths[level])}  {value}".rstrip())
        return "\n".join(out)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("describe", parents=[global_flags()], help="show details of objects",
                              description="Show an object's details, status and recent events.")
    p.add_argument("type", metavar="TYPE[/NAME]")
    p.add_argument("names", nargs="*", default=[], metavar="NAME")
    p.add_argument("-l", "--selector", help="describe the objects matching this label selector")
    p.set_defaults(func=command(run))


async def run(args: argparse.Namespace, api: ApiClient) -> int:
    found: list[tuple[Resource, Obj]] = []
    for res, name in targets(args.type, args.names):
        if name:
            found.append((res, await api.get(res, name)))
        else:
            listed = await api.list_all(res, api.conn.namespace if res.namespaced else None,
                                        label_selector=args.selector)
            found.extend((res, obj) for obj in listed["items"])
    for i, (res, obj) in enumerate(found):
        print(("\n\n" if i else "") + await describe(api, res, obj))
    return 0


async def describe(api: ApiClient, res: Resource, obj: Obj) -> str:
    doc = Doc()
    _header(doc, res, obj)
    DESCRIBERS.get(res.kind, _generic)(doc, obj)
    _conditions(doc, (obj.get("status") or {}).get("conditions") or [])
    await _events(doc, api, res, obj)
    return doc.render()


def _header(doc: Doc, res: Resource, obj: Obj) -> None:
    meta = obj.get("metadata") or {}
    doc.add("Name", meta.get("name"))
    if res.namespaced:
        doc.add("Namespace", meta.get("namespace"))
    _mapping(doc, "Labels", meta.get("labels"))
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in HIDDEN_ANNOTATIONS}
    _mapping(doc, "Annotations", annotations)
    doc.add("CreationTimestamp", meta.get("creationTimestamp") or "<unknown>")
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
    if owner:
        doc.add("Controlled By", f"{owner.get('kind')}/{owner.get('name')}")
    if meta.get("deletionTimestamp"):
        doc.add("Terminating Since", meta["deletionTimestamp"])


def _mapping(doc: Doc, label: str, values: dict[str, Any] | None, level: int = 0) -> None:
    items = sorted((values or {}).items())
    if not items:
        doc.add(label, "<none>", level)
    for i, (key, value) in enumerate(items):
        doc.add(label if i == 0 else "", f"{key}={value}", level)


def _pod(doc: Doc, pod: Obj) -> None:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    node = spec.get("nodeName")
    doc.add("Node", f"{node}/{status['hostIP']}" if node and status.get("hostIP") else node or "<none>")
    doc.add("Status", "Terminating" if (pod.get("metadata") or {}).get("deletionTimestamp")
            else status.get("phase") or "Pending")
    if status.get("reason"):
        doc.add("Reason", status["reason"])
    doc.add("IP", status.get("podIP") or "")
    states = {s.get("name"): s for s in status.get("containerStatuses") or []}
    _containers(doc, spec.get("containers") or [], states, level=0)


def _containers(doc: Doc, containers: list[Obj], states: dict[str, Obj], level: int) -> None:
    doc.add("Containers", None, level)
    for c in containers:
        doc.add(c.get("name", ""), None, level + 1)
        doc.add("Image", c.get("image"), level + 2)
        ports = [f"{p.get('containerPort')}/{p.get('protocol', 'TCP')}" for p in c.get("ports") or []]
        doc.add("Ports" if len(ports) > 1 else "Port", ", ".join(ports) or "<none>", level + 2)
        if c.get("command"):
            doc.add("Command", " ".join(map(str, c["command"])), level + 2)
        if c.get("name") in states:
            _container_state(doc, states[c["name"]], level + 2)
        env = [f"{e.get('name')}={e.get('value', '<from source>')}" for e in c.get("env") or []]
        doc.add("Environment", ", ".join(env) or "<none>", level + 2)


def _container_state(doc: Doc, status: Obj, level: int) -> None:
    for state, detail in (status.get("state") or {}).items():
        doc.add("State", state.capitalize(), level)
        for key, label in STATE_FIELDS.items():
            if key in (detail or {}):
                doc.add(label, detail[key], level + 1)
    doc.add("Ready", "True" if status.get("ready") else "False", level)
    doc.add("Restart Count", status.get("restartCount", 0), level)


def _workload(doc: Doc, obj: Obj) -> None:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    selector = spec.get("selector") or {}
    labels = selector.get("matchLabels", selector) if isinstance(selector, dict) else {}
    doc.add("Selector", ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "<none>")
    if obj.get("kind") == "DaemonSet":
        doc.add("Pods", f"{status.get('currentNumberScheduled', 0)} scheduled / "
                        f"{status.get('desiredNumberScheduled', 0)} desired / {status.get('numberReady', 0)} ready")
    elif obj.get("kind") == "Deployment":
        total = status.get("replicas", 0)
        doc.add("Replicas", f"{spec.get('replicas', 1)} desired | {status.get('updatedReplicas', 0)} updated | "
                            f"{total} total | {status.get('availableReplicas', 0)} available | "
                            f"{status.get('unavailableReplicas', 0)} unavailable")
        doc.add("StrategyType", (spec.get("strategy") or {}).get("type", "RollingUpdate"))
    else:
        doc.add("Replicas", f"{status.get('replicas', 0)} current / {spec.get('replicas', 1)} desired")
    template = spec.get("template") or {}
    doc.add("Pod Template", None)
    _mapping(doc, "Labels", (template.get("metadata") or {}).get("labels"), level=1)
    _containers(doc, (template.get("spec") or {}).get("containers") or [], {}, level=1)


def _service(doc: Doc, svc: Obj) -> None:
    spec = svc.get("spec") or {}
    doc.add("Selector", ",".join(f"{k}={v}" for k, v in sorted((spec.get("selector") or {}).items())) or "<none>")
    doc.add("Type", spec.get("type", "ClusterIP"))
    doc.add("IP", spec.get("clusterIP") or "<none>")
    for port in spec.get("ports") or []:
        name = port.get("name") or "<unset>"
        doc.add("Port", f"{name}  {port.get('port')}/{port.get('protocol', 'TCP')}")
        doc.add("TargetPort", f"{port.get('targetPort', port.get('port'))}/{port.get('protocol', 'TCP')}")
        if port.get("nodePort"):
            doc.add("NodePort", f"{name}  {port['nodePort']}/{port.get('protocol', 'TCP')}")


def _node(doc: Doc, node: Obj) -> None:
    spec, status = node.get("spec") or {}, node.get("status") or {}
    doc.add("Unschedulable", "true" if spec.get("unschedulable") else "false")
    doc.add("PodCIDR", spec.get("podCIDR") or "<none>")
    doc.add("Addresses", None)
    for address in status.get("addresses") or []:
        doc.add(address.get("type", ""), address.get("address"), 1)
    for label, key in (("Capacity", "capacity"), ("Allocatable", "allocatable")):
        doc.add(label, None)
        for name, value in sorted((status.get(key) or {}).items()):
            doc.add(name, value, 1)
    info = status.get("nodeInfo") or {}
    if info:
        doc.add("System Info", None)
        for name, value in info.items():
            doc.add(name[0].upper() + name[1:], value, 1)


def _generic(doc: Doc, obj: Obj) -> None:
    for section in ("spec", "status", "data"):
        value = obj.get(section)
        if section == "status" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != "conditions"}
        if value:
            doc.add(section.capitalize(), None)
            _nested(doc, value, 1)


def _nested(doc: Doc, value: Any, level: int) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                doc.add(key, None, level)
                _nested(doc, item, level + 1)
            else:
                doc.add(key, item, level)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                doc.text("-", level)
                _nested(doc, item, level + 1)
            else:
                doc.text(f"- {cell(item)}", level)


def _conditions(doc: Doc, conditions: list[Obj]) -> None:
    if not conditions:
        return
    doc.add("Conditions", None)
    table = TablePrinter(["Type", "Status", "Reason", "Message"], upper=False)
    for line in table.lines([[c.get("type", ""), c.get("status", ""), c.get("reason", ""),
                              c.get("message", "")] for c in conditions]):
        doc.text(line, 1)


async def _events(doc: Doc, api: ApiClient, res: Resource, obj: Obj) -> None:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    selector = f"involvedObject.name={meta.get('name')},involvedObject.namespace={namespace}"
    events_res = resolve("events")
    assert events_res is not None
    try:
        listed = await api.list(events_res, namespace or None, field_selector=selector)
    except ApiError as exc:
        doc.add("Events", f"<cannot list: {exc.message}>")
        return
    events = [e for e in listed.get("items") or []
              if (e.get("involvedObject") or {}).get("kind") in (None, res.kind)]
    if not events:
        doc.add("Events", "<none>")
        return
    doc.add("Events", None)
    events.sort(key=_event_time)
    table = TablePrinter(["Type", "Reason", "Age", "From", "Message"], upper=False)
    rows = [[e.get("type", ""), e.get("reason", ""), _event_age(e), _event_source(e), e.get("message", "")]
            for e in events]
    for line in table.lines([["----", "------", "----", "----", "-------"], *rows]):
        doc.text(line, 1)


def _event_time(event: Obj) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime")
               or (event.get("metadata") or {}).get("creationTimestamp") or "")


def _event_age(event: Obj) -> str:
    age = human_age(_event_time(event))
    count = event.get("count") or 1
    if count > 1 and event.get("firstTimestamp"):
        return f"{age} (x{count} over {human_age(event['firstTimestamp'])})"
    return age


def _event_source(event: Obj) -> str:
    source = event.get("source") or {}
    return source.get("component") or event.get("reportingComponent") or ""


DESCRIBERS: dict[str, Callable[[Doc, Obj], None]] = {
    "Pod": _pod,
    "Deployment": _workload,
    "ReplicaSet": _workload,
    "ReplicationController": _workload,
    "DaemonSet": _workload,
    "Service": _service,
    "Node": _node,
}
