"""The nftables Service proxy: keeps the ``ip nodeos`` table what the Services want.

The loop is level-triggered: ``ServiceTracker.changes()`` says which
ServicePorts changed, and ``NftablesProxy`` applies just those as one atomic
``nft -f`` transaction (``nftrules.update_script``), computed from what it
programmed before (kept in memory) and what is wanted now. The first batch,
and one every resync period, is a full sync: the table's chains and sets are
listed and everything is rewritten in one transaction, leftovers deleted, so
that a rule or chain removed by hand comes back (drift repair).

UDP has no connections to end: a client that keeps its source port keeps
its conntrack entry, and with it the endpoint (or the black hole) the first
packet was sent to. So, as kube-proxy does, when a UDP Service port loses an
endpoint, gets its first ones, or goes away, the conntrack entries of flows
to its cluster IP and node port are deleted (``redirect.forget_udp_flows``,
shared with the userspace mode); the next packet is balanced afresh.

Error handling: an update that ``nft`` refuses (the table drifted under us,
say an element deleted by hand, so that our delete fails) falls back to a
full sync at once. A failing full sync raises ``NftError``; the daemon's
supervisor restarts the component with back-off. ``nft`` runs as a
subprocess, never on the trio loop. On stop the table stays: established
flows and Service traffic keep working while the daemon restarts.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence

import trio

from nodeos.agent.podman.network import BRIDGE
from nodeos.client import ApiClient
from nodeos.config import Config
from nodeos.errors import NodeosError
from nodeos.network.proxy import nftrules
from nodeos.network.proxy.hairpin import ensure_hairpin
from nodeos.network.proxy.model import Changes, ServicePort, ServiceTracker
from nodeos.network.proxy.nftrules import Context, Element, Rendered
from nodeos.network.proxy.redirect import UdpDestination, forget_udp_flows

log = logging.getLogger(__name__)
_FAMILY, _TABLE = nftrules.TABLE.split()


class NftError(NodeosError):
    """``nft`` refused a transaction or could not be run."""


ForgetUdp = Callable[[list[UdpDestination]], Awaitable[object]]


def stale_udp_flows(before: ServicePort | None, after: ServicePort | None) -> list[UdpDestination]:
    """The UDP destinations whose conntrack entries must go when ``before`` becomes ``after``
    (None: not there); see the module docstring."""
    port = after or before
    if port is None or port.protocol != "UDP":
        return []
    lost = before is not None and bool(_targets(before) - (_targets(after) if after else set()))
    first = bool(after and after.endpoints) and not (before and before.endpoints)
    if not (lost or first or (after is None and before is not None)):
        return []
    found: set[UdpDestination] = set()
    for sp in (before, after):
        if sp and sp.cluster_ip:
            found.add((sp.cluster_ip, sp.port))
        if sp and sp.node_port:
            found.add((None, sp.node_port))
    return sorted(found, key=str)


def _targets(sp: ServicePort) -> set[tuple[str, int]]:
    return {(ep.ip, ep.port) for ep in sp.endpoints}


async def _forget_udp(destinations: list[UdpDestination]) -> int:
    return await trio.to_thread.run_sync(forget_udp_flows, destinations)


class NftablesProxy:
    """Programs ServicePorts into the table; remembers what it programmed."""

    def __init__(self, ctx: Context, nft: Sequence[str] = ("nft",), forget_udp: ForgetUdp = _forget_udp) -> None:
        self.ctx = ctx
        self.nft = tuple(nft)  # the command; tests prefix it with ``ip netns exec NS``
        self.forget_udp = forget_udp  # tests run it in their namespace
        self.ports: dict[str, ServicePort] = {}  # ServicePort key -> the one programmed
        self.programmed: dict[str, Rendered] = {}  # ServicePort key -> what is in the table for it
        self.last_script = ""  # the last transaction sent, for tests and debugging
        # How many programmed ServicePorts need each element: a hairpin entry may serve several.
        self._element_users: Counter[Element] = Counter()

    async def apply(self, changes: Changes, ports: Mapping[str, ServicePort]) -> None:
        """Bring the table up to date: ``changes`` from the tracker, ``ports`` its snapshot."""
        if changes.full:
            await self.sync_full(ports)
            return
        try:
            await self.sync_keys(changes, ports)
        except NftError as exc:
            log.warning("nftables: an update failed, rewriting the whole table: %s", exc)
            await self.sync_full(ports)

    async def sync_keys(self, keys: set[str] | frozenset[str], ports: Mapping[str, ServicePort]) -> None:
        """Rewrite only the ServicePorts of ``keys`` (removed when not in ``ports``)."""
        wanted = {key: nftrules.render(ports[key], self.ctx) for key in keys if key in ports}
        rewrite = {key for key in keys if wanted.get(key) != self.programmed.get(key)}  # same rules: leave them
        old = {key: self.programmed[key] for key in rewrite if key in self.programmed}
        new = {key: rendered for key, rendered in wanted.items() if key in rewrite}
        removed = Counter(e for r in old.values() for e in r.elements)
        added = Counter(e for r in new.values() for e in r.elements)
        shared = {e for e in removed if self._element_users[e] - removed[e] + added[e] > 0}
        script = nftrules.update_script(old, new, shared)
        if script:
            await self.run(script)
        for key in rewrite:
            self.programmed.pop(key, None)
        self.programmed.update(new)
        self._element_users.subtract(removed)
        self._element_users.update(added)
        for element in removed:
            if self._element_users[element] <= 0:
                del self._element_users[element]
        await self._forget_stale_udp({key: ports.get(key) for key in keys})

    async def sync_full(self, ports: Mapping[str, ServicePort]) -> None:
        """Make the whole table exactly what ``ports`` want, repairing any drift."""
        chains, sets = await self.existing()
        script, rendered = nftrules.full_script(ports.values(), self.ctx, chains, sets)
        await self.run(script)
        self.programmed = rendered
        await self._forget_stale_udp({key: ports.get(key) for key in {*ports, *self.ports}})
        self._element_users = Counter(e for r in rendered.values() for e in r.elements)

    async def _forget_stale_udp(self, after: Mapping[str, ServicePort | None]) -> None:
        """Record the ServicePorts now programmed, and forget the UDP flows they made stale."""
        stale = sorted({d for key, sp in after.items() for d in stale_udp_flows(self.ports.get(key), sp)}, key=str)
        for key, sp in after.items():
            if sp is None:
                self.ports.pop(key, None)
            else:
                self.ports[key] = sp
        if stale:
            try:
                await self.forget_udp(stale)
            except OSError as exc:
                log.warning("nftables: cannot forget stale UDP flows (%s): clients that keep their source port "
                            "may keep going where they went until their conntrack entries expire", exc)

    async def existing(self) -> tuple[set[str], set[str]]:
        """The names of the chains and sets in our table now (both empty if there is no table)."""
        chains, sets = set(), set()
        for what, found in (("chains", chains), ("sets", sets)):
            out = await self._nft("-j", "list", what, _FAMILY)
            for item in json.loads(out or "{}").get("nftables", []):
                obj = item.get(what[:-1])
                if obj and obj.get("table") == _TABLE:
                    found.add(obj["name"])
        return chains, sets

    async def run(self, script: str) -> None:
        """Apply ``script`` as one atomic transaction."""
        self.last_script = script
        await self._nft("-f", "-", stdin=script.encode())

    async def _nft(self, *args: str, stdin: bytes | None = None) -> str:
        try:
            done = await trio.run_process([*self.nft, *args], stdin=stdin, capture_stdout=True,
                                          capture_stderr=True, check=False)
        except OSError as exc:
            raise NftError(f"cannot run {' '.join(self.nft)}: {exc}") from exc
        if done.returncode:
            error = done.stderr.decode(errors="replace").strip()
            raise NftError(f"nft {' '.join(args)} failed ({done.returncode}): {error[:2000]}")
        return done.stdout.decode()


async def run_nftables_proxy(config: Config, api: ApiClient, *,
                             task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                             nft: Sequence[str] = ("nft",), ip: Sequence[str] = ("ip",),
                             resync_period: float = 60.0) -> None:
    """Follow Services and Endpoints and program them until cancelled; started once the
    first full sync is in the table. ``nft`` and ``ip`` are the commands (tests prefix them
    to run in a network namespace)."""
    proxy = NftablesProxy(Context(node=config.node.name, pod_cidr=str(config.cluster.pod_cidr)), nft)
    tracker = ServiceTracker(api, resync_period=resync_period)
    async with trio.open_nursery() as nursery:
        await nursery.start(tracker.run)
        first = await tracker.changes()
        await proxy.apply(first, tracker.snapshot())
        await ensure_hairpin(BRIDGE, ip)
        log.info("nftables: %d service ports programmed", len(proxy.programmed))
        task_status.started()
        while True:
            changes = await tracker.changes()
            await proxy.apply(changes, tracker.snapshot())
            await ensure_hairpin(BRIDGE, ip)
            log.debug("nftables: %s %d service ports", "resynced" if changes.full else "updated", len(changes))
