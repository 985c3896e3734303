"""The nftables proxy's rules, as text: pure functions from ServicePorts to ``nft -f`` scripts.

The layout follows kube-proxy's nftables mode (KEP-3866), in one table
``ip nodeos`` that nodeos owns and no one else touches:

- ``nat-prerouting`` / ``nat-output`` (dstnat) jump to ``services``, which
  dispatches through two verdict maps, so the cost per packet does not grow
  with the number of Services: ``service-ips`` (daddr . proto . dport ->
  ``goto service-…``) and, for destinations local to this node,
  ``service-nodeports`` (proto . dport -> ``goto external-…``).
- ``service-…`` (one per ServicePort): marks traffic from outside the pod
  network, and node port traffic, for masquerade; sends a client with a live
  affinity entry back to its endpoint; else picks an endpoint at random and
  DNATs to it. The pick is a cascade (``numgen random mod N-i 0`` for the
  i-th endpoint: 1/N, then 1/(N-1) of the rest...), as kube-proxy's
  iptables mode does, rather than kube-proxy nftables' ``numgen … vmap``
  over one chain per endpoint: every ``nft`` run dumps every chain and set
  of the host into its cache, so one chain per ServicePort and no anonymous
  sets keep a one-Service update fast at thousands of Services.
- ``external-…`` (only for ``externalTrafficPolicy: Local`` node ports):
  pods and the node itself go the cluster way; others keep their address and
  reach only this node's endpoints, or are dropped when there are none here
  (as kube-proxy does). A node port with the Cluster policy goes straight to
  ``service-…``.
- hairpin (a pod reaching itself through its Service): the set ``hairpin``
  holds ``ip . ip`` for every endpoint; ``mark-hairpin``, just after the
  DNAT, marks new connections whose source and new destination match, so
  they are masqueraded and the reply comes back through us to be un-DNATed.
  A mark rather than a masquerade in our postrouting chain: the overlay's
  postrouting chain runs first and keeps pod-to-pod sources unless the
  packet carries the mark. (With br_netfilter, the bridge must also let a
  frame out of the port it came in on: ``hairpin`` sets hairpin mode.)
- ``filter-input`` / ``-forward`` / ``-output`` jump, for new connections,
  to ``service-endpoints-check``, which rejects (ICMP port unreachable: a
  connect() fails at once with ECONNREFUSED) traffic to a Service without
  ready endpoints, found in the maps ``no-endpoint-services`` /
  ``no-endpoint-nodeports``. Reject is not allowed in the nat hooks, and
  the output filter hook runs before the DNAT of nat-output, so it sees the
  Service address.
- ``nat-postrouting`` masquerades what was marked (mark bit 0x4000, as
  kube-proxy's; the overlay's own SNAT rules honour it).

Each ServicePort renders to its own chains, affinity sets and map elements
(``Rendered``), named with a hash of the ServicePort key, so that a change to
one Service is a small transaction over only its objects
(``update_script``), and a full resync (``full_script``) rewrites everything
in one atomic transaction, deleting leftovers, but never flushes an affinity
set (its contents are the clients' stickiness). Affinity is one set per
endpoint (client addresses, with the Service's timeout), so a removed
endpoint takes its clients' stickiness with it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nodeos.network.proxy.model import Endpoint, ServicePort

TABLE = "ip nodeos"
MASQ_MARK = 0x4000
# Set inline, not by a jump to a chain: each commit walks every path from the base chains
# (the kernel's loop check), so every jump per Service costs on every update.
_MARK = f"meta mark set meta mark or {MASQ_MARK:#x}"
_MAX_NAME = 200  # nftables allows 255; the hash keeps truncated names unique

# Base chains: name -> (chain spec, rules).
_CHECK = "ct state new jump service-endpoints-check"
BASE_CHAINS: dict[str, tuple[str, tuple[str, ...]]] = {
    "nat-prerouting": ("type nat hook prerouting priority -100; policy accept;", ("jump services",)),
    "nat-output": ("type nat hook output priority -100; policy accept;", ("jump services",)),
    "nat-postrouting": ("type nat hook postrouting priority 100; policy accept;", ("jump masquerading",)),
    "mark-hairpin": ("type filter hook prerouting priority -99; policy accept;",  # after the DNAT at -100
                     (f"ct status dnat ip saddr . ip daddr @hairpin {_MARK}",)),
    "filter-input": ("type filter hook input priority -110; policy accept;", (_CHECK,)),
    "filter-forward": ("type filter hook forward priority -110; policy accept;", (_CHECK,)),
    "filter-output": ("type filter hook output priority -110; policy accept;", (_CHECK,)),
    "services": ("", (
        "ip daddr . meta l4proto . th dport vmap @service-ips",
        "ip daddr != 127.0.0.0/8 fib daddr type local meta l4proto . th dport vmap @service-nodeports",
    )),
    "service-endpoints-check": ("", (
        "ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
        "ip daddr != 127.0.0.0/8 fib daddr type local meta l4proto . th dport vmap @no-endpoint-nodeports",
    )),
    "masquerading": ("", (
        f"meta mark & {MASQ_MARK:#x} == 0 return",
        f"meta mark set meta mark xor {MASQ_MARK:#x}",
        "masquerade fully-random",
    )),
    "reject-chain": ("", ("reject",)),
}
_IP_PORT = "ipv4_addr . inet_proto . inet_service : verdict"
_PORT = "inet_proto . inet_service : verdict"
MAPS = {"service-ips": _IP_PORT, "service-nodeports": _PORT,
        "no-endpoint-services": _IP_PORT, "no-endpoint-nodeports": _PORT}
SETS = {"hairpin": "ipv4_addr . ipv4_addr"}  # endpoint . endpoint: traffic from a pod to itself


@dataclass(frozen=True)
class Context:
    """What the rules need besides the ServicePorts."""

    node: str  # this node's name, for externalTrafficPolicy Local
    pod_cidr: str  # the cluster's pod network: traffic from elsewhere to a cluster IP is masqueraded


Element = tuple[str, str, str]  # (map or set, key, verdict or "" in a set)


@dataclass
class Rendered:
    """One ServicePort's objects in the table."""

    chains: dict[str, list[str]] = field(default_factory=dict)  # name -> rules, in order
    sets: dict[str, int] = field(default_factory=dict)  # affinity set name -> timeout seconds
    elements: set[Element] = field(default_factory=set)


