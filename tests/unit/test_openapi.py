"""The OpenAPI documents kubectl reads before ``create``/``apply``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from nodeos.api.kinds import RESOURCES, SCALE_GROUP, SCALE_VERSION, group_versions
from nodeos.api.openapi import (
    V2_PROTOBUF,
    openapi_v2,
    openapi_v2_for,
    openapi_v2_protobuf,
    openapi_v3_document,
    openapi_v3_document_bytes,
    openapi_v3_hash,
    openapi_v3_index,
    schema_name,
)

METHODS = ("get", "put", "post", "delete", "patch")


def gv_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            if key == "$ref":
                yield child
            else:
                yield from refs(child)
    elif isinstance(value, list):
        for child in value:
            yield from refs(child)


def test_index_lists_every_group_version_with_its_hash() -> None:
    index = openapi_v3_index()
    assert set(index["paths"]) == {gv_key(g, v) for g, v in group_versions()}
    for group, version in group_versions():
        url = index["paths"][gv_key(group, version)]["serverRelativeURL"]
        assert url == f"/openapi/v3/{gv_key(group, version)}?hash={openapi_v3_hash(group, version)}"
    json.dumps(index)


def test_documents_are_json_and_hashes_differ() -> None:
    hashes = set()
    for group, version in group_versions():
        doc = openapi_v3_document(group, version)
        assert doc is not None and doc["openapi"].startswith("3.")
        assert json.loads(openapi_v3_document_bytes(group, version)) == doc
        hashes.add(openapi_v3_hash(group, version))
    assert len(hashes) == len(group_versions())


def test_unknown_group_version_has_no_document() -> None:
    assert openapi_v3_document("batch", "v1") is None
    assert openapi_v3_document_bytes("", "v2") is None


def test_document_is_a_fresh_copy() -> None:
    doc = openapi_v3_document("apps", "v1")
    doc["paths"].clear()
    assert openapi_v3_document("apps", "v1")["paths"]


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.kind)
def test_every_kind_has_a_schema_with_its_gvk(resource: Any) -> None:
    doc = openapi_v3_document(resource.group, resource.version)
    schema = doc["components"]["schemas"][schema_name(resource.group, resource.version, resource.kind)]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": resource.group, "version": resource.version, "kind": resource.kind}]
    assert {"apiVersion", "kind", "metadata"} <= set(schema["properties"])


@pytest.mark.parametrize("resource", [r for r in RESOURCES if "patch" in r.verbs], ids=lambda r: r.kind)
def test_every_patchable_kind_has_a_patch_with_field_validation(resource: Any) -> None:
    """What kubectl's QueryParamVerifierV3 looks for before it sends a manifest."""
    doc = openapi_v3_document(resource.group, resource.version)
    gvk = {"group": resource.group, "version": resource.version, "kind": resource.kind}
    patches = [op for _, method, op in operations(doc)
               if method == "patch" and op["x-kubernetes-group-version-kind"] == gvk]
    assert patches, f"no PATCH for {resource.kind}"
    for op in patches:
        assert {"name": "fieldValidation", "in": "query"}.items() <= next(
            p for p in op["parameters"] if p["name"] == "fieldValidation").items()


def test_every_patch_operation_has_field_validation_and_no_strategic_merge() -> None:
    """kubectl takes the first PATCH it meets for a GVK, so none may lack the parameter; and
    advertising strategic merge would make ``kubectl apply`` compute patches from these loose
    schemas instead of its built-in merge keys."""
    for group, version in group_versions():
        for path, method, op in operations(openapi_v3_document(group, version)):
            if method != "patch":
                continue
            names = {p["name"] for p in op["parameters"] if p["in"] == "query"}
            assert {"fieldValidation", "dryRun", "fieldManager"} <= names, path
            assert "application/strategic-merge-patch+json" not in op["requestBody"]["content"], path
            assert "application/merge-patch+json" in op["requestBody"]["content"], path


