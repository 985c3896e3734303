"""Component schemas: one loose object schema per kind, and the meta/v1 types they use.

Deliberately permissive (``spec`` and ``status`` preserve unknown fields):
the server validates objects; these schemas serve ``kubectl explain`` and
must never make a client reject a manifest the server would accept.
"""

from __future__ import annotations

from typing import Any

from nodeos.api.kinds import SCALE_GROUP, SCALE_VERSION, Resource
from nodeos.api.openapi._common import META, gvk_of, ref, schema_name

# Top-level fields of the kinds that have no spec/status pair.
_FLAT_FIELDS: dict[str, tuple[str, ...]] = {
    "Event": ("action", "count", "eventTime", "firstTimestamp", "involvedObject", "lastTimestamp",
              "message", "reason", "related", "reportingComponent", "reportingInstance", "series",
              "source", "type"),
    "Endpoints": ("subsets",),
    "Binding": ("target",),
    "ConfigMap": ("binaryData", "data", "immutable"),
    "Secret": ("data", "immutable", "stringData", "type"),
}
# Kinds with a spec but no status.
_NO_STATUS = {"Lease", "LimitRange"}


def _string(description: str = "") -> dict[str, Any]:
    return {"type": "string", "description": description} if description else {"type": "string"}


_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
_LOOSE_OBJECT = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _type_meta() -> dict[str, Any]:
    return {
        "apiVersion": _string("APIVersion defines the versioned schema of this representation of an object."),
        "kind": _string("Kind is a string value representing the REST resource this object represents."),
    }


def kind_schema(r: Resource) -> dict[str, Any]:
    props = _type_meta()
    props["metadata"] = {"allOf": [ref(f"{META}.ObjectMeta")], "default": {},
                         "description": "Standard object's metadata."}
    if r.kind in _FLAT_FIELDS:
        for name in _FLAT_FIELDS[r.kind]:
            props[name] = _flat_field_schema(name)
    else:
        props["spec"] = {**_LOOSE_OBJECT, "description": f"Specification of the desired behavior of the {r.kind}."}
        if r.kind not in _NO_STATUS:
            props["status"] = {**_LOOSE_OBJECT, "description": f"Most recently observed status of the {r.kind}."}
    return {
        "description": f"{r.kind} of the {r.api_version} API.",
        "type": "object",
        "properties": props,
        "x-kubernetes-group-version-kind": [gvk_of(r.group, r.version, r.kind)],
    }


def _flat_field_schema(name: str) -> dict[str, Any]:
    if name == "count":
        return {"type": "integer", "format": "int32"}
    if name in ("firstTimestamp", "lastTimestamp"):
        return {"type": "string", "format": "date-time"}
    if name == "eventTime":
        return {"type": "string", "format": "date-time"}
    if name == "subsets":
        return {"type": "array", "items": _LOOSE_OBJECT}
    if name == "immutable":
        return {"type": "boolean"}
    if name in ("data", "binaryData", "stringData"):
        return dict(_STRING_MAP)
    if name in ("involvedObject", "related", "series", "source", "target"):
        return dict(_LOOSE_OBJECT)
    return _string()


def list_schema(r: Resource) -> dict[str, Any]:
    props = _type_meta()
    props["items"] = {"type": "array", "items": {"allOf": [ref(schema_name(r.group, r.version, r.kind))],
                                                 "default": {}}}
    props["metadata"] = {"allOf": [ref(f"{META}.ListMeta")], "default": {}}
    return {
        "description": f"{r.list_kind_name} is a list of {r.kind}.",
        "type": "object",
        "required": ["items"],
        "properties": props,
        "x-kubernetes-group-version-kind": [gvk_of(r.group, r.version, r.list_kind_name)],
    }


def scale_schema() -> dict[str, Any]:
    props = _type_meta()
    props["metadata"] = {"allOf": [ref(f"{META}.ObjectMeta")], "default": {}}
    props["spec"] = {"type": "object", "properties": {"replicas": {"type": "integer", "format": "int32"}}}
    props["status"] = {"type": "object", "required": ["replicas"], "properties": {
        "replicas": {"type": "integer", "format": "int32", "default": 0},
        "selector": _string("label query over pods that should match the replicas count."),
    }}
    return {"description": "Scale represents a scaling request for a resource.", "type": "object",
            "properties": props,
            "x-kubernetes-group-version-kind": [gvk_of(SCALE_GROUP, SCALE_VERSION, "Scale")]}


def common_schemas() -> dict[str, Any]:
    """The meta.k8s.io/v1 schemas every document references."""
    time = {"type": "string", "format": "date-time"}
    owner_ref = {
        "type": "object",
        "required": ["apiVersion", "kind", "name", "uid"],
        "properties": {
            "apiVersion": _string(), "kind": _string(), "name": _string(), "uid": _string(),
            "controller": {"type": "boolean"}, "blockOwnerDeletion": {"type": "boolean"},
        },
        "x-kubernetes-map-type": "atomic",
    }
    object_meta = {
        "description": "ObjectMeta is metadata that all persisted resources must have.",
        "type": "object",
        "properties": {
            "annotations": _STRING_MAP,
            "creationTimestamp": time,
            "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
            "deletionTimestamp": time,
            "finalizers": {"type": "array", "items": {"type": "string", "default": ""},
                           "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"},
            "generateName": _string(),
            "generation": {"type": "integer", "format": "int64"},
            "labels": _STRING_MAP,
            "managedFields": {"type": "array", "items": _LOOSE_OBJECT},
            "name": _string(),
            "namespace": _string(),
            "ownerReferences": {"type": "array", "items": {"allOf": [ref(f"{META}.OwnerReference")],
                                                           "default": {}},
                                "x-kubernetes-list-map-keys": ["uid"], "x-kubernetes-list-type": "map",
                                "x-kubernetes-patch-merge-key": "uid",
                                "x-kubernetes-patch-strategy": "merge"},
            "resourceVersion": _string(),
            "selfLink": _string(),
            "uid": _string(),
        },
    }
    list_meta = {"type": "object", "properties": {
        "continue": _string(), "remainingItemCount": {"type": "integer", "format": "int64"},
        "resourceVersion": _string(), "selfLink": _string(),
    }}
    status = {
        "type": "object",
        "properties": {**_type_meta(), "code": {"type": "integer", "format": "int32"},
                       "details": _LOOSE_OBJECT, "message": _string(),
                       "metadata": {"allOf": [ref(f"{META}.ListMeta")], "default": {}},
                       "reason": _string(), "status": _string()},
        "x-kubernetes-group-version-kind": [gvk_of("", "v1", "Status")],
    }
    delete_options = {
        "type": "object",
        "properties": {**_type_meta(), "dryRun": {"type": "array", "items": _string()},
                       "gracePeriodSeconds": {"type": "integer", "format": "int64"},
                       "orphanDependents": {"type": "boolean"}, "preconditions": _LOOSE_OBJECT,
                       "propagationPolicy": _string()},
    }
    return {
        f"{META}.ObjectMeta": object_meta,
        f"{META}.ListMeta": list_meta,
        f"{META}.OwnerReference": owner_ref,
        f"{META}.Status": status,
        f"{META}.DeleteOptions": delete_options,
        f"{META}.Patch": {"type": "object", "description": "Patch is provided to give a concrete name "
                          "and type to the Kubernetes PATCH request body."},
        f"{META}.Time": time,
    }
