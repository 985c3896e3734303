"""A Deployment's status and its two conditions, computed as Kubernetes does.

Counts sum the ReplicaSets' own status (``updatedReplicas`` is the new
ReplicaSet's share). ``Available`` says whether at least ``replicas -
maxUnavailable`` pods are available. ``Progressing`` tells the story of the
current rollout, which ``kubectl rollout status`` follows:

- ``NewReplicaSetCreated`` / ``FoundNewReplicaSet`` when the rollout starts,
- ``ReplicaSetUpdated`` each time it gains ground (lastUpdateTime renewed),
- ``NewReplicaSetAvailable`` once every replica is updated and available,
- ``ProgressDeadlineExceeded`` (status False) if no ground was gained for
  ``progressDeadlineSeconds``; the rollout itself goes on;
- ``DeploymentPaused`` / ``DeploymentResumed`` (status Unknown) around a
  pause, so time spent paused never counts against the deadline.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from nodeos.controllers.deployment.strategy import has_deadline, max_unavailable, total_replicas, total_status
from nodeos.controllers.pods import format_time, parse_time

Obj = dict[str, Any]

PROGRESSING, AVAILABLE, REPLICA_FAILURE = "Progressing", "Available", "ReplicaFailure"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"

_COUNTS = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas")


def get_condition(status: Obj | None, type_: str) -> Obj | None:
    for cond in (status or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


def new_condition(type_: str, status: str, reason: str, message: str, now: dt.datetime) -> Obj:
    moment = format_time(now)
    return {"type": type_, "status": status, "lastUpdateTime": moment, "lastTransitionTime": moment,
            "reason": reason, "message": message}


def set_condition(status: Obj, cond: Obj) -> None:
    """Set a condition (in place); the same status and reason again is no change,
    and the same status keeps its lastTransitionTime."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: Obj, type_: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def count(status: Obj | None, field: str) -> int:
    return int((status or {}).get(field) or 0)


def calculate(deployment: Obj, all_sets: list[Obj | None], new: Obj | None, now: dt.datetime) -> Obj:
    """The status the ReplicaSets imply, with the Available condition; other
    conditions are carried over from the current status."""
    desired = int(deployment["spec"].get("replicas", 1))
    available = total_status(all_sets, "availableReplicas")
    counts = {
        "replicas": total_status(all_sets, "replicas"),
        "updatedReplicas": total_status([new], "replicas"),
        "readyReplicas": total_status(all_sets, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(total_replicas(all_sets) - available, 0),
    }
    old_status = deployment.get("status") or {}
    status: Obj = {"observedGeneration": int(deployment["metadata"].get("generation") or 0)}
    status.update({k: v for k, v in counts.items() if v})  # zeros omitted, as Kubernetes' omitempty
    if old_status.get("collisionCount") is not None:
        status["collisionCount"] = old_status["collisionCount"]
    if old_status.get("conditions"):
        status["conditions"] = [dict(c) for c in old_status["conditions"]]
    if available >= desired - max_unavailable(deployment):
        cond = new_condition(AVAILABLE, "True", "MinimumReplicasAvailable", "Deployment has minimum availability.",
                             now)
    else:
        cond = new_condition(AVAILABLE, "False", "MinimumReplicasUnavailable",
                             "Deployment does not have minimum availability.", now)
    set_condition(status, cond)
    return status


def is_complete(deployment: Obj, status: Obj) -> bool:
    """Every replica updated and available, for the current generation."""
    desired = int(deployment["spec"].get("replicas", 1))
    return (count(status, "updatedReplicas") == desired and count(status, "replicas") == desired
            and count(status, "availableReplicas") == desired
            and count(status, "observedGeneration") >= int(deployment["metadata"].get("generation") or 0))


def made_progress(deployment: Obj, new_status: Obj) -> bool:
    """More updated, ready or available pods, or fewer old ones, than last recorded."""
    old = deployment.get("status") or {}
    old_pods_before = count(old, "replicas") - count(old, "updatedReplicas")
    old_pods_now = count(new_status, "replicas") - count(new_status, "updatedReplicas")
    return (count(new_status, "updatedReplicas") > count(old, "updatedReplicas") or old_pods_now < old_pods_before
            or count(new_status, "readyReplicas") > count(old, "readyReplicas")
            or count(new_status, "availableReplicas") > count(old, "availableReplicas"))


def timed_out(deployment: Obj, status: Obj, now: dt.datetime) -> bool:
    if not has_deadline(deployment):
        return False
    cond = get_condition(status, PROGRESSING)
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    return since is not None and since + dt.timedelta(seconds=deployment["spec"]["progressDeadlineSeconds"]) < now


def rollout(deployment: Obj, all_sets: list[Obj | None], new: Obj | None, now: dt.datetime) -> Obj:
    """The status after a rollout step: counts, Available, and Progressing as
    the module doc describes (syncRolloutStatus)."""
    status = calculate(deployment, all_sets, new, now)
    if not has_deadline(deployment):
        remove_condition(status, PROGRESSING)
    current = get_condition(deployment.get("status"), PROGRESSING)
    settled = (count(status, "replicas") == count(status, "updatedReplicas") and current is not None
               and current.get("reason") == NEW_RS_AVAILABLE)
    subject = f'ReplicaSet "{new["metadata"]["name"]}"' if new else f'Deployment "{deployment["metadata"]["name"]}"'
    if has_deadline(deployment) and not settled:
        if is_complete(deployment, status):
            set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE,
                                                f"{subject} has successfully progressed.", now))
        elif made_progress(deployment, status):
            cond = new_condition(PROGRESSING, "True", RS_UPDATED, f"{subject} is progressing.", now)
            if current is not None and current.get("status") == "True":
                cond["lastTransitionTime"] = current.get("lastTransitionTime")
            remove_condition(status, PROGRESSING)
            set_condition(status, cond)
        elif timed_out(deployment, status, now):
            set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT,
                                                f"{subject} has timed out progressing.", now))
    failure = next((c for rs in [new, *all_sets] if rs for c in [get_condition(rs.get("status"), REPLICA_FAILURE)]
                    if c), None)
    if failure is not None:
        set_condition(status, new_condition(REPLICA_FAILURE, failure.get("status", "True"),
                                            failure.get("reason", ""), failure.get("message", ""), now))
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def seconds_until_deadline(deployment: Obj, new_status: Obj, now: dt.datetime) -> float | None:
    """When to look again at a rollout that made no progress, to declare it timed out."""
    current = get_condition(deployment.get("status"), PROGRESSING)
    if not has_deadline(deployment) or current is None:
        return None
    if is_complete(deployment, new_status) or current.get("reason") == TIMED_OUT:
        return None
    since = parse_time(current.get("lastUpdateTime"))
    if since is None:
        return None
    left = (since + dt.timedelta(seconds=deployment["spec"]["progressDeadlineSeconds"]) - now).total_seconds()
    return left + 1.0 if left >= 1.0 else 1.0
