"""The steps of a Deployment reconcile: roll out, recreate, resize, report.

Each function takes the reconcile's ``DeploymentSync`` and makes at most
one kind of move before reporting status, so every step is small and the
next event (a ReplicaSet's status changing as its pods become available)
triggers the next step:

- ``rolling``: grow the new ReplicaSet within maxSurge; else shrink old ones
  within maxUnavailable (unhealthy old pods first); when complete, prune
  history; report progress.
- ``recreate``: scale every old ReplicaSet to zero, wait until none of their
  pods is left running, then create and scale up the new one.
- ``resize``: a paused Deployment, or one whose size changed: resize the
  ReplicaSets (proportionally during a rollout) without rolling anything.

They return how many seconds until the Deployment should be looked at again
to check its progress deadline, or None.
"""

from __future__ import annotations

import copy

from nodeos.controllers.deployment import revisions, strategy
from nodeos.controllers.deployment import status as dstatus
from nodeos.controllers.deployment.sync import DeploymentSync

_TERMINAL = ("Failed", "Succeeded")


async def rolling(sync: DeploymentSync) -> float | None:
    await sync.find_new(create=True)
    if await _grow_new(sync) or await _shrink_old(sync):
        return await report_rollout(sync)
    if dstatus.is_complete(sync.d, sync.d.get("status") or {}):
        await prune_history(sync)
    return await report_rollout(sync)


async def recreate(sync: DeploymentSync) -> float | None:
    await sync.find_new(create=False)
    scaled_down = False
    for rs in strategy.active(sync.old):
        scaled_down = await sync.scale(rs, 0) or scaled_down
    if scaled_down or _old_pods_running(sync):
        return await report_rollout(sync)
    new = sync.new or await sync.find_new(create=True)
    if new is not None:
        await sync.scale(new, revisions.replicas_of(sync.d))
    if dstatus.is_complete(sync.d, sync.d.get("status") or {}):
        await prune_history(sync)
    return await report_rollout(sync)


async def resize(sync: DeploymentSync) -> None:
    await sync.find_new(create=False)
    await _resize(sync)
    if sync.d["spec"].get("paused"):
        await prune_history(sync)
    await report_status(sync)


async def is_resized(sync: DeploymentSync) -> bool:
    """Whether an active ReplicaSet was sized for another Deployment size."""
    await sync.find_new(create=False)
    desired = revisions.replicas_of(sync.d)
    for rs in strategy.active(sync.all):
        sized_for = revisions.annotated_int(rs, revisions.DESIRED_REPLICAS)
        if sized_for is not None and sized_for != desired:
            return True
    return False


async def status_only(sync: DeploymentSync) -> None:
    """A Deployment being deleted: report, change nothing."""
    await sync.find_new(create=False)
    await report_status(sync)


async def report_status(sync: DeploymentSync) -> None:
    """Counts and Available only (paused, resized, or being deleted)."""
    await sync.write_status(dstatus.calculate(sync.d, sync.all, sync.new, sync.now()))


async def report_rollout(sync: DeploymentSync) -> float | None:
    status = dstatus.rollout(sync.d, sync.all, sync.new, sync.now())
    if status == sync.d.get("status"):
        return dstatus.seconds_until_deadline(sync.d, status, sync.now())
    await sync.write_status(status)
    return None


async def note_pause(sync: DeploymentSync) -> None:
    """Mark pausing and resuming in Progressing, so a pause never counts
    against the progress deadline (a timed-out rollout stays timed out)."""
    if not strategy.has_deadline(sync.d):
        return
    current = dstatus.get_condition(sync.d.get("status"), dstatus.PROGRESSING)
    reason = (current or {}).get("reason")
    if reason == dstatus.TIMED_OUT:
        return
    paused = bool(sync.d["spec"].get("paused"))
    if paused and reason != dstatus.PAUSED:
        cond = (dstatus.PAUSED, "Deployment is paused")
    elif not paused and reason == dstatus.PAUSED:
        cond = (dstatus.RESUMED, "Deployment is resumed")
    else:
        return
    status = copy.deepcopy(sync.d.get("status") or {})
    dstatus.set_condition(status, dstatus.new_condition(dstatus.PROGRESSING, "Unknown", *cond, sync.now()))
    await sync.write_status(status)


