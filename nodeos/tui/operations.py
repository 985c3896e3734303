"""The dashboard's actions as plans: what to ask the operator, what to call, what to say when done.

Keys mean different things in different views, as in k9s (``r`` restarts a
Deployment and drains a Node; ``u`` undoes a rollout and uncordons a Node), so
an operation is chosen by (key action, view). A ``Plan`` is pure data plus a
call; the screen shows its question in a ConfirmScreen and only then runs the
call on the feed's thread. Nothing here touches widgets.
"""

from __future__ import annotations

from dataclasses import dataclass

from nodeos.tui.data import actions


@dataclass(frozen=True)
class Plan:
    question: str  # shown in the confirmation dialog
    call: actions.Action  # async fn(api) -> kubectl's message, run by feed.call
    done: str  # the status line after success, if the call says nothing


@dataclass(frozen=True)
class Operation:
    action: str  # the screen's action name: "scale"
    view: str  # the view it applies to: "deployments"
    label: str  # the footer's word for it


OPERATIONS: tuple[Operation, ...] = (
    Operation("delete", "pods", "Delete"),
    Operation("scale", "deployments", "Scale"),
    Operation("scale", "replicasets", "Scale"),
    Operation("restart", "deployments", "Restart"),
    Operation("undo", "deployments", "Undo"),
    Operation("cordon", "nodes", "Cordon"),
    Operation("uncordon", "nodes", "Uncordon"),
    Operation("drain", "nodes", "Drain"),
)

KINDS = {"pods": "pod", "deployments": "deployment", "replicasets": "replicaset", "nodes": "node"}


def applies(action: str, view: str) -> bool:
    return any(op.action == action and op.view == view for op in OPERATIONS)


def split_key(key: str) -> tuple[str | None, str]:
    """``ns/name`` -> (ns, name); a cluster-scoped ``name`` -> (None, name)."""
    namespace, _, name = key.rpartition("/")
    return (namespace or None), name


def plan(action: str, view: str, key: str, replicas: int | None = None) -> Plan:
    """The plan for ``action`` on the object ``key`` of ``view`` (``applies()`` must hold)."""
    namespace, name = split_key(key)
    what = f"{KINDS[view]} {key}"
    ns = namespace or ""
    if action == "delete":
        return Plan(f"Delete {what}?", actions.delete_pod(ns, name), f"deleted {what}")
    if action == "scale":
        if replicas is None:
            raise ValueError("scale needs replicas")
        kind = "Deployment" if view == "deployments" else "ReplicaSet"
        return Plan(f"Scale {what} to {replicas} replicas?",
                    actions.scale(kind, ns, name, replicas), f"scaled {what} to {replicas}")
    if action == "restart":
        return Plan(f"Restart rollout of {what}?", actions.rollout_restart(ns, name),
                    f"restarted {what}")
    if action == "undo":
        return Plan(f"Undo the last rollout of {what}?", actions.rollout_undo(ns, name),
                    f"rolled back {what}")
    if action == "cordon":
        return Plan(f"Cordon {what}? (no new pods)", actions.cordon(name), f"cordoned {what}")
    if action == "uncordon":
        return Plan(f"Uncordon {what}?", actions.uncordon(name), f"uncordoned {what}")
    if action == "drain":
        return Plan(f"Drain {what}? (cordon, then evict its pods)", actions.drain(name),
                    f"drained {what}")
    raise ValueError(f"unknown action {action!r}")
