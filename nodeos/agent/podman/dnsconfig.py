"""A pod's resolv.conf, as the kubelet builds it from ``dnsPolicy`` and ``dnsConfig``, pure.

- ``ClusterFirst`` (the default): the node's cluster DNS (``nodeos.network.dns``,
  on the pods' gateway address), the search path ``<ns>.svc.<domain>
  svc.<domain> <domain>`` followed by the host's search domains, and
  ``ndots:5``, so that ``web`` and ``web.other`` find Services. A
  ``hostNetwork`` pod gets the host's settings instead, unless its policy is
  ``ClusterFirstWithHostNet``.
- ``Default``: the host's settings (the kubelet's ``--resolv-conf``).
- ``None``: only what ``dnsConfig`` says.

``dnsConfig`` adds to the chosen base as the kubelet does: nameservers and
searches appended without duplicates, options merged by name (the pod's
value wins). Without a cluster DNS on the node (``[node] disable`` has
"dns"), ClusterFirst falls back to Default, as the kubelet does without
``--cluster-dns``: pods get working resolvers rather than a dead one.

``None`` as a result means "the host's, untouched": Podman then copies the
host's resolv.conf itself, which also knows to skip systemd-resolved's
loopback stub (unreachable from a pod's network namespace).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from nodeos.network.dns.resolvconf import ResolvConf

__all__ = ["MAX_NAMESERVERS", "MAX_SEARCHES", "ClusterDns", "pod_resolv_conf"]

MAX_NAMESERVERS = 3  # glibc's MAXNS; the kubelet keeps the first three
MAX_SEARCHES = 32  # the kubelet's limit (glibc 2.26+ has none)
NDOTS = "ndots:5"


@dataclass(frozen=True)
class ClusterDns:
    """What the node knows about DNS: the cluster's domain, its DNS server's address, the host's resolv.conf."""

    domain: str
    nameserver: str | None  # None: no cluster DNS on this node
    host: ResolvConf


def pod_resolv_conf(pod: dict, cluster: ClusterDns) -> ResolvConf | None:
    """The resolver settings of ``pod``; None: the host's, left for the runtime to copy."""
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    extra = spec.get("dnsConfig") or {}
    base: ResolvConf | None
    if policy == "None":
        base = ResolvConf()
    elif _uses_cluster_dns(policy, bool(spec.get("hostNetwork"))) and cluster.nameserver:
        base = _cluster_first(pod["metadata"].get("namespace") or "default", cluster)
    else:
        base = None
    if not extra:
        return base
    return _merge(base if base is not None else _reachable(cluster.host), extra)


def _uses_cluster_dns(policy: str, host_network: bool) -> bool:
    return policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not host_network)


def _cluster_first(namespace: str, cluster: ClusterDns) -> ResolvConf:
    domain = cluster.domain.rstrip(".")
    searches = (f"{namespace}.svc.{domain}", f"svc.{domain}", domain, *cluster.host.searches)
    return ResolvConf((str(cluster.nameserver),), _limit(searches, MAX_SEARCHES), (NDOTS,))


def _merge(base: ResolvConf, extra: dict) -> ResolvConf:
    nameservers = _limit((*base.nameservers, *(extra.get("nameservers") or [])), MAX_NAMESERVERS)
    searches = _limit((*base.searches, *(extra.get("searches") or [])), MAX_SEARCHES)
    options = {_option_name(o): o for o in base.options}
    for option in extra.get("options") or []:
        name = option.get("name")
        if name:
            options[name] = name if option.get("value") in (None, "") else f"{name}:{option['value']}"
    return ResolvConf(nameservers, searches, tuple(options.values()))


def _reachable(host: ResolvConf) -> ResolvConf:
    """The host's settings without loopback nameservers, which a pod's network namespace does not have."""
    return ResolvConf(tuple(n for n in host.nameservers if not _loopback(n)), host.searches, host.options)


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _limit(items: tuple[str, ...], most: int) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))[:most]


def _option_name(option: str) -> str:
    return option.split(":", 1)[0]