def test_paths_and_actions() -> None:
    core = openapi_v3_document("", "v1")
    pods = core["paths"]["/api/v1/namespaces/{namespace}/pods"]
    assert pods["get"]["x-kubernetes-action"] == "list"
    assert pods["post"]["x-kubernetes-action"] == "post"
    assert pods["delete"]["x-kubernetes-action"] == "deletecollection"
    item = core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]
    assert {m for m in METHODS if m in item} == {"get", "put", "patch", "delete"}
    assert "get" in core["paths"]["/api/v1/pods"]
    assert "get" in core["paths"]["/api/v1/nodes/{name}"]
    assert "/api/v1/namespaces/{namespace}/nodes" not in core["paths"]
    assert "post" in core["paths"]["/api/v1/namespaces/{namespace}/bindings"]
    scale = openapi_v3_document("apps", "v1")["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["patch"]["x-kubernetes-group-version-kind"] == {"group": SCALE_GROUP, "version": SCALE_VERSION,
                                                                 "kind": "Scale"}


def test_namespaces_have_no_deletecollection() -> None:
    core = openapi_v3_document("", "v1")
    assert "delete" not in core["paths"]["/api/v1/namespaces"]
    assert "delete" in core["paths"]["/api/v1/namespaces/{name}"]


def test_every_reference_resolves() -> None:
    for group, version in group_versions():
        doc = openapi_v3_document(group, version)
        schemas = doc["components"]["schemas"]
        for ref in refs(doc):
            assert ref.startswith("#/components/schemas/") and ref.removeprefix("#/components/schemas/") in schemas


def test_schemas_accept_ordinary_manifests() -> None:
    """Spec and status are open, so a client validating against them rejects nothing the server takes."""
    schemas = openapi_v3_document("apps", "v1")["components"]["schemas"]
    deployment = schemas["io.k8s.api.apps.v1.Deployment"]["properties"]
    assert deployment["spec"]["x-kubernetes-preserve-unknown-fields"] is True
    event = openapi_v3_document("", "v1")["components"]["schemas"]["io.k8s.api.core.v1.Event"]["properties"]
    assert {"involvedObject", "reason", "message", "type", "count"} <= set(event)


def test_v2_json_document() -> None:
    doc = openapi_v2()
    json.dumps(doc)
    assert doc["swagger"] == "2.0"
    kinds = {(g["group"], g["version"], g["kind"]) for d in doc["definitions"].values()
             for g in d.get("x-kubernetes-group-version-kind", [])}
    assert {(r.group, r.version, r.kind) for r in RESOURCES} <= kinds
    assert all(ref.startswith("#/definitions/") for ref in refs(doc))
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert "application/merge-patch+json" in patch["consumes"]
    assert any(p["name"] == "fieldValidation" and p["in"] == "query" for p in patch["parameters"])


def _decode_protobuf(data: bytes) -> dict[int, bytes]:
    """Length-delimited fields of one protobuf message (enough for the stub)."""
    fields, at = {}, 0
    while at < len(data):
        tag, at = _varint(data, at)
        assert tag & 7 == 2
        length, at = _varint(data, at)
        fields[tag >> 3] = data[at:at + length]
        at += length
    return fields


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def test_v2_protobuf_stub_is_a_valid_empty_document() -> None:
    fields = _decode_protobuf(openapi_v2_protobuf())
    assert fields[1] == b"2.0"
    assert _decode_protobuf(fields[2]) == {1: b"Kubernetes", 2: b"v1.32.0"}
    assert set(fields) == {1, 2}  # no paths, no definitions: kubectl skips client-side schema checks


def test_v2_negotiation() -> None:
    content_type, body = openapi_v2_for("application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    assert content_type == V2_PROTOBUF and "@" not in content_type and body == openapi_v2_protobuf()
    content_type, body = openapi_v2_for("application/json")
    assert content_type == "application/json" and json.loads(body)["swagger"] == "2.0"
    assert openapi_v2_for(None)[0] == "application/json"
