"""The userspace proxy's nftables table: Service addresses redirected to the proxy's listeners.

One table of its own, ``ip nodeos-userspace``, which nothing else touches::

    map cluster    (cluster IP . protocol . port) : listener port
    map nodeports  (protocol . node port)         : listener port
    set cluster-reject, nodeport-reject            ports with no endpoint to go to
    set listeners  (protocol . listener port)

    nat prerouting, nat output:    redirect cluster IPs through @cluster, and
                                   local addresses' node ports through @nodeports
    filter forward, output, input: reject what is in the reject sets, and
                                   (input) what reaches a listener unredirected

``redirect`` sends a packet to a local port at the address of the interface
it arrived on (127.0.0.1 for the node's own traffic), which is why the
listeners bind 0.0.0.0; packets that reach a listener's port without a
redirect (another host trying it directly) are rejected. Maps keep the
rules fixed: the cost per packet is one lookup whatever the number of
Services, and a change is a change of elements. A port with no ready endpoint is rejected (a TCP reset, an ICMP
port unreachable for UDP), as kube-proxy does, so a client fails at once
instead of waiting for a timeout.

The table is written whole in one ``nft -f`` transaction (``ruleset``):
declare each object, flush it, fill it. The kernel applies a transaction
atomically, so a packet sees the old table or the new one; declaring
instead of deleting keeps the base chains (and their hooks) in place; and
writing everything each time repairs any drift, such as a rule or element
deleted by hand. The userspace mode serves the hosts and the scale where
this is cheap (5,000 Service ports: 60-80 ms here, see
tests/bench/bench_userspace_proxy.py).

UDP needs one more step, as in kube-proxy: a redirect applies only to the
first packet of a flow, and conntrack remembers the outcome for every later
one. A client that sent to a cluster IP before its redirect existed, or to
a listener since closed (a Service gone, the daemon restarted: listeners
get new ports), would keep going where its entry says for as long as it
keeps sending. So after each write, ``forget_udp_flows`` deletes the
conntrack entries of the UDP destinations whose redirect changed
(``changed_udp``); the client's next datagram is redirected afresh.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import trio

from nodeos.errors import NodeosError

TABLE = "nodeos-userspace"
_T = f"ip {TABLE}"
_CLUSTER_KEY = "ipv4_addr . inet_proto . inet_service"
_NODE_KEY = "inet_proto . inet_service"
_CLUSTER_MATCH = "ip daddr . meta l4proto . th dport"
_NODE_MATCH = "meta l4proto . th dport"


class NftError(NodeosError):
    """``nft`` refused a transaction (nothing of it was applied)."""


@dataclass(frozen=True)
class Redirect:
    """Where one Service port's traffic goes on this node."""

    protocol: str  # "tcp" or "udp"
    cluster_ip: str | None
    port: int
    node_port: int | None
    cluster_to: int | None  # the listener for cluster IP traffic; None: no endpoint, reject
    node_to: int | None  # the listener for node port traffic; None: no endpoint, reject


def ruleset(redirects: Iterable[Redirect]) -> str:
    """The ``nft -f`` transaction that makes the table exactly this."""
    redirects = list(redirects)
    cluster = [f"{r.cluster_ip} . {r.protocol} . {r.port} : {r.cluster_to}"
               for r in redirects if r.cluster_ip and r.cluster_to is not None]
    cluster_reject = [f"{r.cluster_ip} . {r.protocol} . {r.port}"
                      for r in redirects if r.cluster_ip and r.cluster_to is None]
    nodeports = [f"{r.protocol} . {r.node_port} : {r.node_to}"
                 for r in redirects if r.node_port and r.node_to is not None]
    nodeport_reject = [f"{r.protocol} . {r.node_port}" for r in redirects if r.node_port and r.node_to is None]
    listeners = sorted({f"{r.protocol} . {to}" for r in redirects for to in (r.cluster_to, r.node_to) if to})
    lines = [f"add table {_T}"]
    lines += _declare("map", "cluster", f"{_CLUSTER_KEY} : inet_service", cluster)
    lines += _declare("map", "nodeports", f"{_NODE_KEY} : inet_service", nodeports)
    lines += _declare("set", "cluster-reject", _CLUSTER_KEY, cluster_reject)
    lines += _declare("set", "nodeport-reject", _NODE_KEY, nodeport_reject)
    lines += _declare("set", "listeners", _NODE_KEY, listeners)
    redirect = [f"meta l4proto {{ tcp, udp }} redirect to : {_CLUSTER_MATCH} map @cluster",
                f"meta l4proto {{ tcp, udp }} fib daddr type local redirect to : {_NODE_MATCH} map @nodeports"]
    reject_cluster = _reject(f"{_CLUSTER_MATCH} @cluster-reject")
    reject_nodeport = _reject(f"fib daddr type local {_NODE_MATCH} @nodeport-reject")
    lines += _chain("nat-prerouting", "nat", "prerouting", "dstnat", redirect)
    lines += _chain("nat-output", "nat", "output", "-100", redirect)  # dstnat, by number on output
    lines += _chain("filter-forward", "filter", "forward", "filter", reject_cluster)
    lines += _chain("filter-output", "filter", "output", "filter", reject_cluster + reject_nodeport)
    # The listeners are reached through a redirect (a DNAT in conntrack's eyes), not directly.
    reject_direct = _reject(f"{_NODE_MATCH} @listeners ct status & dnat != dnat")
    lines += _chain("filter-input", "filter", "input", "filter", reject_nodeport + reject_direct)
    return "\n".join(lines) + "\n"


