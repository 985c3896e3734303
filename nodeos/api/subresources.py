"""The ``scale`` and ``binding`` subresources, built on the registry's writes."""

from __future__ import annotations

import json
from typing import Any

from nodeos.api import meta
from nodeos.api.kinds import SCALE_GROUP, SCALE_VERSION, Resource
from nodeos.api.registry import PODS, Registry
from nodeos.api.selectors import label_selector_from_dict
from nodeos.api.watchcache import Cached
from nodeos.errors import ApiError, Cause


def scale_of(res: Resource, cached: Cached) -> dict[str, Any]:
    """The autoscaling/v1 Scale view of a Deployment, ReplicaSet or RC."""
    obj = cached.obj
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    selector = spec.get("selector") or {}
    if res.kind == "ReplicationController":
        selector_text = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    else:
        selector_text = str(label_selector_from_dict(selector))
    metadata = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": f"{SCALE_GROUP}/{SCALE_VERSION}",
        "metadata": {k: metadata[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in metadata},
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": {"replicas": status.get("replicas", 0), "selector": selector_text},
    }


async def update_scale(registry: Registry, res: Resource, namespace: str, name: str, scale: Any) -> dict[str, Any]:
    """Set the parent's ``spec.replicas`` from a Scale (PUT or an already-patched one)."""
    if not isinstance(scale, dict):
        raise ApiError.bad_request("the body must be a Scale object")
    replicas = (scale.get("spec") or {}).get("replicas") if isinstance(scale.get("spec"), dict) else None
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise ApiError.invalid("Scale", name, [Cause("spec.replicas", f"Invalid value: {json.dumps(replicas)}: "
                                                     "must be greater than or equal to 0")], SCALE_GROUP)
    current = registry.get(res, namespace, name)
    wanted = (scale.get("metadata") or {}).get("resourceVersion") if isinstance(scale.get("metadata"), dict) else None
    patch: dict[str, Any] = {"spec": {"replicas": replicas}}
    if wanted:
        patch["metadata"] = {"resourceVersion": wanted}
    elif current.obj.get("spec", {}).get("replicas") == replicas:
        return scale_of(res, current)
    updated = await registry.patch(res, namespace, name, "merge", patch)
    return scale_of(res, updated)


async def patch_scale(registry: Registry, res: Resource, namespace: str, name: str,
                      patch_type: str, patch: Any) -> dict[str, Any]:
    from nodeos.api.patch import apply_json_patch, apply_merge_patch

    current = scale_of(res, registry.get(res, namespace, name))
    current["metadata"].pop("resourceVersion", None)
    if patch_type == "json":
        patched = apply_json_patch(current, patch)
    elif isinstance(patch, dict):
        patched = apply_merge_patch(current, patch)  # Scale has no merge keys
    else:
        raise ApiError.bad_request("a merge patch must be a JSON object")
    return await update_scale(registry, res, namespace, name, patched)


async def bind(registry: Registry, namespace: str, pod_name: str, binding: Any) -> dict[str, Any]:
    """Assign a pod to a node, once: the scheduler's only write to a pod."""
    if not isinstance(binding, dict) or not isinstance(binding.get("target"), dict):
        raise ApiError.invalid("Binding", pod_name, [Cause("target", "Required value", "FieldValueRequired")])
    node = binding["target"].get("name")
    if not isinstance(node, str) or not node:
        raise ApiError.invalid("Binding", pod_name, [Cause("target.name", "Required value", "FieldValueRequired")])
    pod = registry.get(PODS, namespace, pod_name)
    if pod.obj["metadata"].get("deletionTimestamp"):
        raise ApiError.conflict("pods", pod_name, "the pod is being deleted")
    assigned = (pod.obj.get("spec") or {}).get("nodeName")
    if assigned:
        raise ApiError.conflict("pods", pod_name, f'pod {pod_name} is already assigned to node "{assigned}"')
    obj = json.loads(pod.raw)
    obj["spec"]["nodeName"] = node
    status = obj.setdefault("status", {})
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
    conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": meta.now()})
    status["conditions"] = conditions
    await registry.write_as_is(PODS, pod, obj)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")  # the same object on the wire


def eviction_options(eviction: Any, namespace: str, pod_name: str) -> dict[str, Any]:
    """The DeleteOptions a policy/v1 Eviction carries, once it is known to name this pod."""
    if not isinstance(eviction, dict):
        raise ApiError.bad_request("the body must be a policy/v1 Eviction object")
    kind, api_version = eviction.get("kind"), eviction.get("apiVersion")
    if kind not in (None, "Eviction") or api_version not in (None, *EVICTION_VERSIONS):
        raise ApiError.bad_request(f'the body must be a policy/v1 Eviction, not {api_version or "?"} {kind or "?"}')
    metadata = eviction.get("metadata") if isinstance(eviction.get("metadata"), dict) else {}
    if metadata.get("name") != pod_name:
        raise ApiError.bad_request("name in URL does not match name in Eviction object")
    if metadata.get("namespace") not in (None, "", namespace):
        raise ApiError.bad_request("the namespace of the provided object does not match the namespace sent on "
                                   "the request")
    options = eviction.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise ApiError.bad_request("deleteOptions must be DeleteOptions")
    return dict(options)


async def evict(registry: Registry, namespace: str, pod_name: str, options: dict[str, Any], *,
                dry_run: bool) -> dict[str, Any]:
    """Delete a pod as ``kubectl drain`` asks, with the Eviction's DeleteOptions.

    Kubernetes would first consult the PodDisruptionBudgets covering the pod
    and answer 429 when one forbids the disruption; nodeos has no budgets, so
    every eviction is allowed. A pod already terminating is left to finish.
    """
    dry_run = dry_run or "All" in (options.get("dryRun") or [])
    await registry.delete(PODS, namespace, pod_name, options, dry_run=dry_run)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
