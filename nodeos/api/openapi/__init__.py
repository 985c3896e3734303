"""A minimal OpenAPI description of the served kinds, for kubectl.

kubectl 1.32 (``--validate=strict``, the default for ``create``/``apply``/
``replace``) reads ``/openapi/v3`` before sending anything: for each
object's group-version-kind it looks, in ``/openapi/v3/<api|apis/G>/<V>``,
for a PATCH operation carrying ``x-kubernetes-group-version-kind`` equal to
that GVK and a ``fieldValidation`` query parameter. If it finds one, it
leaves validation to the server and never needs a schema; if not, it
downloads ``/openapi/v2`` as **protobuf** to validate client-side, and fails
when it cannot. kubectl takes the *first* PATCH operation it meets for a
GVK (Go map order), so every PATCH operation here, subresources included,
has the parameter.

Deliberately, no PATCH operation lists ``application/strategic-merge-patch+json``
in its request body: ``kubectl apply`` would then compute its three-way
patch from *these* schemas, which are permissive and carry no merge keys,
and print "error calculating patch from openapi v3 spec" warnings. Without
it, kubectl uses the merge keys compiled into it for built-in kinds, which
are exactly Kubernetes'. The server accepts strategic merge patches anyway.

Schemas are intentionally loose (``spec``/``status`` preserve unknown
fields): the server validates; these documents must only never reject a
manifest the server would accept.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from nodeos.api.kinds import RESOURCES, SCALE_GROUP, SCALE_VERSION, group_versions
from nodeos.api.openapi._common import INFO, OPENAPI_VERSION, gv_path, schema_name
from nodeos.api.openapi.paths import resource_paths
from nodeos.api.openapi.schemas import common_schemas, kind_schema, list_schema, scale_schema
from nodeos.api.openapi.v2 import V2_PROTOBUF, openapi_v2_protobuf, v2_path_item, v2_schema

__all__ = [
    "V2_PROTOBUF",
    "openapi_v2",
    "openapi_v2_for",
    "openapi_v2_protobuf",
    "openapi_v3_document",
    "openapi_v3_document_bytes",
    "openapi_v3_hash",
    "openapi_v3_index",
    "schema_name",
]


def openapi_v3_index() -> dict[str, Any]:
    """The discovery document at ``/openapi/v3``: one entry per group-version.

    The ``hash`` query makes each document URL content-addressed; kubectl
    caches by URL, so the hash changes whenever a document does.
    """
    paths = {}
    for group, version in group_versions():
        key = gv_path(group, version).lstrip("/")
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={openapi_v3_hash(group, version)}"}
    return {"paths": paths}


def openapi_v3_hash(group: str, version: str) -> str:
    """The content hash of one group-version document (uppercase hex SHA-512, as Kubernetes)."""
    return _v3_cached(group, version)[1]


def openapi_v3_document(group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI 3.0 document of one group-version, or None if not served.

    ``group`` is ``""`` for the core ``/api/v1``. Returns a fresh copy, so
    callers may mutate it.
    """
    if (group, version) not in group_versions():
        return None
    return json.loads(_v3_cached(group, version)[0])


def openapi_v3_document_bytes(group: str, version: str) -> bytes | None:
    """The same document pre-serialised: what a server should send (it is served often)."""
    if (group, version) not in group_versions():
        return None
    return _v3_cached(group, version)[0]


def openapi_v2() -> dict[str, Any]:
    """A Swagger 2.0 document of every kind, for clients that read ``/openapi/v2`` as JSON.

    kubectl asks ``/openapi/v2`` for protobuf only: a server must answer that
    Accept with 406/404, never with this JSON, or kubectl fails to parse it.
    """
    paths: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    for group, version in group_versions():
        doc = _build_v3(group, version)
        for path, item in doc["paths"].items():
            paths[path] = v2_path_item(item)
        for name, schema in doc["components"]["schemas"].items():
            definitions[name] = v2_schema(schema)
    return {"swagger": "2.0", "info": INFO, "paths": paths, "definitions": definitions}


def openapi_v2_for(accept: str | None) -> tuple[str, bytes]:
    """What to answer ``GET /openapi/v2`` with: (Content-Type, body) for an Accept header.

    kubectl asks for protobuf and gets the definition-less stub (see
    ``openapi_v2_protobuf``); anyone else gets the JSON document.
    """
    if accept and "protobuf" in accept:
        return V2_PROTOBUF, openapi_v2_protobuf()
    return "application/json", _v2_json()


@cache
def _v2_json() -> bytes:
    return json.dumps(openapi_v2(), sort_keys=True, separators=(",", ":")).encode()


@cache
def _v3_cached(group: str, version: str) -> tuple[bytes, str]:
    data = json.dumps(_build_v3(group, version), sort_keys=True, separators=(",", ":")).encode()
    return data, hashlib.sha512(data).hexdigest().upper()


def _build_v3(group: str, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = common_schemas()
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        paths.update(resource_paths(r))
        schemas[schema_name(r.group, r.version, r.kind)] = kind_schema(r)
        if "list" in r.verbs:
            schemas[schema_name(r.group, r.version, r.list_kind_name)] = list_schema(r)
        if "scale" in r.subresources:
            schemas[schema_name(SCALE_GROUP, SCALE_VERSION, "Scale")] = scale_schema()
    return {
        "openapi": OPENAPI_VERSION,
        "info": INFO,
        "paths": paths,
        "components": {"schemas": schemas},
    }
