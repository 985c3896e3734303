"""Kubernetes' rules for what a write may contain and change, apart from how
the registry stores it: body shape, server-owned fields, grace periods and
preconditions."""

from __future__ import annotations

import json
from typing import Any

from nodeos.api.kinds import Resource, by_plural
from nodeos.api.watchcache import Cached
from nodeos.errors import ApiError, Cause

PODS = by_plural("", "v1", "pods")


def check_body(res: Resource, body: Any, namespace: str | None) -> dict[str, Any]:
    """The shape every write body must have before the model looks at it."""
    if not isinstance(body, dict):
        raise ApiError.bad_request(f"the body must be a JSON object describing a {res.kind}")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind is not None and kind != res.kind:
        raise ApiError.bad_request(f'the kind "{kind}" does not match the resource {res.qualified} (kind {res.kind})')
    if api_version is not None and api_version != res.api_version:
        raise ApiError.bad_request(f'the apiVersion "{api_version}" does not match {res.api_version} for {res.kind}')
    rest = {k: v for k, v in body.items() if k not in ("kind", "apiVersion")}
    body.clear()
    body.update(kind=res.kind, apiVersion=res.api_version, **rest)  # Kubernetes' key order, for readers
    metadata = body.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise ApiError.invalid(res.kind, "", [Cause("metadata", "Invalid value: must be an object")])
    if res.namespaced:
        if metadata.get("namespace") not in (None, "", namespace):
            raise ApiError.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request")
        metadata["namespace"] = namespace
    else:
        metadata.pop("namespace", None)
    return body


def raise_invalid(res: Resource, obj: dict[str, Any], causes: list[Any]) -> None:
    if causes:
        name = obj.get("metadata", {}).get("name") or ""
        raise ApiError.invalid(res.kind, name if isinstance(name, str) else "", causes, res.group)


def merge_server_fields(res: Resource, old: dict[str, Any], new: dict[str, Any],
                         subresource: str | None) -> dict[str, Any]:
    """Fields clients may not change through this path come from the old object."""
    if subresource == "status":
        status = new.get("status")
        new = json.loads(json.dumps(old))
        if status is not None:
            new["status"] = status
    elif "status" in res.subresources:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)
    metadata, old_metadata = new["metadata"], old["metadata"]
    for owned in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation",
                  "namespace"):
        if owned in old_metadata:
            metadata[owned] = old_metadata[owned]
        else:
            metadata.pop(owned, None)
    metadata.pop("selfLink", None)
    return new


def grace_period(res: Resource, obj: dict[str, Any], options: dict[str, Any]) -> int:
    """Pods on a node are deleted gracefully: their agent stops the containers
    and then finishes the deletion. Everything else goes at once."""
    if res is not PODS or not (obj.get("spec") or {}).get("nodeName"):
        return 0
    if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return 0
    grace = options.get("gracePeriodSeconds")
    if grace is None:
        grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    return max(int(grace), 0) if isinstance(grace, int) else 30


def check_preconditions(res: Resource, old: Cached, preconditions: Any) -> None:
    if not isinstance(preconditions, dict):
        return
    name = old.obj["metadata"]["name"]
    uid = preconditions.get("uid")
    if uid and uid != old.obj["metadata"].get("uid"):
        raise ApiError.conflict(res.plural, name, f"Precondition failed: UID in precondition: {uid}, "
                                f"UID in object meta: {old.obj['metadata'].get('uid')}", res.group)
    rv = preconditions.get("resourceVersion")
    if rv and rv != str(old.revision):
        raise ApiError.conflict(res.plural, name, f"Precondition failed: ResourceVersion in precondition: {rv}, "
                                f"ResourceVersion in object meta: {old.revision}", res.group)
