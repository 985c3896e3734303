import random

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rrset

from nodeos.network.dns.server import answer_wire

QUERY = dns.message.make_query("web.default.svc.cluster.local.", "A")


async def many_addresses(query):
    response = dns.message.make_response(query)
    ips = [f"10.244.1.{i}" for i in range(1, 101)]
    response.answer.append(dns.rrset.from_text_list(query.question[0].name, 5, "IN", "A", ips))
    return response


async def echo(query):
    return dns.message.make_response(query)


async def failing(query):
    raise RuntimeError("boom")


async def test_too_large_for_plain_udp_is_truncated_but_not_for_edns_or_tcp():
    udp = dns.message.from_wire(await answer_wire(many_addresses, QUERY.to_wire(), max_size=None))
    assert udp.flags & dns.flags.TC and udp.id == QUERY.id
    edns = dns.message.make_query("web.default.svc.cluster.local.", "A", use_edns=0, payload=4096)
    assert len(dns.message.from_wire(await answer_wire(many_addresses, edns.to_wire(), max_size=None)).answer[0]) == 100
    tcp = dns.message.from_wire(await answer_wire(many_addresses, QUERY.to_wire(), max_size=65535))
    assert not tcp.flags & dns.flags.TC and len(tcp.answer[0]) == 100


async def test_a_failing_handler_is_servfail():
    response = dns.message.from_wire(await answer_wire(failing, QUERY.to_wire(), max_size=None))
    assert response.rcode() == dns.rcode.SERVFAIL and response.id == QUERY.id


async def test_other_opcodes_are_notimp_and_responses_are_dropped():
    notify = dns.message.make_query("cluster.local.", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    reply = await answer_wire(many_addresses, notify.to_wire(), max_size=None)
    assert reply[:2] == notify.to_wire()[:2] and reply[3] & 0x0F == dns.rcode.NOTIMP
    assert await answer_wire(many_addresses, dns.message.make_response(QUERY).to_wire(), max_size=None) is None


async def test_mutated_packets_never_raise():
    rnd = random.Random(5)
    base = dns.message.make_query("web.default.svc.cluster.local.", "SRV", use_edns=0).to_wire()
    for _ in range(2000):
        packet = bytearray(base)
        for _ in range(rnd.randint(1, 8)):
            packet[rnd.randrange(len(packet))] = rnd.randrange(256)
        if rnd.random() < 0.3:
            packet = packet[:rnd.randrange(len(packet))]
        reply = await answer_wire(echo, bytes(packet), max_size=None)
        assert reply is None or reply[:2] == bytes(packet[:2])
