"""Names and small builders shared by the OpenAPI documents."""

from __future__ import annotations

from typing import Any

OPENAPI_VERSION = "3.0.0"
INFO = {"title": "Kubernetes", "version": "v1.32.0"}
META = "io.k8s.apimachinery.pkg.apis.meta.v1"

JSON = "application/json"
YAML = "application/yaml"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml")


def schema_name(group: str, version: str, kind: str) -> str:
    """Kubernetes' definition name: ``io.k8s.api.<core|apps|coordination>.<v>.<Kind>``."""
    package = group.split(".")[0] if group else "core"
    return f"io.k8s.api.{package}.{version}.{kind}"


def gv_path(group: str, version: str) -> str:
    return f"/apis/{group}/{version}" if group else f"/api/{version}"


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def gvk_of(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}

