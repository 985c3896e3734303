"""Read and write the vxlan device's neighbour, FDB and route entries; blocking netlink calls.

``read_entries`` sees only what the overlay could have written: permanent
IPv4 neighbours, FDB entries with a remote destination, and main-table IPv4
routes through a gateway, all on the vxlan device. Anything else on it (the
kernel's IPv6 link-local entries, a failed ARP entry) is not ours to judge.
Writes use ``replace``, so applying a plan twice, or after a crash halfway,
does no harm.
"""

from __future__ import annotations

import ipaddress
import logging
from socket import AF_INET

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ndmsg import NTF_SELF, NUD_NOARP, NUD_PERMANENT

from nodeos.network.overlay.peers import Entries, Fdb, Neighbour, Plan, Route

__all__ = ["apply_plan", "read_entries"]

log = logging.getLogger(__name__)
MAIN_TABLE = 254
RTNH_F_ONLINK = 4
ESRCH = 3
ENOENT = 2


def read_entries(ipr: IPRoute, index: int) -> Entries:
    neighbours = frozenset(
        Neighbour(ipaddress.IPv4Address(n.get("NDA_DST")), str(n.get("NDA_LLADDR")).lower())
        for n in ipr.get_neighbours(family=AF_INET, ifindex=index)
        if n["ifindex"] == index and n["state"] & NUD_PERMANENT and n.get("NDA_LLADDR"))
    fdb = frozenset(
        Fdb(str(f.get("NDA_LLADDR")).lower(), ipaddress.IPv4Address(f.get("NDA_DST")))
        for f in ipr.fdb("dump", ifindex=index)
        if f["ifindex"] == index and f.get("NDA_DST") and ":" not in f.get("NDA_DST"))
    routes = frozenset(
        Route(ipaddress.IPv4Network(f"{r.get('RTA_DST') or '0.0.0.0'}/{r['dst_len']}"),
              ipaddress.IPv4Address(r.get("RTA_GATEWAY")))
        for r in ipr.get_routes(family=AF_INET, table=MAIN_TABLE, oif=index)
        if r.get("RTA_OIF") == index and r.get("RTA_GATEWAY"))
    return Entries(neighbours=neighbours, fdb=fdb, routes=routes)


def apply_plan(ipr: IPRoute, index: int, plan: Plan, device: str) -> None:
    """Apply ``plan`` to the device with ``index``, in the plan's order, logging each change."""
    for route in plan.remove_routes:
        log.info("overlay: remove route %s via %s dev %s", route.dst, route.via, device)
        _gone_ok(ipr.route, "del", dst=str(route.dst), gateway=str(route.via), oif=index)
    for fdb in plan.remove_fdb:
        log.info("overlay: remove fdb %s dst %s dev %s", fdb.mac, fdb.dst, device)
        _gone_ok(ipr.fdb, "del", ifindex=index, lladdr=fdb.mac, dst=str(fdb.dst))
    for neighbour in plan.remove_neighbours:
        log.info("overlay: remove neighbour %s lladdr %s dev %s", neighbour.ip, neighbour.mac, device)
        _gone_ok(ipr.neigh, "del", ifindex=index, dst=str(neighbour.ip), lladdr=neighbour.mac)
    for neighbour in plan.add_neighbours:
        log.info("overlay: add neighbour %s lladdr %s dev %s", neighbour.ip, neighbour.mac, device)
        ipr.neigh("replace", ifindex=index, dst=str(neighbour.ip), lladdr=neighbour.mac, state=NUD_PERMANENT)
    for fdb in plan.add_fdb:
        log.info("overlay: add fdb %s dst %s dev %s", fdb.mac, fdb.dst, device)
        ipr.fdb("replace", ifindex=index, lladdr=fdb.mac, dst=str(fdb.dst), state=NUD_PERMANENT | NUD_NOARP,
                flags=NTF_SELF)
    for route in plan.add_routes:
        log.info("overlay: add route %s via %s dev %s onlink", route.dst, route.via, device)
        ipr.route("replace", dst=str(route.dst), gateway=str(route.via), oif=index, flags=RTNH_F_ONLINK)


def _gone_ok(call, *args, **kwargs) -> None:
    """A removal of an entry someone else removed first is done."""
    try:
        call(*args, **kwargs)
    except NetlinkError as exc:
        if exc.code not in (ENOENT, ESRCH):
            raise
