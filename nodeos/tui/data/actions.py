"""What an operator can do from the dashboard, each as kubectl does it on the wire.

Every action is a factory: ``scale("Deployment", "shop", "web", 3)`` returns
``async (api) -> str``, to be run on the feed's trio thread with
``feed.call(action)``. The string is kubectl's own message for the outcome
(``deployment.apps/web scaled``), for the UI's status line. Expected
failures raise ``ActionError`` with a message fit to show as is; ``Feed.call``
turns API errors into ActionErrors the same way (``Error from server
(NotFound): pods "x" not found``), so the UI catches one exception type.

``logs`` is the exception: it returns ``async (api) -> AsyncIterator[str]``
of lines, to be followed with ``Feed.follow`` into a bounded ``LineBuffer``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import trio

from nodeos.api.kinds import EVICTION_GROUP, EVICTION_VERSION, Resource, resolve
from nodeos.client import ApiClient
from nodeos.client.api import resource_path
from nodeos.errors import ApiError, NodeosError

Action = Callable[[ApiClient], Awaitable[Any]]
LineSource = Callable[[ApiClient], AsyncIterator[str]]

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
REVISION = "deployment.kubernetes.io/revision"
POD_TEMPLATE_HASH = "pod-template-hash"
# Annotations ``kubectl rollout undo`` keeps from the Deployment instead of taking the ReplicaSet's.
_UNDO_SKIPPED_ANNOTATIONS = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration", REVISION, "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas", "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
})


class ActionError(NodeosError):
    """An action failed; ``str(error)`` is the message to show the operator."""


def error_message(exc: BaseException) -> str:
    """The one-line message kubectl would print for a failure."""
    if isinstance(exc, ApiError):
        reason = f" ({exc.reason})" if exc.reason else ""
        return f"Error from server{reason}: {exc.message}"
    return str(exc) or type(exc).__name__


def _resource(kind: str) -> Resource:
    res = resolve(kind)
    if res is None:
        raise ActionError(f'the server doesn\'t have a resource type "{kind}"')
    return res


def _name(res: Resource, name: str) -> str:
    """``deployment.apps/web``, as kubectl names objects in its messages."""
    return f"{res.singular}.{res.group}/{name}" if res.group else f"{res.singular}/{name}"


# -- pods ----------------------------------------------------------------------------------------------

def delete_pod(namespace: str, name: str) -> Action:
    """Delete a pod gracefully (its controller, if any, makes a new one)."""
    async def run(api: ApiClient) -> str:
        await api.delete(_resource("pods"), name, namespace)
        return f'pod "{name}" deleted'
    return run


# -- workloads -----------------------------------------------------------------------------------------

def scale(kind: str, namespace: str, name: str, replicas: int) -> Action:
    """``kubectl scale``: a merge patch of the ``scale`` subresource (Deployment, ReplicaSet...)."""
    async def run(api: ApiClient) -> str:
        if replicas < 0:
            raise ActionError("The replicas count must be zero or more")
        res = _resource(kind)
        if "scale" not in res.subresources:
            raise ActionError(f"{res.plural} cannot be scaled")
        await api.patch(res, name, {"spec": {"replicas": replicas}}, "merge", namespace, subresource="scale")
        return f"{_name(res, name)} scaled"
    return run


def rollout_restart(namespace: str, name: str, kind: str = "Deployment") -> Action:
    """``kubectl rollout restart``: stamp the pod template, so every pod is replaced by a rollout."""
    async def run(api: ApiClient) -> str:
        res = _resource(kind)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
        await api.patch(res, name, patch, "strategic", namespace)
        return f"{_name(res, name)} restarted"
    return run


def _revision(obj: Mapping[str, Any]) -> int:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "")
    return int(value) if str(value).isdigit() else 0


async def _owned_replica_sets(api: ApiClient, deployment: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Deployment's ReplicaSets: matching its selector and controlled by it (by UID), as kubectl finds them."""
    meta = deployment["metadata"]
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None
    listed = await api.list_all(_resource("replicasets"), meta.get("namespace"), label_selector=selector)
    return [rs for rs in listed.get("items") or []
            if any(ref.get("controller") and ref.get("uid") == meta.get("uid")
                   for ref in (rs.get("metadata") or {}).get("ownerReferences") or ())]