def _hash(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest())[:8].decode()


def _name(prefix: str, hashed: str, readable: str) -> str:
    return f"{prefix}-{_hash(hashed)}-{readable}"[:_MAX_NAME]


def _base(sp: ServicePort) -> str:
    return f"{sp.namespace}/{sp.name}/{sp.protocol.lower()}/{sp.port_name or sp.port}"


def service_chain(sp: ServicePort) -> str:
    return _name("service", sp.key, _base(sp))


def external_chain(sp: ServicePort) -> str:
    return _name("external", sp.key, _base(sp))


def affinity_set(sp: ServicePort, ep: Endpoint) -> str:
    # The timeout is part of the hash: a set's timeout is fixed when it is made, so a new one is a new set.
    return _name("affinity", f"{sp.key}__{ep.ip}/{ep.port}@{sp.affinity_seconds}",
                 f"{_base(sp)}__{ep.ip}/{ep.port}")


def render(sp: ServicePort, ctx: Context) -> Rendered:
    """The chains, affinity sets and map elements of one ServicePort."""
    out = Rendered()
    proto = sp.protocol.lower()
    service = service_chain(sp)
    if sp.cluster_ip:
        if sp.endpoints:
            out.elements.add(("service-ips", f"{sp.cluster_ip} . {proto} . {sp.port}", f"goto {service}"))
        else:
            out.elements.add(("no-endpoint-services", f"{sp.cluster_ip} . {proto} . {sp.port}",
                              "goto reject-chain"))
    if sp.node_port:
        if not sp.endpoints:
            out.elements.add(("no-endpoint-nodeports", f"{proto} . {sp.node_port}", "goto reject-chain"))
        elif sp.local_only:
            out.elements.add(("service-nodeports", f"{proto} . {sp.node_port}", f"goto {external_chain(sp)}"))
            out.chains[external_chain(sp)] = _external_rules(sp, ctx)
        else:
            out.elements.add(("service-nodeports", f"{proto} . {sp.node_port}", f"goto {service}"))
    if not sp.endpoints:
        return out
    out.chains[service] = _service_rules(sp, ctx)
    for ep in sp.endpoints:
        out.elements.add(("hairpin", f"{ep.ip} . {ep.ip}", ""))
        if sp.affinity_seconds:
            out.sets[affinity_set(sp, ep)] = sp.affinity_seconds
    return out


