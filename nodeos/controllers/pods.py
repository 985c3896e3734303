"""What controllers need to know about pods: liveness, readiness, availability,
which to delete first, how to stamp one out of a template, and how to create
many without flooding the API.

These are pure functions over Kubernetes JSON (dicts), shared by every
controller that owns pods (ReplicaSet, ReplicationController, DaemonSet).
The rules are Kubernetes' own (``pkg/controller/controller_utils.go`` and
``podutil``), because users read ``kubectl get`` with those rules in mind:

- a pod is *active* until it is terminal (Succeeded/Failed) or being deleted:
  a terminating pod is already replaced, so a scale-up never waits for it;
- it is *ready* when its ``Ready`` condition is True, and *available* once it
  has been ready for ``minReadySeconds`` (timed from the condition's
  ``lastTransitionTime``).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import trio

from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient, object_key
from nodeos.controllers.events import EventRecorder
from nodeos.errors import ApiError

if TYPE_CHECKING:  # expectations.py imports this module
    from nodeos.controllers.expectations import Expectations

PODS = by_plural("", "v1", "pods")

# A pending scale-down deletes the pods that cost least to lose first: the
# unscheduled, then the not-yet-running, the not-ready, the recently ready,
# the crash-looping, and finally the newest.
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def parse_time(value: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp from the API (``2024-05-01T10:00:00Z``), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_time(moment: dt.datetime) -> str:
    """The API's timestamp format: seconds, UTC, ``Z``."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_terminating(obj: dict[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_active(pod: dict[str, Any]) -> bool:
    """Counts towards its owner's replicas: not terminal and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not is_terminating(pod)


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == type_:
            return cond
    return None


def is_ready(pod: dict[str, Any]) -> bool:
    cond = condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def ready_since(pod: dict[str, Any]) -> dt.datetime | None:
    """When the pod last became ready; None if it is not ready."""
    cond = condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return None
    return parse_time(cond.get("lastTransitionTime")) or parse_time(
        (pod.get("metadata") or {}).get("creationTimestamp"))


def seconds_until_available(pod: dict[str, Any], min_ready_seconds: int, now: dt.datetime) -> float | None:
    """0 if the pod is available, the seconds left if it is ready but not for
    long enough, None if it is not ready at all."""
    since = ready_since(pod)
    if since is None:
        return None
    if min_ready_seconds <= 0:
        return 0.0
    left = (since + dt.timedelta(seconds=min_ready_seconds) - now).total_seconds()
    return max(left, 0.0)


def availability(pods: list[dict[str, Any]], min_ready_seconds: int,
                 now: dt.datetime) -> tuple[int, int, float | None]:
    """(ready, available, seconds until the next ready pod becomes available or None)."""
    ready = available = 0
    wait: float | None = None
    for pod in pods:
        left = seconds_until_available(pod, min_ready_seconds, now)
        if left is None:
            continue
        ready += 1
        if left == 0:
            available += 1
        else:
            wait = left if wait is None else min(wait, left)
    return ready, available, wait


def is_available(pod: dict[str, Any], min_ready_seconds: int, now: dt.datetime) -> bool:
    return seconds_until_available(pod, min_ready_seconds, now) == 0.0


def restart_count(pod: dict[str, Any]) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses if isinstance(s, dict)), default=0)


def _deletion_key(pod: dict[str, Any], now: dt.datetime) -> tuple[Any, ...]:
    """Sorts ascending in the order pods should be deleted (ActivePodsWithRanks)."""
    since = ready_since(pod)
    ready_for = (now - since).total_seconds() if since else 0.0
    created = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
    return (
        bool((pod.get("spec") or {}).get("nodeName")),          # unassigned first
        _PHASE_RANK.get((pod.get("status") or {}).get("phase"), 0),  # Pending < Unknown < Running
        since is not None,                                      # not ready first
        ready_for,                                              # ready for less time first
        -restart_count(pod),                                    # more restarts first
        -(created.timestamp() if created else float("inf")),    # newer first (no timestamp: first)
    )


def pods_to_delete(pods: Iterable[dict[str, Any]], count: int, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The ``count`` pods a scale-down should remove, cheapest to lose first."""
    moment = now or utcnow()
    return sorted(pods, key=lambda pod: _deletion_key(pod, moment))[:max(count, 0)]


def pod_from_template(template: dict[str, Any], owner: dict[str, Any],
                      owner_ref: dict[str, Any]) -> dict[str, Any]:
    """A new pod for ``owner``: the template's labels, annotations, finalizers
    and spec, a generated name ``<owner>-xxxxx``, and the owner reference."""
    meta = template.get("metadata") or {}
    metadata: dict[str, Any] = {
        "generateName": f"{owner['metadata']['name']}-",
        "namespace": owner["metadata"].get("namespace"),
        "ownerReferences": [owner_ref],
    }
    for field in ("labels", "annotations", "finalizers"):
        if meta.get(field):
            metadata[field] = copy.deepcopy(meta[field])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": copy.deepcopy(template.get("spec") or {})}


async def slow_start_batch(count: int, fn: Callable[[], Awaitable[None]], *,
                           initial: int = 1) -> tuple[int, BaseException | None]:
    """Call ``fn`` ``count`` times in growing concurrent batches (1, 2, 4, …),
    stopping after the first batch with a failure.

    Why: a template the API rejects (quota, a terminating namespace, an
    invalid field) fails once, not a thousand times. Returns how many calls
    succeeded and the first error, if any. Cancellation is never swallowed.
    """
    done, remaining, batch = 0, count, min(count, initial)
    while batch > 0:
        errors: list[Exception] = []
        async with trio.open_nursery() as nursery:
            for _ in range(batch):
                nursery.start_soon(_collecting, fn, errors)
        done += batch - len(errors)
        if errors:
            return done, errors[0]
        remaining -= batch
        batch = min(2 * batch, remaining)
    return done, None


async def _collecting(fn: Callable[[], Awaitable[None]], errors: list[Exception]) -> None:
    try:
        await fn()
    except Exception as exc:  # collected, so one failure doesn't cancel its siblings
        errors.append(exc)


async def delete_pods(api: ApiClient, recorder: EventRecorder, expectations: Expectations, key: str,
                      owner: dict[str, Any], victims: list[dict[str, Any]],
                      limiter: trio.CapacityLimiter | None = None) -> Exception | None:
    """Delete an owner's ``victims`` at once, expecting each deletion under ``key``; the first error, if any.

    A deletion that fails is no longer expected (the informer will not see it); a pod already gone is
    no error. Each outcome is an Event on the owner, in the ReplicaSet controller's words.
    """
    expectations.expect_deletions(key, [object_key(pod) for pod in victims])
    errors: list[Exception] = []

    async def delete_one(pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        async with limiter or nullcontext():
            try:
                await api.delete(PODS, name, pod["metadata"].get("namespace"))
            except ApiError as exc:
                expectations.deletion_observed(key, object_key(pod))
                if exc.code != 404:
                    errors.append(exc)
                    await recorder.record(owner, "Warning", "FailedDelete", f"Error deleting: {exc}")
                return
            await recorder.record(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    async with trio.open_nursery() as nursery:
        for pod in victims:
            nursery.start_soon(delete_one, pod)
    return errors[0] if errors else None