def _template(rs: Mapping[str, Any]) -> dict[str, Any]:
    template = json.loads(json.dumps((rs.get("spec") or {}).get("template") or {}))
    (template.get("metadata") or {}).get("labels", {}).pop(POD_TEMPLATE_HASH, None)
    return template


def rollout_undo(namespace: str, name: str, to_revision: int = 0) -> Action:
    """``kubectl rollout undo``: the template of the previous revision's ReplicaSet (or ``to_revision``),
    written back with a JSON patch; the Deployment controller then rolls it out as the next revision."""
    async def run(api: ApiClient) -> str:
        res = _resource("deployments")
        deployment = await api.get(res, name, namespace)
        if (deployment.get("spec") or {}).get("paused"):
            raise ActionError("you cannot rollback a paused deployment; resume it first with "
                              "'kubectl rollout resume' and try again")
        history = {_revision(rs): rs for rs in await _owned_replica_sets(api, deployment)}
        history.pop(0, None)
        if to_revision:
            target = history.get(to_revision)
            if target is None:
                raise ActionError(f"unable to find specified revision {to_revision} in history")
        else:
            previous = sorted(history)[:-1]
            if not previous:
                raise ActionError(f'no rollout history found for deployment "{name}"')
            target = history[previous[-1]]
        template = _template(target)
        if template == _template(deployment):
            return f"{_name(res, name)} skipped rollback (current template already matches revision " \
                   f"{_revision(target)})"
        current = (deployment.get("metadata") or {}).get("annotations") or {}
        annotations = {k: v for k, v in current.items() if k in _UNDO_SKIPPED_ANNOTATIONS}
        annotations.update({k: v for k, v in ((target.get("metadata") or {}).get("annotations") or {}).items()
                            if k not in _UNDO_SKIPPED_ANNOTATIONS})
        patch = [{"op": "replace", "path": "/spec/template", "value": template},
                 {"op": "replace", "path": "/metadata/annotations", "value": annotations}]
        await api.patch(res, name, patch, "json", namespace)
        return f"{_name(res, name)} rolled back"
    return run


# -- nodes ---------------------------------------------------------------------------------------------

def _set_unschedulable(node: str, value: bool) -> Action:
    async def run(api: ApiClient) -> str:
        await api.patch(_resource("nodes"), node, {"spec": {"unschedulable": value or None}}, "merge")
        return f"node/{node} {'cordoned' if value else 'uncordoned'}"
    return run


def cordon(node: str) -> Action:
    """Mark a node unschedulable: running pods stay, new ones go elsewhere."""
    return _set_unschedulable(node, True)


def uncordon(node: str) -> Action:
    return _set_unschedulable(node, False)


def _daemon_pod(pod: Mapping[str, Any]) -> bool:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or ()
    return any(ref.get("controller") and ref.get("kind") == "DaemonSet" for ref in refs)


