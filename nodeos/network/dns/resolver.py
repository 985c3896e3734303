"""Who answers a query: the cluster zone for names in it, the upstream resolvers for the rest."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rdataclass

from nodeos.network.dns.forward import Forwarder
from nodeos.network.dns.records import ClusterZone

__all__ = ["Resolver"]


class Resolver:
    """``resolve`` is the DNS server's handler (``server.Handler``)."""

    def __init__(self, zone: ClusterZone, forwarder: Forwarder) -> None:
        self.zone = zone
        self.forwarder = forwarder

    async def resolve(self, query: dns.message.Message) -> dns.message.Message:
        question = query.question[0]
        if question.rdclass != dns.rdataclass.IN or not self.zone.contains(question.name):
            return await self.forwarder.forward(query)
        found = self.zone.answer(question.name, question.rdtype)
        response = dns.message.make_response(query, recursion_available=True)
        response.flags |= dns.flags.AA  # the zone is ours: answers and NXDOMAIN are authoritative
        response.set_rcode(found.rcode)
        response.answer.extend(found.answer)
        response.authority.extend(found.authority)
        response.additional.extend(found.additional)
        return response
