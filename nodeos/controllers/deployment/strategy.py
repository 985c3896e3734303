"""The arithmetic of a rollout, as pure functions over Deployments and ReplicaSets.

RollingUpdate bounds a rollout by two numbers, each an int or a percentage
of ``spec.replicas``: ``maxSurge`` pods above the desired count may exist
(percentages round *up*, so 25% of 3 is 1), and ``maxUnavailable`` below it
may be unavailable (percentages round *down*, so 25% of 3 is 0). Both zero
would block every rollout, so unavailable becomes 1 then, as in Kubernetes.

Counts are ReplicaSet ``spec.replicas`` (what was asked) for the surge
bound, and ``status.availableReplicas`` (what is there) for availability:
a rollout never scales an old ReplicaSet down further than what the
available pods allow.

Proportional scaling: when a Deployment is resized *during* a rollout, the
extra (or missing) replicas are spread over its active ReplicaSets in
proportion to their sizes, using the Deployment size each was last scaled
for (the ``max-replicas`` annotation); rounding leftovers go to the largest.
"""

from __future__ import annotations

import math
from typing import Any

from nodeos.controllers.deployment.revisions import (
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    annotated_int,
    by_age,
    replicas_of,
)

Obj = dict[str, Any]
NO_DEADLINE = 2**31 - 1  # progressDeadlineSeconds that Kubernetes reads as "never"


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """An int-or-percent field resolved against ``total``."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return 0


def is_rolling(deployment: Obj) -> bool:
    return ((deployment["spec"].get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def fenceposts(deployment: Obj) -> tuple[int, int]:
    """``(maxSurge, maxUnavailable)`` resolved against spec.replicas."""
    rolling = (deployment["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    desired = replicas_of(deployment)
    surge = scaled_value(rolling.get("maxSurge", "25%"), desired, round_up=True)
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # otherwise no rollout could ever make progress
    return surge, unavailable


def max_surge(deployment: Obj) -> int:
    return fenceposts(deployment)[0] if is_rolling(deployment) else 0


def max_unavailable(deployment: Obj) -> int:
    if not is_rolling(deployment) or replicas_of(deployment) == 0:
        return 0
    return min(fenceposts(deployment)[1], replicas_of(deployment))


def total_replicas(replica_sets: list[Obj | None]) -> int:
    return sum(replicas_of(rs) for rs in replica_sets if rs)


def total_status(replica_sets: list[Obj | None], field: str) -> int:
    return sum(int((rs.get("status") or {}).get(field) or 0) for rs in replica_sets if rs)


def active(replica_sets: list[Obj | None]) -> list[Obj]:
    return [rs for rs in replica_sets if rs and replicas_of(rs) > 0]


def new_rs_target(deployment: Obj, all_sets: list[Obj | None], new: Obj | None) -> int:
    """How big the new ReplicaSet may be now (NewRSNewReplicas)."""
    desired = replicas_of(deployment)
    if not is_rolling(deployment):
        return desired
    current_new = replicas_of(new) if new else 0
    room = desired + max_surge(deployment) - total_replicas(all_sets)
    if room <= 0:
        return current_new
    return current_new + min(room, desired - current_new)


def has_deadline(deployment: Obj) -> bool:
    deadline = deployment["spec"].get("progressDeadlineSeconds")
    return isinstance(deadline, int) and deadline != NO_DEADLINE


def is_saturated(deployment: Obj, new: Obj | None) -> bool:
    """The new ReplicaSet alone runs the whole Deployment, all available."""
    if new is None:
        return False
    desired = replicas_of(deployment)
    return (replicas_of(new) == desired and annotated_int(new, DESIRED_REPLICAS) == desired
            and int((new.get("status") or {}).get("availableReplicas") or 0) == desired)


def active_or_latest(new: Obj | None, old: list[Obj]) -> Obj | None:
    """The one ReplicaSet to resize directly, if there is a single candidate:
    the only active one, or (none active) the new one, else the newest old one."""
    live = active([new, *old])
    if len(live) == 1:
        return live[0]
    if not live:
        return new if new is not None else (by_age(old)[-1] if old else None)
    return None


def proportional_sizes(deployment: Obj, replica_sets: list[Obj]) -> dict[str, int]:
    """New sizes for the active ReplicaSets of a Deployment resized mid-rollout."""
    live = active(replica_sets)
    allowed = replicas_of(deployment) + max_surge(deployment) if replicas_of(deployment) > 0 else 0
    to_add = allowed - total_replicas(live)
    sizes = {rs["metadata"]["name"]: replicas_of(rs) for rs in live}
    if to_add == 0 or not live:
        return sizes
    # Biggest first; among equals the newest when growing, the oldest when shrinking.
    live = by_age(live)
    if to_add > 0:
        live.reverse()
    live.sort(key=lambda rs: -replicas_of(rs))  # stable: keeps the age order among equals
    added = 0
    for rs in live:
        share = _proportion(deployment, rs, to_add, added)
        sizes[rs["metadata"]["name"]] += share
        added += share
    largest = live[0]["metadata"]["name"]
    sizes[largest] = max(sizes[largest] + to_add - added, 0)  # rounding leftovers
    return sizes


def _proportion(deployment: Obj, rs: Obj, to_add: int, added: int) -> int:
    if replicas_of(rs) == 0 or to_add == added:
        return 0
    fraction = _fraction(deployment, rs)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def _fraction(deployment: Obj, rs: Obj) -> int:
    """How much ``rs`` should grow (negative: shrink) for the Deployment's new size."""
    if replicas_of(deployment) == 0:
        return -replicas_of(rs)
    target_total = replicas_of(deployment) + max_surge(deployment)
    sized_for = annotated_int(rs, MAX_REPLICAS)
    if not sized_for:
        sized_for = int((deployment.get("status") or {}).get("replicas") or 0) or target_total
    return _round_half_away(replicas_of(rs) * target_total / sized_for) - replicas_of(rs)


def _round_half_away(value: float) -> int:
    """Go's math.Round: halves away from zero (Python's round() goes to even)."""
    return math.floor(value + 0.5) if value >= 0 else -math.floor(-value + 0.5)