def _declare(kind: str, name: str, key: str, elements: Sequence[str]) -> list[str]:
    lines = [f"add {kind} {_T} {name} {{ type {key}; }}", f"flush {kind} {_T} {name}"]
    if elements:
        lines.append(f"add element {_T} {name} {{ {', '.join(elements)} }}")
    return lines


def _chain(name: str, kind: str, hook: str, priority: str, rules: Sequence[str]) -> list[str]:
    return [f"add chain {_T} {name} {{ type {kind} hook {hook} priority {priority}; policy accept; }}",
            f"flush chain {_T} {name}"] + [f"add rule {_T} {name} {rule}" for rule in rules]


def _reject(match: str) -> list[str]:
    """TCP gets a reset (ECONNREFUSED for the client); the rest an ICMP port unreachable."""
    return [f"meta l4proto tcp {match} reject with tcp reset", f"{match} reject"]


async def apply(script: str, *, nft: Sequence[str] = ("nft",)) -> None:
    """Run ``script`` as one ``nft -f -`` transaction; ``nft`` is the command (a prefix may set its namespace)."""
    result = await trio.run_process([*nft, "-f", "-"], stdin=script.encode(), capture_stdout=True,
                                    capture_stderr=True, check=False)
    if result.returncode != 0:
        raise NftError(f"nft -f failed ({result.returncode}): {result.stderr.decode(errors='replace').strip()}")


UdpDestination = tuple[str | None, int]  # (cluster IP, port), or (None, node port) on any local address


def udp_destinations(redirects: Iterable[Redirect]) -> dict[UdpDestination, int | None]:
    """Each UDP destination the table handles, and where it leads (a listener port; None: rejected)."""
    result: dict[UdpDestination, int | None] = {}
    for r in redirects:
        if r.protocol == "udp":
            if r.cluster_ip:
                result[(r.cluster_ip, r.port)] = r.cluster_to
            if r.node_port:
                result[(None, r.node_port)] = r.node_to
    return result


def changed_udp(before: Mapping[UdpDestination, int | None] | None,
                after: Mapping[UdpDestination, int | None]) -> list[UdpDestination]:
    """The UDP destinations whose flows must be forgotten; ``before`` None: unknown (at start), all of them."""
    if before is None:
        return sorted(after, key=str)
    missing = object()
    return sorted((d for d in set(before) | set(after) if before.get(d, missing) != after.get(d, missing)),
                  key=str)


def forget_udp_flows(destinations: Sequence[UdpDestination]) -> int:
    """Delete the conntrack entries of UDP flows to these destinations; how many.

    Blocking (netlink): run it in a thread. Netlink errors are raised as OSError.
    """
    from pyroute2 import Conntrack
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    deleted = 0
    try:
        conntrack = Conntrack()
        try:
            for address, port in destinations:
                flows = NFCTAttrTuple(proto=socket.IPPROTO_UDP, daddr=address, dport=port)
                for entry in list(conntrack.dump_entries(tuple_orig=flows)):
                    try:
                        conntrack.delete(entry)
                        deleted += 1
                    except NetlinkError as exc:
                        if exc.code != errno.ENOENT:  # gone meanwhile: fine
                            raise
        finally:
            conntrack.close()
    except NetlinkError as exc:
        raise OSError(exc.code, f"conntrack: {exc}") from exc
    return deleted
