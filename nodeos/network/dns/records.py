"""The cluster zone's answers: names in ``<domain>`` from Services and Endpoints, pure.

The names are Kubernetes' DNS specification's (what CoreDNS' kubernetes
plugin serves), without its wildcards:

- ``<service>.<ns>.svc.<domain>`` A: the Service's cluster IP; for a headless
  Service (``clusterIP: None``) the IPs of its ready endpoints; for an
  ExternalName Service a CNAME to the external name.
- ``<host>.<service>.<ns>.svc.<domain>`` A: one endpoint of a headless
  Service, ``<host>`` being the endpoint's ``hostname``, its pod's name, or its
  IP with dashes (``10-244-1-5``).
- ``_<port>._<proto>.<service>.<ns>.svc.<domain>`` SRV, for named ports: the
  Service's name and port; for a headless Service one record per ready
  endpoint (``<host>.<service>...`` and the endpoint's port), their A
  records in the additional section.
- ``<a-b-c-d>.<ns>.pod.<domain>`` A: that IP (CoreDNS' "pods insecure").
- ``d.c.b.a.in-addr.arpa`` PTR, for addresses in the cluster's Service and pod
  ranges only (``ReverseZone``): the Service of a cluster IP, the endpoint name
  of a headless Service's pod; NXDOMAIN for the rest of those ranges, so that
  a reverse lookup of a cluster address never waits on the upstreams.

A name that exists but has no records of the asked type (AAAA of a Service,
``svc.<domain>`` itself) is NODATA: NOERROR and no answer. Any other name in
the zone is NXDOMAIN. Both carry the zone's SOA in the authority section, so
that resolvers cache the negative answer for the SOA's minimum (the TTL).

Lookups go through two getters (``namespace/name`` -> object or None), the
informers' ``get``; the answers are built per query and never cached here,
so a changed Endpoints is answered at once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

__all__ = ["DEFAULT_TTL", "Answer", "ClusterZone", "Getter", "ReverseZone"]

DEFAULT_TTL = 5  # seconds; short, so that a moved Service or endpoint is seen soon
Getter = Callable[[str], "dict[str, Any] | None"]  # "namespace/name" -> the object, or None

A, SRV, CNAME, SOA, PTR, ANY = (dns.rdatatype.A, dns.rdatatype.SRV, dns.rdatatype.CNAME, dns.rdatatype.SOA,
                                dns.rdatatype.PTR, dns.rdatatype.ANY)
_REVERSE = dns.name.from_text("in-addr.arpa.")


@dataclass
class Answer:
    """The sections of a response; ``rcode`` NOERROR or NXDOMAIN."""

    rcode: dns.rcode.Rcode = dns.rcode.NOERROR
    answer: list[dns.rrset.RRset] = field(default_factory=list)
    authority: list[dns.rrset.RRset] = field(default_factory=list)
    additional: list[dns.rrset.RRset] = field(default_factory=list)


@dataclass(frozen=True)
class _Endpoint:
    ip: str
    names: tuple[str, ...]  # the <host> labels that name it, lowercase


class ClusterZone:
    """Answers for the names in ``domain`` (e.g. ``cluster.local``); see the module docstring."""

    def __init__(self, domain: str, services: Getter, endpoints: Getter, *, ttl: int = DEFAULT_TTL) -> None:
        self.origin = dns.name.from_text(domain)
        self.services = services
        self.endpoints = endpoints
        self.ttl = ttl

    def contains(self, name: dns.name.Name) -> bool:
        return name.is_subdomain(self.origin)

    def answer(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
        """The answer to ``qname``/``rdtype``, a name in the zone (``contains``)."""
        labels = [label.decode("ascii", "replace").lower() for label in qname.relativize(self.origin).labels]
        labels.reverse()  # from the zone down: ["svc", ns, service, ...]
        if not labels:
            return self._apex(qname, rdtype)
        found = self._lookup(qname, labels, rdtype)
        if found is None:
            return Answer(dns.rcode.NXDOMAIN, authority=[self.soa()])
        if not found.answer:
            found.authority.append(self.soa())
        return found

    def soa(self, owner: dns.name.Name | None = None) -> dns.rrset.RRset:
        """The zone's SOA; its minimum (the negative answers' TTL) is the records' TTL."""
        text = f"ns.dns.{self.origin} hostmaster.{self.origin} 1 7200 1800 86400 {self.ttl}"
        return self.rrset(owner or self.origin, SOA, [text])

    def service_name(self, service: dict) -> dns.name.Name:
        meta = service["metadata"]
        return dns.name.from_text(f"{meta['name']}.{meta['namespace']}.svc", self.origin)

    def names_of(self, service: dict, ip: str) -> list[dns.name.Name]:
        """The names of ``ip`` in ``service``: its own for its cluster IP, its endpoints' if headless."""
        if (service.get("spec") or {}).get("clusterIP") == ip:
            return [self.service_name(service)]
        if not _headless(service):
            return []
        return [dns.name.from_text(e.names[0], self.service_name(service)) for e in self._ready(service) if e.ip == ip]

    # -- the names ---------------------------------------------------------------------------------------

    def _apex(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
        if rdtype in (SOA, ANY):
            return Answer(answer=[self.rrset(qname, SOA, [self.soa()[0].to_text()])])
        return Answer(authority=[self.soa()])

    def _lookup(self, qname: dns.name.Name, labels: list[str],
                rdtype: dns.rdatatype.RdataType) -> Answer | None:
        """None for a name that does not exist."""
        if labels[0] == "svc":
            return self._service_name(qname, labels[1:], rdtype)
        if labels[0] == "pod":
            return self._pod_name(qname, labels[1:], rdtype)
        return None

    def _service_name(self, qname: dns.name.Name, labels: list[str],
                      rdtype: dns.rdatatype.RdataType) -> Answer | None:
        if len(labels) < 2:
            return Answer()  # svc.<domain>, <ns>.svc.<domain>: names on the way to Services
        namespace, name, rest = labels[0], labels[1], labels[2:]
        service = self.services(f"{namespace}/{name}")
        if service is None:
            return None
        if not rest:
            return self._service(qname, service, rdtype)
        if len(rest) == 1:
            return self._endpoint(qname, service, rest[0], rdtype)
        if len(rest) == 2 and rest[0].startswith("_") and rest[1].startswith("_"):
            return self._srv(qname, service, port=rest[1][1:], protocol=rest[0][1:], rdtype=rdtype)
        return None

    def _service(self, qname: dns.name.Name, service: dict, rdtype: dns.rdatatype.RdataType) -> Answer:
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName" and spec.get("externalName"):
            return Answer(answer=[self.rrset(qname, CNAME, [_absolute(spec["externalName"])])])
        if rdtype not in (A, ANY):
            return Answer()
        if _headless(service):
            ips = sorted({e.ip for e in self._ready(service)}, key=ipaddress.ip_address)
        else:
            ips = [spec["clusterIP"]] if spec.get("clusterIP") else []
        return Answer(answer=[self.rrset(qname, A, ips)] if ips else [])

    def _endpoint(self, qname: dns.name.Name, service: dict, host: str,
                  rdtype: dns.rdatatype.RdataType) -> Answer | None:
        if not _headless(service):
            return None
        ips = sorted({e.ip for e in self._ready(service) if host in e.names}, key=ipaddress.ip_address)
        if not ips:
            return None
        return Answer(answer=[self.rrset(qname, A, ips)] if rdtype in (A, ANY) else [])

    def _srv(self, qname: dns.name.Name, service: dict, *, port: str, protocol: str,
             rdtype: dns.rdatatype.RdataType) -> Answer | None:
        service_name = self.service_name(service)
        if _headless(service):
            targets = [(dns.name.from_text(e.names[0], service_name), number, e.ip)
                       for e, number in self._endpoint_ports(service, port, protocol)]
        else:
            targets = [(service_name, p["port"], None) for p in (service.get("spec") or {}).get("ports") or []
                       if _port_matches(p, port, protocol)]
        if not targets:
            return None
        if rdtype not in (SRV, ANY):
            return Answer()
        weight = 100 // len(targets)
        records = [f"0 {weight} {number} {target}" for target, number, _ in targets]
        additional = [self.rrset(target, A, [ip]) for target, _, ip in targets if ip]
        return Answer(answer=[self.rrset(qname, SRV, records)], additional=additional)

    def _pod_name(self, qname: dns.name.Name, labels: list[str],
                  rdtype: dns.rdatatype.RdataType) -> Answer | None:
        if len(labels) < 2:
            return Answer()  # pod.<domain>, <ns>.pod.<domain>
        if len(labels) > 2:
            return None
        try:
            ip = ipaddress.IPv4Address(labels[1].replace("-", "."))
        except ValueError:
            return None
        return Answer(answer=[self.rrset(qname, A, [str(ip)])] if rdtype in (A, ANY) else [])

    # -- endpoints ---------------------------------------------------------------------------------------

    def _ready(self, service: dict) -> list[_Endpoint]:
        return [endpoint for subset in self._subsets(service) for endpoint in _endpoints(subset)]

    def _endpoint_ports(self, service: dict, port: str, protocol: str) -> Iterable[tuple[_Endpoint, int]]:
        for subset in self._subsets(service):
            for p in subset.get("ports") or []:
                if _port_matches(p, port, protocol):
                    for endpoint in _endpoints(subset):
                        yield endpoint, p["port"]

    def _subsets(self, service: dict) -> list[dict]:
        meta = service["metadata"]
        endpoints = self.endpoints(f"{meta['namespace']}/{meta['name']}") or {}
        return endpoints.get("subsets") or []

    def rrset(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType, texts: Iterable[str]) -> dns.rrset.RRset:
        rdatas = [dns.rdata.from_text(dns.rdataclass.IN, rdtype, text, origin=dns.name.root, relativize=False)
                  for text in texts]
        return dns.rrset.from_rdata_list(name, self.ttl, rdatas)


class ReverseZone:
    """PTR records for the addresses of ``networks`` (the Service and pod ranges), from ``zone``'s Services."""

    def __init__(self, zone: ClusterZone, networks: Iterable[ipaddress.IPv4Network],
                 services: Callable[[], list[dict[str, Any]]]) -> None:
        self.zone = zone
        self.networks = list(networks)
        self.services = services

    def contains(self, name: dns.name.Name) -> bool:
        return self._network(name) is not None

    def answer(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer:
        """The answer to ``qname``/``rdtype``, a name ``contains`` says is ours. O(Services) per query."""
        network = self._network(qname)
        assert network is not None
        ip = dns.reversename.to_address(qname)
        targets = list(dict.fromkeys(name for service in self.services()
                                     for name in self.zone.names_of(service, ip)))
        soa = self.zone.soa(_reverse_zone(network))
        if not targets:
            return Answer(dns.rcode.NXDOMAIN, authority=[soa])
        if rdtype not in (PTR, ANY):
            return Answer(authority=[soa])
        return Answer(answer=[self.zone.rrset(qname, PTR, [t.to_text() for t in targets])])

    def _network(self, name: dns.name.Name) -> ipaddress.IPv4Network | None:
        if len(name.relativize(dns.name.root).labels) != 6 or not name.is_subdomain(_REVERSE):
            return None
        try:
            ip = ipaddress.IPv4Address(dns.reversename.to_address(name))
        except (dns.exception.SyntaxError, ValueError):
            return None
        return next((n for n in self.networks if ip in n), None)


def _reverse_zone(network: ipaddress.IPv4Network) -> dns.name.Name:
    """``96.10.in-addr.arpa.`` for 10.96.0.0/16: the whole octets of the prefix."""
    octets = str(network.network_address).split(".")[:network.prefixlen // 8]
    return dns.name.from_text(".".join(reversed(octets)), _REVERSE)


def _headless(service: dict) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def _endpoints(subset: dict) -> list[_Endpoint]:
    """The ready addresses of an Endpoints subset (``addresses``; ``notReadyAddresses`` are not served)."""
    found = []
    for address in subset.get("addresses") or []:
        ip = address.get("ip")
        if not ip:
            continue
        ref = address.get("targetRef") or {}
        names = [address.get("hostname"), ref.get("name") if ref.get("kind", "Pod") == "Pod" else None,
                 ip.replace(".", "-")]
        labels = (n.lower() for n in names if n and "." not in n)  # a pod name may have dots: not one label
        found.append(_Endpoint(ip, tuple(dict.fromkeys(labels))))
    return found


def _port_matches(port: dict, name: str, protocol: str) -> bool:
    return bool(port.get("name")) and port["name"].lower() == name and \
        (port.get("protocol") or "TCP").lower() == protocol


def _absolute(name: str) -> str:
    return name if name.endswith(".") else name + "."
