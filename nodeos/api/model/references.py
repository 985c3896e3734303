"""The Secrets and ConfigMaps a pod references, by name in its own namespace.

Two parts need the same answer: the node agent, which reads them to build the
pod's environment and volumes, and node restriction, which lets a node read
a Secret or ConfigMap only while a pod bound to it references it (as
Kubernetes' Node authorizer does with ``VisitPodSecretNames`` and
``VisitPodConfigmapNames``). One walk over the pod serves both, so what the
agent needs and what the node may read cannot drift apart.

Where a pod names them: ``imagePullSecrets`` (secrets), each container's
(init containers' too) ``envFrom`` and ``env[].valueFrom`` key references,
and the ``secret``, ``configMap`` and ``projected`` volumes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["CONFIG_MAP", "SECRET", "referenced_names", "references"]

SECRET = "secrets"
CONFIG_MAP = "configmaps"


def references(pod: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(plural, name)`` of every Secret and ConfigMap ``pod`` names (repeats possible)."""
    spec = pod.get("spec") or {}
    for ref in spec.get("imagePullSecrets") or []:
        yield from _named(SECRET, (ref or {}).get("name"))
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        yield from _container_references(container or {})
    for volume in spec.get("volumes") or []:
        yield from _volume_references(volume or {})


def referenced_names(pod: dict[str, Any], plural: str) -> set[str]:
    """The names of the ``plural`` (``secrets`` or ``configmaps``) that ``pod`` references."""
    return {name for kind, name in references(pod) if kind == plural}


def _container_references(container: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for source in container.get("envFrom") or []:
        source = source or {}
        yield from _named(CONFIG_MAP, (source.get("configMapRef") or {}).get("name"))
        yield from _named(SECRET, (source.get("secretRef") or {}).get("name"))
    for var in container.get("env") or []:
        value_from = (var or {}).get("valueFrom") or {}
        yield from _named(CONFIG_MAP, (value_from.get("configMapKeyRef") or {}).get("name"))
        yield from _named(SECRET, (value_from.get("secretKeyRef") or {}).get("name"))


def _volume_references(volume: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield from _named(SECRET, (volume.get("secret") or {}).get("secretName"))
    yield from _named(CONFIG_MAP, (volume.get("configMap") or {}).get("name"))
    for source in (volume.get("projected") or {}).get("sources") or []:
        source = source or {}
        yield from _named(SECRET, (source.get("secret") or {}).get("name"))
        yield from _named(CONFIG_MAP, (source.get("configMap") or {}).get("name"))


def _named(plural: str, name: Any) -> Iterator[tuple[str, str]]:
    if isinstance(name, str) and name:
        yield plural, name