async def _evict(api: ApiClient, pods: Resource, namespace: str, name: str) -> None:
    body = {"apiVersion": f"{EVICTION_GROUP}/{EVICTION_VERSION}", "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace}}
    await api.request("POST", resource_path(pods, namespace, name, "eviction"), json=body)


DRAIN_PASSES = 3
DRAIN_SETTLE = 0.5  # seconds between passes: time for a scheduler that had not yet seen the cordon to bind


def drain(node: str) -> Action:
    """``kubectl drain --ignore-daemonsets --delete-emptydir-data --force``, without waiting:
    cordon, then evict every pod on the node except DaemonSet pods, through ``pods/eviction`` so
    that PodDisruptionBudgets are honoured. Pods that cannot be evicted are named in the error.

    A scheduler whose cache has not yet seen the cordon can still bind a pod there (a replacement
    of one just evicted, say), after the first list: so the node is listed again, a moment later,
    until a pass finds nothing new to evict."""
    async def run(api: ApiClient) -> str:
        await cordon(node)(api)
        evicted, failed, seen = 0, [], set()
        for number in range(DRAIN_PASSES):
            if number:
                await trio.sleep(DRAIN_SETTLE)
            count, errors = await _evict_pass(api, node, seen)
            evicted, failed = evicted + count, failed + errors
            if not count:
                break
        if failed:
            raise ActionError(f"node/{node} cordoned; {evicted} pods evicted; could not evict: " + "; ".join(failed))
        return f"node/{node} drained ({evicted} pods evicted)"
    return run


async def _evict_pass(api: ApiClient, node: str, seen: set[str]) -> tuple[int, list[str]]:
    """Evict the node's pods not tried before; how many were evicted, and why others were not."""
    pods = _resource("pods")
    listed = await api.list_all(pods, None, field_selector=f"spec.nodeName={node}")
    evicted, failed = 0, []
    for pod in listed.get("items") or []:
        meta = pod.get("metadata") or {}
        if _daemon_pod(pod) or meta.get("deletionTimestamp") or meta.get("uid") in seen:
            continue
        seen.add(meta.get("uid"))
        try:
            await _evict(api, pods, meta["namespace"], meta["name"])
            evicted += 1
        except ApiError as exc:
            if exc.code != 404:
                failed.append(f"{meta['namespace']}/{meta['name']}: {error_message(exc)}")
    return evicted, failed


# -- logs ----------------------------------------------------------------------------------------------

def _log_params(container: str | None, since_seconds: int | None, follow: bool,
                tail_lines: int | None) -> dict[str, Any]:
    return {"container": container, "sinceSeconds": since_seconds, "follow": follow or None,
            "tailLines": tail_lines}


def logs(namespace: str, pod: str, container: str | None = None, since_seconds: int | None = None,
         follow: bool = True, tail_lines: int | None = None) -> LineSource:
    """A pod's log as lines, streamed as the server sends them (``kubectl logs [-f]``).

    The server answers errors (no such container, a pod whose log cannot be
    read) before the stream starts; they raise ``ApiError`` on the first step.
    Followed logs never end by themselves: stop by cancelling the consumer
    (``Feed.follow``'s subscription). Bounding is the consumer's job.
    """
    async def run(api: ApiClient) -> AsyncIterator[str]:
        path = resource_path(_resource("pods"), namespace, pod, "log")
        params = _log_params(container, since_seconds, follow, tail_lines)
        async with api.stream("GET", path, params=params, headers={"Accept": "*/*"}) as response:
            lines = response.aiter_lines()
            try:
                async for line in lines:
                    yield line
            finally:
                await _close(response, lines)
    return run


async def _close(response: Any, lines: AsyncIterator[str]) -> None:
    """Close a stream left early and step its line iterator to the end, so the abandoned
    httpx generators finish now instead of warning when collected (as ``ApiClient.watch`` does)."""
    with trio.CancelScope(deadline=trio.current_time() + 1.0, shield=True):
        await response.aclose()
        with suppress(Exception):
            async for _ in lines:
                pass


def read_logs(namespace: str, pod: str, container: str | None = None, since_seconds: int | None = None,
              tail_lines: int | None = 1000) -> Action:
    """The last ``tail_lines`` lines of a log, at once (no follow): ``feed.call(read_logs(...))``."""
    async def run(api: ApiClient) -> list[str]:
        source = logs(namespace, pod, container, since_seconds, follow=False, tail_lines=tail_lines)
        return [line async for line in source(api)]
    return run
