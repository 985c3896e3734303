"""Kubernetes' URL scheme, parsed into what a request is about."""

from __future__ import annotations

from dataclasses import dataclass

from nodeos.api.kinds import Resource, by_plural


@dataclass(frozen=True)
class ResourcePath:
    resource: Resource
    namespace: str | None  # None: cluster-scoped, or all namespaces for a list
    name: str | None
    subresource: str | None


@dataclass(frozen=True)
class GroupPath:
    """``/api/v1`` or ``/apis/<group>/<version>`` with nothing after it."""

    group: str
    version: str


class NotRoutable(Exception):
    """The path names no resource this server has."""


def parse(path: str) -> ResourcePath | GroupPath | None:
    """Parse a resource URL; None if the path is not under /api or /apis."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return GroupPath(group, version)
    return _resource_path(group, version, rest)


def _resource_path(group: str, version: str, rest: list[str]) -> ResourcePath:
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespaced = by_plural(group, version, rest[2])
        if namespaced is not None and namespaced.namespaced:
            return _item(namespaced, rest[1], rest[3:])
        if group:
            raise NotRoutable()
    resource = by_plural(group, version, rest[0])
    if resource is None:
        raise NotRoutable()
    if resource.namespaced:
        if len(rest) > 1:
            raise NotRoutable()
        return ResourcePath(resource, None, None, None)
    return _item(resource, None, rest[1:])


def _item(resource: Resource, namespace: str | None, rest: list[str]) -> ResourcePath:
    if len(rest) > 2:
        raise NotRoutable()
    name = rest[0] if rest else None
    sub = rest[1] if len(rest) > 1 else None
    if sub is not None and sub not in resource.subresources:
        raise NotRoutable()
    return ResourcePath(resource, namespace, name, sub)
