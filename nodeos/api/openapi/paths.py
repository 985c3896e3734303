"""Paths and operations: one collection and one item path per resource, plus subresources.

Every PATCH carries ``fieldValidation`` and ``x-kubernetes-group-version-kind``:
that pair is what kubectl looks for before it sends objects.
"""

from __future__ import annotations

from typing import Any

from nodeos.api.kinds import SCALE_GROUP, SCALE_VERSION, Resource
from nodeos.api.openapi._common import (
    JSON,
    META,
    PATCH_TYPES,
    YAML,
    gv_path,
    gvk_of,
    ref,
    schema_name,
)


def _query(name: str, description: str, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description,
            "schema": {"type": type_, "uniqueItems": True}}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "description": description, "required": True,
            "schema": {"type": "string", "uniqueItems": True}}


DRY_RUN = _query("dryRun", "When present, indicates that modifications should not be persisted. "
                 "Valid values are: - All: all dry run stages will be processed")
FIELD_MANAGER = _query("fieldManager", "fieldManager is a name associated with the actor or entity "
                       "that is making these changes.")
FIELD_VALIDATION = _query("fieldValidation", "fieldValidation instructs the server on how to handle "
                          "objects in the request containing unknown or duplicate fields. Valid values "
                          "are: Ignore, Warn, Strict.")