async def prune_history(sync: DeploymentSync) -> None:
    for rs in revisions.history_to_clean(sync.d, sync.old):
        await sync.delete(rs)


# -- rolling update steps ----------------------------------------------------------


async def _grow_new(sync: DeploymentSync) -> bool:
    new, desired = sync.new, revisions.replicas_of(sync.d)
    if new is None or revisions.replicas_of(new) == desired:
        return False
    if revisions.replicas_of(new) > desired:
        return await sync.scale(new, desired)
    return await sync.scale(new, strategy.new_rs_target(sync.d, sync.all, new))


async def _shrink_old(sync: DeploymentSync) -> bool:
    if strategy.total_replicas(sync.old) == 0:
        return False
    min_available = revisions.replicas_of(sync.d) - strategy.max_unavailable(sync.d)
    new = sync.new
    new_unavailable = (revisions.replicas_of(new) - dstatus.count(new.get("status"), "availableReplicas")) if new else 0
    budget = strategy.total_replicas(sync.all) - min_available - new_unavailable
    if budget <= 0:
        return False
    cleaned = await _shrink_unhealthy(sync, budget)
    return cleaned + await _shrink_available(sync, min_available) > 0


async def _shrink_unhealthy(sync: DeploymentSync, budget: int) -> int:
    """Old ReplicaSets' unavailable pods go first: removing them costs no availability."""
    done = 0
    for rs in revisions.by_age(sync.old):
        if done >= budget:
            break
        size = revisions.replicas_of(rs)
        unhealthy = size - dstatus.count(rs.get("status"), "availableReplicas")
        if size == 0 or unhealthy <= 0:
            continue
        cut = min(budget - done, unhealthy)
        await sync.scale(rs, size - cut)
        done += cut
    return done


async def _shrink_available(sync: DeploymentSync, min_available: int) -> int:
    """Scale old ReplicaSets down, oldest first, while enough pods stay available.

    A ReplicaSet counts at most its ``spec.replicas`` available pods: one just
    scaled down may still report the pods it is about to delete, and counting
    those would let two quick steps take availability below the minimum."""
    budget = sum(min(dstatus.count(rs.get("status"), "availableReplicas"), revisions.replicas_of(rs))
                 for rs in sync.all) - min_available
    done = 0
    for rs in revisions.by_age(sync.old):
        if done >= budget:
            break
        size = revisions.replicas_of(rs)
        if size == 0:
            continue
        cut = min(size, budget - done)
        await sync.scale(rs, size - cut)
        done += cut
    return done


# -- recreate and resize ------------------------------------------------------------


def _old_pods_running(sync: DeploymentSync) -> bool:
    """Any pod of an old ReplicaSet not yet terminal, terminating ones included."""
    if strategy.total_status(sync.old, "replicas") > 0:
        return True
    return any((pod.get("status") or {}).get("phase") not in _TERMINAL
               for rs in sync.old for pod in sync.pods_of(rs))


async def _resize(sync: DeploymentSync) -> None:
    desired = revisions.replicas_of(sync.d)
    only = strategy.active_or_latest(sync.new, sync.old)
    if only is not None:
        if revisions.replicas_of(only) != desired:
            await sync.scale(only, desired)
        return
    if strategy.is_saturated(sync.d, sync.new):
        for rs in strategy.active(sync.old):
            await sync.scale(rs, 0)
        return
    if strategy.is_rolling(sync.d):
        sizes = strategy.proportional_sizes(sync.d, sync.all)
        for rs in strategy.active(sync.all):
            await sync.scale(rs, sizes[rs["metadata"]["name"]])
