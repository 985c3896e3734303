"""Who answers a query: the cluster zone (and the reverse names of the cluster's addresses) for names in it,
the upstream resolvers for the rest.

An ExternalName Service is a CNAME, and the stub resolvers of glibc and musl
do not chase a CNAME whose target's records are missing from the answer: the
resolver looks the target up (one hop, upstream or in the zone) and adds
what it finds, as CoreDNS does.
"""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from nodeos.network.dns.forward import Forwarder
from nodeos.network.dns.records import Answer, ClusterZone, ReverseZone

__all__ = ["Resolver"]


class Resolver:
    """``resolve`` is the DNS server's handler (``server.Handler``)."""

    def __init__(self, zone: ClusterZone, forwarder: Forwarder, reverse: ReverseZone | None = None) -> None:
        self.zone = zone
        self.forwarder = forwarder
        self.reverse = reverse

    async def resolve(self, query: dns.message.Message) -> dns.message.Message:
        question = query.question[0]
        found = self._local(question.name, question.rdtype) if question.rdclass == dns.rdataclass.IN else None
        if found is None:
            return await self.forwarder.forward(query)
        response = dns.message.make_response(query, recursion_available=True)
        response.flags |= dns.flags.AA  # the zone is ours: answers and NXDOMAIN are authoritative
        response.set_rcode(found.rcode)
        response.answer.extend(found.answer)
        response.authority.extend(found.authority)
        response.additional.extend(found.additional)
        if found.answer and found.answer[-1].rdtype == dns.rdatatype.CNAME and \
                question.rdtype not in (dns.rdatatype.CNAME, dns.rdatatype.ANY):
            await self._chase(response, found.answer[-1][0].target, question.rdtype)
        return response

    def _local(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Answer | None:
        """The answer of the zone ``name`` is in; None for a name of no zone of ours."""
        if self.zone.contains(name):
            return self.zone.answer(name, rdtype)
        if self.reverse is not None and self.reverse.contains(name):
            return self.reverse.answer(name, rdtype)
        return None

    async def _chase(self, response: dns.message.Message, target: dns.name.Name,
                     rdtype: dns.rdatatype.RdataType) -> None:
        if self.zone.contains(target):
            found = self.zone.answer(target, rdtype)
            response.answer.extend(rrset for rrset in found.answer if rrset.rdtype != dns.rdatatype.CNAME)
            return
        chased = await self.forwarder.forward(dns.message.make_query(target, rdtype))
        response.answer.extend(chased.answer)
        if chased.rcode() != dns.rcode.NOERROR:
            response.set_rcode(chased.rcode())
