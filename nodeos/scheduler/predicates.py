"""Predicates: can this pod run on this node at all?

Each predicate is a small pure function of a ``PodInfo`` and a ``NodeInfo``
returning ``None`` when the pod may go there, or the reason it may not, in
the words Kubernetes' scheduler uses (users search for these strings).

Predicates are grouped as Kubernetes' filter plugins are: a node is rejected
by the first group that fails, and every reason of that group counts (a pod
too big in cpu *and* memory shows both). The order is Kubernetes' own:
unschedulable, taints, (readiness), node affinity, ports, resources — so a
cordoned node reads "were unschedulable" even if it is full too.

Readiness: Kubernetes expresses a node that is not Ready as a taint
(``node.kubernetes.io/not-ready`` or ``unreachable``) added by the node
lifecycle controller, so the taint predicate reports it. Until that
controller has acted (a node that just registered, say), ``node_ready``
treats the condition as the taint it implies: a pod that tolerates the taint
(DaemonSet pods do) may still go there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from nodeos.scheduler.info import NodeInfo, PodInfo

Predicate = Callable[[PodInfo, NodeInfo], "str | None"]

UNSCHEDULABLE = "node(s) were unschedulable"
NOT_READY = "node(s) were not ready"
AFFINITY_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
PORTS_IN_USE = "node(s) didn't have free ports for the requested pod ports"
TOO_MANY_PODS = "Too many pods"
INSUFFICIENT_CPU = "Insufficient cpu"
INSUFFICIENT_MEMORY = "Insufficient memory"

UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
UNREACHABLE_TAINT = {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}


# -- tolerations ------------------------------------------------------------------

def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Kubernetes' ToleratesTaint: effect (empty = all), key (empty with Exists = all), value."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def tolerated(tolerations: Iterable[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    return any(tolerates(t, taint) for t in tolerations)


def taint_text(taint: Mapping[str, Any]) -> str:
    return f"{{{taint.get('key', '')}: {taint.get('value') or ''}}}"


# -- node selectors -----------------------------------------------------------------

def _matches_requirement(req: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key, operator = req.get("key") or "", req.get("operator")
    wanted = req.get("values") or ()
    if operator == "In":
        return key in values and values[key] in wanted
    if operator == "NotIn":
        return key not in values or values[key] not in wanted
    if operator == "Exists":
        return key in values
    if operator == "DoesNotExist":
        return key not in values
    if operator in ("Gt", "Lt") and key in values and len(wanted) == 1:
        try:
            have, bound = int(values[key]), int(wanted[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def matches_term(term: Mapping[str, Any], node: NodeInfo) -> bool:
    """One NodeSelectorTerm: all its expressions (on labels) and fields (on the name).
    An empty term matches nothing, as in Kubernetes."""
    expressions = term.get("matchExpressions") or ()
    fields = term.get("matchFields") or ()
    if not expressions and not fields:
        return False
    node_fields = {"metadata.name": node.name}
    return (all(_matches_requirement(r, node.labels) for r in expressions)
            and all(_matches_requirement(r, node_fields) for r in fields))


# -- the predicates -------------------------------------------------------------------

def node_unschedulable(pod: PodInfo, node: NodeInfo) -> str | None:
    """Cordoned nodes take only pods that tolerate the unschedulable taint it implies."""
    if node.unschedulable and not tolerated(pod.tolerations, UNSCHEDULABLE_TAINT):
        return UNSCHEDULABLE
    return None


def untolerated_taint(pod: PodInfo, node: NodeInfo) -> str | None:
    for taint in node.hard_taints:
        if not tolerated(pod.tolerations, taint):
            return f"node(s) had untolerated taint {taint_text(taint)}"
    return None


def node_ready(pod: PodInfo, node: NodeInfo) -> str | None:
    if node.ready == "True":
        return None
    implied = NOT_READY_TAINT if node.ready == "False" else UNREACHABLE_TAINT
    return None if tolerated(pod.tolerations, implied) else NOT_READY


def node_affinity(pod: PodInfo, node: NodeInfo) -> str | None:
    """``spec.nodeSelector`` and the required node affinity (terms ORed) must both hold."""
    labels = node.labels
    if any(labels.get(k) != v for k, v in pod.node_selector.items()):
        return AFFINITY_MISMATCH
    if pod.required_terms is not None and not any(matches_term(t, node) for t in pod.required_terms):
        return AFFINITY_MISMATCH
    return None


def host_ports(pod: PodInfo, node: NodeInfo) -> str | None:
    """A (protocol, port) is taken on a node if any pod there holds it on the same
    IP, or on 0.0.0.0, which holds it on every IP."""
    if any(_conflict(wanted, used) for wanted in pod.host_ports for used in node.ports):
        return PORTS_IN_USE
    return None


def _conflict(a: tuple[str, str, int], b: tuple[str, str, int]) -> bool:
    return a[2] == b[2] and a[1] == b[1] and (a[0] == b[0] or "0.0.0.0" in (a[0], b[0]))


def pod_count(pod: PodInfo, node: NodeInfo) -> str | None:
    return TOO_MANY_PODS if node.pod_count + 1 > node.allocatable_pods else None


def cpu_fits(pod: PodInfo, node: NodeInfo) -> str | None:
    if pod.cpu and node.requested_cpu + pod.cpu > node.allocatable_cpu:
        return INSUFFICIENT_CPU
    return None


def memory_fits(pod: PodInfo, node: NodeInfo) -> str | None:
    if pod.memory and node.requested_memory + pod.memory > node.allocatable_memory:
        return INSUFFICIENT_MEMORY
    return None


def fits_resources(pod: PodInfo, node: NodeInfo) -> bool:
    """``pod_count``, ``cpu_fits`` and ``memory_fits`` at once, for the hot path of
    filtering (one call per node instead of three); the three give the reasons."""
    return (node.pod_count < node.allocatable_pods
            and (not pod.cpu or node.requested_cpu + pod.cpu <= node.allocatable_cpu)
            and (not pod.memory or node.requested_memory + pod.memory <= node.allocatable_memory))


# -- putting them together ---------------------------------------------------------------

RESOURCES: tuple[Predicate, ...] = (pod_count, cpu_fits, memory_fits)
NODE_STATE: tuple[tuple[Predicate, ...], ...] = ((node_unschedulable,), (untolerated_taint,), (node_ready,))


def filters_for(pod: PodInfo) -> tuple[tuple[Predicate, ...], ...]:
    """The predicate groups, in order, that can fail for ``pod`` (the rest are skipped:
    a pod without host ports cannot conflict, one without a selector always matches)."""
    return NODE_STATE + pod_filters_for(pod)


def pod_filters_for(pod: PodInfo) -> tuple[tuple[Predicate, ...], ...]:
    """The groups that depend on what the pod asks for; on a ``NodeInfo.clean`` node
    (schedulable, Ready, untainted) these are the only ones that can fail."""
    groups: list[tuple[Predicate, ...]] = []
    if pod.node_selector or pod.required_terms is not None:
        groups.append((node_affinity,))
    if pod.host_ports:
        groups.append((host_ports,))
    groups.append(RESOURCES)
    return tuple(groups)


def failures(groups: tuple[tuple[Predicate, ...], ...], pod: PodInfo, node: NodeInfo) -> list[str]:
    """Why ``pod`` cannot run on ``node`` (empty: it can)."""
    for group in groups:
        for predicate in group:
            if predicate(pod, node) is not None:
                return [reason for predicate in group if (reason := predicate(pod, node))]
    return []