def _service_rules(sp: ServicePort, ctx: Context) -> list[str]:
    rules = [f"fib daddr type local {_MARK}"]  # a node port: replies must come back through us
    if sp.cluster_ip:
        rules.append(f"ip daddr {sp.cluster_ip} {sp.protocol.lower()} dport {sp.port} "
                     f"ip saddr != {ctx.pod_cidr} {_MARK}")
    return rules + _pick(sp, sp.endpoints)


def _pick(sp: ServicePort, endpoints: tuple[Endpoint, ...]) -> list[str]:
    """Affinity first, then a random endpoint: the i-th of N with probability 1/(N-i) of what is left."""
    proto = f"meta l4proto {sp.protocol.lower()}"
    rules = []
    if sp.affinity_seconds:
        rules += [f"{proto} ip saddr @{affinity_set(sp, ep)}{_dnat(sp, ep)}" for ep in endpoints]
    for i, ep in enumerate(endpoints):
        left = len(endpoints) - i
        rules.append(f"{proto}{f' numgen random mod {left} 0' if left > 1 else ''}{_dnat(sp, ep)}")
    return rules


def _dnat(sp: ServicePort, ep: Endpoint) -> str:
    """Record (or refresh) the client's affinity to ``ep``, and DNAT to it."""
    update = f" update @{affinity_set(sp, ep)} {{ ip saddr }}" if sp.affinity_seconds else ""
    return f"{update} dnat to {ep.ip}:{ep.port}"


def _external_rules(sp: ServicePort, ctx: Context) -> list[str]:
    """Local policy: the client's address is kept, so only endpoints here can answer it. Pods and
    this node itself are not "external" and go the cluster way, as in Kubernetes."""
    rules = [f"ip saddr {ctx.pod_cidr} goto {service_chain(sp)}", f"fib saddr type local goto {service_chain(sp)}"]
    local = sp.local_endpoints(ctx.node)
    return rules + (_pick(sp, local) if local else ["drop"])


# -- scripts ---------------------------------------------------------------------------------------


def base_script() -> list[str]:
    """The table, its base and helper chains and its maps, made or repaired; idempotent.
    Chains are flushed and refilled, maps are only made (their elements are the Services')."""
    lines = [f"add table {TABLE}"]
    lines += [f"add map {TABLE} {name} {{ type {kind}; }}" for name, kind in MAPS.items()]
    lines += [f"add set {TABLE} {name} {{ type {kind}; }}" for name, kind in SETS.items()]
    lines += [f"add chain {TABLE} {name} {{ {spec} }}" if spec else f"add chain {TABLE} {name}"
              for name, (spec, _rules) in BASE_CHAINS.items()]
    for name, (_spec, rules) in BASE_CHAINS.items():
        lines.append(f"flush chain {TABLE} {name}")
        lines += [f"add rule {TABLE} {name} {rule}" for rule in rules]
    return lines


