"""What the API server keeps true by itself: the built-in namespaces and the
``kubernetes`` Service exist, and a terminating namespace is emptied and then
removed (Kubernetes' namespace lifecycle, in-process because every kind in a
namespace lives in this server's store)."""

from __future__ import annotations

import logging

import trio

from nodeos.api.kinds import RESOURCES
from nodeos.api.registry import NAMESPACES, PROTECTED_NAMESPACES, SERVICES, Registry
from nodeos.errors import ApiError

log = logging.getLogger(__name__)
RESYNC_SECONDS = 1.0


async def ensure_builtins(registry: Registry, api_port: int) -> None:
    """Create what must exist from the first start; safe to repeat."""
    for name in PROTECTED_NAMESPACES:
        await _create_if_missing(registry, NAMESPACES, None, {"metadata": {"name": name}})
    await _create_if_missing(registry, SERVICES, "default", {
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": registry.allocator.api_service_ip,
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": api_port}],
            "sessionAffinity": "None",
        },
    })


async def _create_if_missing(registry: Registry, res, namespace: str | None, obj: dict) -> None:
    if registry.cache.get(res.store_key(namespace, obj["metadata"]["name"])) is not None:
        return
    try:
        await registry.create(res, namespace, obj)
        log.info("created %s %s", res.singular, obj["metadata"]["name"])
    except ApiError as exc:
        if exc.reason != "AlreadyExists":
            raise


async def finalize_namespaces(registry: Registry) -> None:
    """Level-triggered: every pass empties each terminating namespace."""
    while True:
        for cached in registry.cache.list(NAMESPACES.store_prefix()):
            if cached.obj["metadata"].get("deletionTimestamp"):
                await _empty_namespace(registry, cached.obj["metadata"]["name"])
        await trio.sleep(RESYNC_SECONDS)


async def _empty_namespace(registry: Registry, namespace: str) -> None:
    remaining = 0
    for res in RESOURCES:
        if not res.namespaced or "delete" not in res.verbs:
            continue
        for cached in registry.cache.list(res.store_prefix(namespace)):
            remaining += 1
            if cached.obj["metadata"].get("deletionTimestamp"):
                continue
            try:
                await registry.delete(res, namespace, cached.obj["metadata"]["name"], {"gracePeriodSeconds": 0})
            except ApiError as exc:
                if exc.code != 404:
                    log.warning("namespace %s: cannot delete %s: %s", namespace, cached.key, exc)
    if remaining == 0:
        await registry.finalize_namespace(namespace)
        log.info("namespace %s finalized", namespace)