FORCE = _query("force", "Force is going to \"force\" Apply requests.", "boolean")
PRETTY = _query("pretty", "If 'true', then the output is pretty printed.")
LIST_PARAMS = [
    _query("allowWatchBookmarks", "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
           "boolean"),
    _query("continue", "The continue option should be set when retrieving more results from the server."),
    _query("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
    _query("labelSelector", "A selector to restrict the list of returned objects by their labels."),
    _query("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
    _query("resourceVersion", "resourceVersion sets a constraint on what resource versions a request "
           "may be served from."),
    _query("resourceVersionMatch", "resourceVersionMatch determines how resourceVersion is applied."),
    _query("sendInitialEvents", "`sendInitialEvents=true` may be set together with `watch=true`.",
           "boolean"),
    _query("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
    _query("watch", "Watch for changes to the described resources.", "boolean"),
]
DELETE_PARAMS = [
    DRY_RUN,
    _query("gracePeriodSeconds", "The duration in seconds before the object should be deleted.", "integer"),
    _query("propagationPolicy", "Whether and how garbage collection will be performed: "
           "'Orphan', 'Background' or 'Foreground'."),
]


_CODE_TEXT = {"200": "OK", "201": "Created", "202": "Accepted"}


def _responses(schema: dict[str, Any], *codes: str) -> dict[str, Any]:
    content = {ct: {"schema": schema} for ct in (JSON, YAML)}
    out = {code: {"description": _CODE_TEXT[code], "content": content} for code in codes}
    out["401"] = {"description": "Unauthorized"}
    return out


def _body(schema: dict[str, Any], content_types: tuple[str, ...] = (JSON, YAML)) -> dict[str, Any]:
    return {"content": {ct: {"schema": schema} for ct in content_types}, "required": True}


def _op(action: str, op_id: str, gvk: dict[str, str], description: str,
        responses: dict[str, Any], parameters: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "description": description,
        "operationId": op_id,
        "responses": responses,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    return op


def _op_suffix(r: Resource) -> str:
    """``CoreV1NamespacedPod``-style operationId stem, as Kubernetes names them."""
    group = "".join(p.capitalize() for p in (r.group.split(".")[0] if r.group else "core").split("-"))
    return f"{group}{r.version.capitalize()}{'Namespaced' if r.namespaced else ''}{r.kind}"


def resource_paths(r: Resource) -> dict[str, Any]:
    """Collection and item paths (plus subresources) of one resource, with the verbs it serves."""
    base = gv_path(r.group, r.version)
    ns_param = _path_param("namespace", "object name and auth scope, such as for teams and projects")
    name_param = _path_param("name", f"name of the {r.kind}")
    scope = [ns_param] if r.namespaced else []
    collection = f"{base}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{base}/{r.plural}"
    item = f"{collection}/{{name}}"
    gvk = gvk_of(r.group, r.version, r.kind)
    obj = ref(schema_name(r.group, r.version, r.kind))
    lst = ref(schema_name(r.group, r.version, r.list_kind_name))
    stem = _op_suffix(r)
    verbs = set(r.verbs)
    paths: dict[str, Any] = {}

    coll: dict[str, Any] = {}
    if "list" in verbs:
        coll["get"] = _op("list", f"list{stem}", gvk, f"list or watch objects of kind {r.kind}",
                          _responses(lst, "200"), LIST_PARAMS)
    if "create" in verbs:
        coll["post"] = _op("post", f"create{stem}", gvk, f"create a {r.kind}",
                           _responses(obj, "200", "201", "202"),
                           [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION], _body(obj))
    if "deletecollection" in verbs:
        coll["delete"] = _op("deletecollection", f"deletecollection{stem}", gvk,
                             f"delete collection of {r.kind}",
                             _responses(ref(f"{META}.Status"), "200"), DELETE_PARAMS + LIST_PARAMS)
    if coll:
        coll["parameters"] = [*scope, PRETTY]
        paths[collection] = coll
    if r.namespaced and "list" in verbs:
        paths[f"{base}/{r.plural}"] = {
            "get": _op("list", f"list{stem.replace('Namespaced', '')}ForAllNamespaces", gvk,
                       f"list or watch objects of kind {r.kind}", _responses(lst, "200"), LIST_PARAMS),
            "parameters": [PRETTY],
        }

    one = _item_ops(r, gvk, obj, stem, verbs)
    if one:
        one["parameters"] = [name_param, *scope, PRETTY]
        paths[item] = one

    for sub in r.subresources:
        sub_path = _subresource_path(r, sub, gvk, obj, stem, [name_param, *scope, PRETTY])
        if sub_path:
            paths[f"{item}/{sub}"] = sub_path
    return paths


def _item_ops(r: Resource, gvk: dict[str, str], obj: dict[str, Any], stem: str,
              verbs: set[str], suffix: str = "") -> dict[str, Any]:
    ops: dict[str, Any] = {}
    what = f"{suffix.lower()} of " if suffix else ""
    if "get" in verbs:
        ops["get"] = _op("get", f"read{stem}{suffix}", gvk, f"read {what}the specified {r.kind}",
                         _responses(obj, "200"))
    if "update" in verbs:
        ops["put"] = _op("put", f"replace{stem}{suffix}", gvk, f"replace {what}the specified {r.kind}",
                         _responses(obj, "200", "201"), [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION],
                         _body(obj))
    if "patch" in verbs:
        patch_schema = ref(f"{META}.Patch")
        ops["patch"] = _op("patch", f"patch{stem}{suffix}", gvk,
                           f"partially update {what}the specified {r.kind}",
                           _responses(obj, "200", "201"),
                           [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE], _body(patch_schema, PATCH_TYPES))
    if "delete" in verbs and not suffix:
        ops["delete"] = _op("delete", f"delete{stem}", gvk, f"delete a {r.kind}",
                            _responses(ref(f"{META}.Status"), "200", "202"), DELETE_PARAMS,
                            {"content": {ct: {"schema": ref(f"{META}.DeleteOptions")} for ct in (JSON, YAML)}})
    return ops


def _subresource_path(r: Resource, sub: str, gvk: dict[str, str], obj: dict[str, Any], stem: str,
                      parameters: list[dict[str, Any]]) -> dict[str, Any] | None:
    verbs = {"get", "update", "patch"}
    if sub == "status":
        ops = _item_ops(r, gvk, obj, stem, verbs, "Status")
    elif sub == "scale":
        scale = ref(schema_name(SCALE_GROUP, SCALE_VERSION, "Scale"))
        ops = _item_ops(r, gvk_of(SCALE_GROUP, SCALE_VERSION, "Scale"), scale, stem, verbs, "Scale")
    elif sub == "binding":
        binding = ref(schema_name("", "v1", "Binding"))
        ops = {"post": _op("post", f"create{stem}Binding", gvk_of("", "v1", "Binding"),
                           f"create binding of a {r.kind}", _responses(binding, "200", "201", "202"),
                           [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION], _body(binding))}
    elif sub == "log":
        ops = {"get": {
            "description": f"read log of the specified {r.kind}",
            "operationId": f"read{stem}Log",
            "responses": {"200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}},
            "x-kubernetes-action": "get",
            "x-kubernetes-group-version-kind": gvk,
        }}
    else:
        return None
    ops["parameters"] = parameters
    return ops