def full_script(ports: Iterable[ServicePort], ctx: Context, existing_chains: Iterable[str] = (),
                existing_sets: Iterable[str] = ()) -> tuple[str, dict[str, Rendered]]:
    """One transaction that makes the table exactly what ``ports`` want, whatever it holds now
    (``existing_*``: the chains and sets found in it), and the rendering of each port by key."""
    rendered = {sp.key: render(sp, ctx) for sp in ports}
    chains = {name: rules for r in rendered.values() for name, rules in r.chains.items()}
    sets = {name: timeout for r in rendered.values() for name, timeout in r.sets.items()}
    lines = base_script()
    lines += [f"flush map {TABLE} {name}" for name in MAPS]
    lines += [f"flush set {TABLE} {name}" for name in SETS]
    lines += _add_sets(sets)
    lines += _write_chains(chains)
    lines += _add_elements({e for r in rendered.values() for e in r.elements})
    stale_chains = set(existing_chains) - set(chains) - set(BASE_CHAINS)
    stale_sets = set(existing_sets) - set(sets) - set(MAPS) - set(SETS)
    lines += _delete(sorted(stale_chains), sorted(stale_sets))
    return _script(lines), rendered


def update_script(old: Mapping[str, Rendered], new: Mapping[str, Rendered],
                  shared: Iterable[Element] = ()) -> str:
    """One transaction from ``old`` to ``new`` renderings of the changed ServicePorts only
    (keys in either; a key missing from ``new`` was removed). Touches nothing else, and
    deletes no element of ``shared``: those other ServicePorts still need (a hairpin entry)."""
    old_chains = {name for r in old.values() for name in r.chains}
    old_sets = {name for r in old.values() for name in r.sets}
    old_elements = {e for r in old.values() for e in r.elements}
    new_chains = {name: rules for r in new.values() for name, rules in r.chains.items()}
    new_sets = {name: timeout for r in new.values() for name, timeout in r.sets.items()}
    new_elements = {e for r in new.values() for e in r.elements}
    lines = _add_sets({name: t for name, t in new_sets.items() if name not in old_sets})
    lines += _delete_elements(old_elements - new_elements - set(shared))
    lines += _write_chains(new_chains)
    lines += _add_elements(new_elements - old_elements)
    lines += _delete(sorted(old_chains - set(new_chains)), sorted(old_sets - set(new_sets)))
    return _script(lines)


def _script(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""


def _add_sets(sets: Mapping[str, int]) -> list[str]:
    return [f"add set {TABLE} {name} {{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}"
            for name, timeout in sorted(sets.items())]


def _write_chains(chains: Mapping[str, list[str]]) -> list[str]:
    """Add (all first: rules may jump to any of them), then flush and fill each chain."""
    lines = [f"add chain {TABLE} {name}" for name in chains]
    for name, rules in chains.items():
        lines.append(f"flush chain {TABLE} {name}")
        lines += [f"add rule {TABLE} {name} {rule}" for rule in rules]
    return lines


def _elements(verb: str, elements: Iterable[Element]) -> list[str]:
    by_map: dict[str, list[str]] = {}
    for map_name, key, verdict in sorted(elements):
        by_map.setdefault(map_name, []).append(f"{key} : {verdict}" if verdict else key)
    return [f"{verb} element {TABLE} {map_name} {{ {', '.join(items)} }}" for map_name, items in by_map.items()]


def _add_elements(elements: Iterable[Element]) -> list[str]:
    return _elements("add", elements)


def _delete_elements(elements: Iterable[Element]) -> list[str]:
    return _elements("delete", elements)


def _delete(chains: list[str], sets: list[str]) -> list[str]:
    """Flush first, so that chains being deleted no longer refer to each other or to the sets."""
    lines = [f"flush chain {TABLE} {name}" for name in chains]
    lines += [f"delete chain {TABLE} {name}" for name in chains]
    return lines + [f"delete set {TABLE} {name}" for name in sets]
