"""The cluster DNS: Service names for the pods of this node, and their resolver for every other name.

Each worker runs one, as a node-local DNS cache would, on its pods' gateway
address (the first host address of the Node's ``spec.podCIDR``, the pod
bridge's address) port 53, UDP and TCP, so that pods reach it without any
Service or proxy in between. It answers ``<service>.<ns>.svc.<domain>`` and
friends from the Services and Endpoints informers' caches (``records``) and
forwards other names to ``[dns] upstream`` or the host's resolv.conf
nameservers (``forward``). Pods with ``dnsPolicy: ClusterFirst`` are told to
ask it (``nodeos.agent.podman.dnsconfig``).

The podCIDR is the Node's, which the node IPAM controller assigns after the
agent registered it: the component waits for it, and restarts (through the
daemon's supervisor) should it ever change. Names outside the cluster zone
are answered by the upstreams, which are read again every ``RESYNC_SECONDS``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import trio

from nodeos.agent.podman.network import gateway
from nodeos.api.kinds import by_plural
from nodeos.client import ApiClient, Informer
from nodeos.config import Config
from nodeos.network.dns.forward import Forwarder, Upstream, upstreams
from nodeos.network.dns.records import ClusterZone, ReverseZone
from nodeos.network.dns.resolvconf import HOST_RESOLV_CONF, read_resolv_conf
from nodeos.network.dns.resolver import Resolver
from nodeos.network.dns.server import serve_dns

__all__ = ["DNS_PORT", "DnsError", "run_dns"]

log = logging.getLogger(__name__)
SERVICES = by_plural("", "v1", "services")
ENDPOINTS = by_plural("", "v1", "endpoints")
NODES = by_plural("", "v1", "nodes")
DNS_PORT = 53
RESYNC_SECONDS = 30.0


class DnsError(Exception):
    """The node's podCIDR changed under the running server: restart on the new gateway."""


async def run_dns(config: Config, api: ApiClient, *, host: str | None = None, port: int = DNS_PORT,
                  resolv_conf: Path = HOST_RESOLV_CONF,
                  task_status: trio.TaskStatus[tuple[str, int]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the cluster DNS until cancelled; started, with the bound ``(host, port)``, once serving.

    ``host`` None: the gateway of the node's podCIDR (tests pass a loopback address, and port 0)."""
    services = Informer(api, SERVICES, resync_period=None)
    endpoints = Informer(api, ENDPOINTS, resync_period=None)
    async with trio.open_nursery() as nursery:
        await nursery.start(services.run)
        await nursery.start(endpoints.run)
        pod_cidr = None
        if host is None:
            nodes = Informer(api, NODES, field_selector=f"metadata.name={config.node.name}", resync_period=None)
            await nursery.start(nodes.run)
            pod_cidr = await _wait_pod_cidr(nodes, config.node.name)
            host = gateway(pod_cidr)
            nursery.start_soon(_watch_pod_cidr, nodes, config.node.name, pod_cidr)
        zone = ClusterZone(config.dns.domain, services.get, endpoints.get)
        forwarder = Forwarder([])
        await _refresh_upstreams(forwarder, config, Upstream(host, port), resolv_conf)
        reverse = ReverseZone(zone, [config.cluster.service_cidr, config.cluster.pod_cidr], services.list)
        bound = await nursery.start(serve_dns, Resolver(zone, forwarder, reverse).resolve, host, port)
        log.info("dns: %s answered on %s:%d, other names forwarded to %s", config.dns.domain, *bound,
                 ", ".join(map(str, forwarder.upstreams)) or "no upstream (SERVFAIL)")
        nursery.start_soon(_keep_upstreams, forwarder, config, Upstream(*bound), resolv_conf)
        task_status.started(bound)


async def _wait_pod_cidr(nodes: Informer, name: str) -> str:
    while True:
        cidr = _pod_cidr(nodes, name)
        if cidr:
            return cidr
        log.info("dns: waiting for node %s's podCIDR", name)
        await trio.sleep(1)


async def _watch_pod_cidr(nodes: Informer, name: str, serving: str) -> None:
    while True:
        await trio.sleep(RESYNC_SECONDS / 6)
        cidr = _pod_cidr(nodes, name)
        if cidr and cidr != serving:
            raise DnsError(f"node {name}'s podCIDR changed from {serving} to {cidr}: restarting on its gateway")


def _pod_cidr(nodes: Informer, name: str) -> str | None:
    node = nodes.get(name) or {}
    return (node.get("spec") or {}).get("podCIDR")


async def _keep_upstreams(forwarder: Forwarder, config: Config, own: Upstream, resolv_conf: Path) -> None:
    while True:
        await trio.sleep(RESYNC_SECONDS)
        await _refresh_upstreams(forwarder, config, own, resolv_conf)


async def _refresh_upstreams(forwarder: Forwarder, config: Config, own: Upstream, resolv_conf: Path) -> None:
    host = await trio.to_thread.run_sync(read_resolv_conf, resolv_conf)
    found = upstreams(config.dns.upstream, host.nameservers, [own])
    if found != forwarder.upstreams:
        if forwarder.upstreams or not found:
            log.info("dns: upstreams now %s", ", ".join(map(str, found)) or "none")
        forwarder.upstreams = found
