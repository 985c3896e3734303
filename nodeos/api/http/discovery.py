"""Legacy discovery documents (/api, /apis, /api/v1, /apis/<g>/<v>) and /version.

kubectl asks for aggregated discovery first and falls back to these when the
answer is plain ``application/json``; they are derived from ``kinds.RESOURCES``.
"""

from __future__ import annotations

import platform
from typing import Any

from nodeos import __version__
from nodeos.api import metrics
from nodeos.api.kinds import EVICTION_GROUP, EVICTION_VERSION, RESOURCES, SCALE_GROUP, SCALE_VERSION, group_versions

KUBERNETES_MINOR = "32"  # the API level nodeos answers as; kubectl warns on skew


def api_versions() -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def api_group(group: str) -> dict[str, Any] | None:
    versions = [{"groupVersion": f"{g}/{v}", "version": v} for g, v in group_versions() if g == group]
    if group == metrics.GROUP:
        return metrics.api_group()
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions,
            "preferredVersion": versions[0]}


def api_group_list() -> dict[str, Any]:
    groups = [api_group(g) for g, _ in group_versions() if g]
    unique = {g["name"]: g for g in [*groups, metrics.api_group()] if g}
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": list(unique.values())}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    if (group, version) == (metrics.GROUP, metrics.VERSION):
        return metrics.resource_list()
    resources: list[dict[str, Any]] = []
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        entry: dict[str, Any] = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                 "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        resources.append(entry)
        for sub in r.subresources:
            resources.append(_subresource(r, sub))
    if not resources:
        return None
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}


def _subresource(r: Any, sub: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                             "kind": r.kind, "verbs": ["get", "patch", "update"]}
    if sub == "scale":
        entry.update(group=SCALE_GROUP, version=SCALE_VERSION, kind="Scale")
    elif sub == "binding":
        entry.update(kind="Binding", verbs=["create"])
    elif sub == "eviction":
        entry.update(group=EVICTION_GROUP, version=EVICTION_VERSION, kind="Eviction", verbs=["create"])
    elif sub == "log":
        entry.update(verbs=["get"])
    elif sub == "exec":
        entry.update(kind="PodExecOptions", verbs=["create", "get"])
    return entry


def version() -> dict[str, str]:
    return {
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": f"v1.{KUBERNETES_MINOR}.0-nodeos.{__version__}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": f"python{platform.python_version()}",
        "compiler": platform.python_implementation().lower(),
        "platform": f"{platform.system().lower()}/{_arch()}",
    }


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
