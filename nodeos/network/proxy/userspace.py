"""The userspace Service proxy (``[proxy] mode = "userspace"``): kube-proxy's first mode, on trio.

For hosts where the nftables mode cannot be used (no nftables NAT for
forwarded traffic, or as a fallback to compare with), this mode relays
Service traffic through the daemon itself, as kube-proxy's userspace mode
did:

- each TCP or UDP Service port gets a listener on a port the kernel picks
  (``relay.TcpProxy``, ``relay.UdpProxy``), which sends each new connection
  (UDP: each client's session) to the next ready endpoint in turn
  (``balancer.Balancer``: round robin, ClientIP affinity, try the next
  endpoint when one refuses);
- the Service's cluster IP and port, and its node port on every local
  address, are redirected to that listener by a small nftables table of its
  own (``redirect``), which also rejects ports that have no endpoint;
- a NodePort Service with ``externalTrafficPolicy: Local`` gets a second
  listener for its node port, balancing over this node's endpoints only.

It follows Services and Endpoints through ``model.ServiceTracker``: a
changed Service port opens, updates or closes its listeners, and the table
is rewritten whole in one transaction after every batch of changes and at
every periodic full resync, which also repairs rules deleted by hand.
Removing an endpoint takes it out of the balancer at once: new connections
avoid it, established TCP relays finish, UDP sessions to it end.

Limits, as in kube-proxy's userspace mode: endpoints see the node, not the
client, as the source; every byte crosses the daemon (see the README for
the throughput cost); SCTP ports are not served; the listeners' ports change
when the daemon restarts and established relays end with it, so a restart
breaks open connections (the nftables mode keeps them).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import trio

from nodeos.client import ApiClient
from nodeos.config import Config
from nodeos.network.proxy import redirect
from nodeos.network.proxy.balancer import Address, Balancer
from nodeos.network.proxy.model import ServicePort, ServiceTracker
from nodeos.network.proxy.relay import TcpProxy, UdpProxy

log = logging.getLogger(__name__)

__all__ = ["UserspaceProxy", "run_userspace_proxy"]

RETRY_SECONDS = 5.0
_PROXIES = {"TCP": TcpProxy, "UDP": UdpProxy}
_CLUSTER, _NODE = "cluster", "node"  # a listener's role: all endpoints, or a Local node port's own


async def run_userspace_proxy(config: Config, api: ApiClient, *,
                              task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve every Service port of the cluster on this node until cancelled; started once the table is written.

    A table that cannot be written at start is an error (the supervisor
    restarts the component); later, the write is retried every few seconds
    while the listeners keep serving.
    """
    tracker = ServiceTracker(api)
    async with trio.open_nursery() as nursery:
        await nursery.start(tracker.run)
        proxy = UserspaceProxy(config.node.name, nursery)
        first = await tracker.changes()  # the first full list: only then is the snapshot worth serving
        await proxy.sync(tracker.snapshot(), first)
        log.info("userspace proxy: serving %d Service ports", len(proxy.ports))
        task_status.started()
        while True:
            changes = await tracker.changes()
            try:
                await proxy.sync(tracker.snapshot(), changes)
            except redirect.NftError as exc:
                log.error("userspace proxy: %s; retrying in %.0f s", exc, RETRY_SECONDS)
                await _write_until_done(proxy)


async def _write_until_done(proxy: UserspaceProxy) -> None:
    while True:
        await trio.sleep(RETRY_SECONDS)
        try:
            await proxy.write_table()
            return
        except redirect.NftError as exc:
            log.error("userspace proxy: %s; retrying in %.0f s", exc, RETRY_SECONDS)


class UserspaceProxy:
    """The listeners and the redirect table for a set of Service ports, brought in step by ``sync``.

    Listeners run in ``nursery``; a closed one ends with all its relays.
    """

    def __init__(self, node_name: str, nursery: trio.Nursery) -> None:
        self.node_name = node_name
        self.ports: dict[str, ServicePort] = {}  # the ports served, by key
        self._nursery = nursery
        self._listeners: dict[tuple[str, str], TcpProxy | UdpProxy] = {}  # (port key, role) -> listener
        self._udp: dict[redirect.UdpDestination, int | None] | None = None  # as last written; None: unknown
        self._unsupported: set[str] = set()  # keys of SCTP ports, warned about once

    async def sync(self, ports: dict[str, ServicePort], changed: Iterable[str]) -> None:
        """Bring the ``changed`` keys' listeners in step with ``ports``, then write the table."""
        for key in changed:
            await self._sync_port(key, ports.get(key))
        await self.write_table()

    async def write_table(self) -> None:
        """Write the whole table, then forget the UDP flows whose redirect changed (see ``redirect``)."""
        redirects = self.redirects()
        await redirect.apply(redirect.ruleset(redirects))
        udp = redirect.udp_destinations(redirects)
        stale = redirect.changed_udp(self._udp, udp)
        self._udp = udp
        if stale:
            try:
                deleted = await trio.to_thread.run_sync(redirect.forget_udp_flows, stale)
            except OSError as exc:
                log.warning("userspace proxy: cannot forget stale UDP flows (%s): clients that keep sending "
                            "may keep going to the old listener until their conntrack entries expire", exc)
            else:
                log.debug("userspace proxy: forgot %d UDP flows to %s", deleted, stale)

    def listener(self, key: str, role: str = _CLUSTER) -> TcpProxy | UdpProxy | None:
        return self._listeners.get((key, role))

    def redirects(self) -> list[redirect.Redirect]:
        """Where each served port's addresses lead: its listeners, or a reject with no endpoint."""
        result = []
        for key, port in sorted(self.ports.items()):
            cluster = self._listeners[(key, _CLUSTER)]
            node = self._listeners.get((key, _NODE), cluster)
            result.append(redirect.Redirect(
                protocol=port.protocol.lower(), cluster_ip=port.cluster_ip, port=port.port,
                node_port=port.node_port, cluster_to=cluster.port if cluster.balancer.endpoints else None,
                node_to=node.port if node.balancer.endpoints else None))
        return result

    async def _sync_port(self, key: str, port: ServicePort | None) -> None:
        if port is not None and port.protocol not in _PROXIES:
            if key not in self._unsupported:
                log.warning("userspace proxy: %s: %s is not proxied in userspace mode", key, port.protocol)
                self._unsupported.add(key)
            port = None
        wanted = self._wanted(port) if port is not None else {}
        for role in (_CLUSTER, _NODE):
            listener = self._listeners.get((key, role))
            if role not in wanted:
                if listener is not None:
                    listener.close()
                    del self._listeners[(key, role)]
                continue
            if listener is None:
                assert port is not None
                listener = _PROXIES[port.protocol](Balancer())
                await self._nursery.start(listener.run)
                self._listeners[(key, role)] = listener
            listener.balancer.update(wanted[role], port.affinity_seconds if port else None)
            listener.endpoints_changed()
        if port is None:
            self.ports.pop(key, None)
        else:
            self.ports[key] = port

    def _wanted(self, port: ServicePort) -> dict[str, list[Address]]:
        """Each listener the port needs, with the endpoints it balances over."""
        wanted = {_CLUSTER: [(e.ip, e.port) for e in port.endpoints]}
        if port.node_port and port.local_only:
            wanted[_NODE] = [(e.ip, e.port) for e in port.local_endpoints(self.node_name)]
        return wanted
