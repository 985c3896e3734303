"""What the API server keeps true by itself: the built-in namespaces and the
``kubernetes`` Service exist, and a terminating namespace is emptied and then
removed (Kubernetes' namespace lifecycle, in-process because every kind in a
namespace lives in this server's store).

With several masters every one of them does all of this at once: creates that
lose a race (AlreadyExists, Conflict) mean another master did the work. The
``kubernetes`` Service's Endpoints list every live master, as Kubernetes'
lease endpoint reconciler keeps them: each master renews a Lease
``apiserver-<node>`` in kube-system carrying its address, and writes the
Endpoints from the Leases that have not expired — so a killed master drops
out within ``MASTER_LEASE_SECONDS`` without anyone having to notice its death.
A master's address is its node's (``[agent] address``, else the default
route's, as Kubernetes' ``--advertise-address``); Endpoints may not hold
loopback addresses, so a master with no other is left out of them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
from typing import Any

import trio

from nodeos.api.kinds import RESOURCES, by_plural
from nodeos.api.registry import NAMESPACES, PROTECTED_NAMESPACES, SERVICES, Registry
from nodeos.errors import ApiError, KeyNotFound, StoreError

log = logging.getLogger(__name__)
RESYNC_SECONDS = 1.0
LEASES = by_plural("coordination.k8s.io", "v1", "leases")
ENDPOINTS = by_plural("", "v1", "endpoints")
MASTER_LEASE_SECONDS = 15  # Kubernetes' master lease TTL
MASTER_RENEW_SECONDS = 5.0
IDENTITY_LABEL = "apiserver.kubernetes.io/identity"
ADDRESS_ANNOTATION = "nodeos.io/api-address"


async def ensure_builtins(registry: Registry, api_port: int) -> None:
    """Create what must exist from the first start; safe to repeat, and to run
    on several masters at once."""
    await registry.sync()
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
        if exc.reason not in ("AlreadyExists", "Conflict"):
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


async def reconcile_master_endpoints(registry: Registry, node: str, ip: str, port: int) -> None:
    """Keep this master's Lease renewed and the ``kubernetes`` Endpoints listing
    the masters with live Leases; on the way out, drop this master's Lease."""
    try:
        while True:
            try:
                await _renew_master_lease(registry, node, ip, port)
                await _reconcile_endpoints(registry)
            except ApiError as exc:
                log.warning("master endpoints: %s", exc)
            await trio.sleep(MASTER_RENEW_SECONDS)
    finally:
        # Straight to the store: the watch cache is stopping with us, so the registry's
        # wait for it to see the delete would last until the timeout.
        with trio.CancelScope(shield=True), trio.move_on_after(2), contextlib.suppress(KeyNotFound, StoreError):
            await registry.store.delete(LEASES.store_key("kube-system", _lease_name(node)))


def _lease_name(node: str) -> str:
    return f"apiserver-{node}"


async def _renew_master_lease(registry: Registry, node: str, ip: str, port: int) -> None:
    spec = {"holderIdentity": node, "leaseDurationSeconds": MASTER_LEASE_SECONDS, "renewTime": _micro_time()}
    metadata = {"name": _lease_name(node), "labels": {IDENTITY_LABEL: "kube-apiserver"},
                "annotations": {ADDRESS_ANNOTATION: f"{ip}:{port}"}}
    if registry.cache.get(LEASES.store_key("kube-system", metadata["name"])) is None:
        try:
            await registry.create(LEASES, "kube-system", {"metadata": metadata, "spec": spec})
            return
        except ApiError as exc:
            if exc.reason != "AlreadyExists":
                raise
    await registry.patch(LEASES, "kube-system", metadata["name"], "merge", {"metadata": metadata, "spec": spec})


async def _reconcile_endpoints(registry: Registry) -> None:
    wanted = master_subsets(registry.cache.list(LEASES.store_prefix("kube-system")), dt.datetime.now(dt.UTC))
    current = registry.cache.get(ENDPOINTS.store_key("default", "kubernetes"))
    if current is not None and (current.obj.get("subsets") or []) == wanted:
        return
    body: dict[str, Any] = {"metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror":
                                                                        "true"}},
                            "subsets": wanted}
    try:
        if current is None:
            await registry.create(ENDPOINTS, "default", body)
        else:
            body["metadata"]["resourceVersion"] = str(current.revision)
            await registry.update(ENDPOINTS, "default", "kubernetes", body)
    except ApiError as exc:
        if exc.reason not in ("AlreadyExists", "Conflict"):
            raise  # else another master wrote them first: the next pass compares again


def master_subsets(leases: list[Any], now: dt.datetime) -> list[dict[str, Any]]:
    """Endpoints subsets for the masters whose Leases are live, one subset per port."""
    by_port: dict[int, set[str]] = {}
    for cached in leases:
        obj = cached.obj
        if (obj["metadata"].get("labels") or {}).get(IDENTITY_LABEL) != "kube-apiserver":
            continue
        address = (obj["metadata"].get("annotations") or {}).get(ADDRESS_ANNOTATION, "")
        ip, _, port = address.rpartition(":")
        if not _routable(ip) or not port.isdigit() or not _live(obj.get("spec") or {}, now):
            continue
        by_port.setdefault(int(port), set()).add(ip)
    return [{"addresses": [{"ip": ip} for ip in sorted(ips)],
             "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}
            for port, ips in sorted(by_port.items())]


def _routable(ip: str) -> bool:
    try:
        return not ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _live(spec: dict[str, Any], now: dt.datetime) -> bool:
    try:
        renewed = dt.datetime.fromisoformat(str(spec.get("renewTime")).replace("Z", "+00:00"))
    except ValueError:
        return False
    return renewed + dt.timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0)) > now


def _micro_time() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
