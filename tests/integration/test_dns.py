"""The cluster DNS against a real API server, queried over UDP and TCP, forwarding to upstreams of the test's own."""

from __future__ import annotations

import socket

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype as T
import dns.rrset
import pytest
import trio

from nodeos.api.kinds import resolve
from nodeos.config import default_config
from nodeos.network.dns import run_dns
from nodeos.network.dns.server import serve_dns

NAMESPACES, SERVICES, ENDPOINTS, NODES = (resolve("namespaces"), resolve("services"), resolve("endpoints"),
                                          resolve("nodes"))
NS = "dnstest"
TIMEOUT = 3.0


def service(name, cluster_ip, ports=(("http", 80),)):
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
            "spec": {"clusterIP": cluster_ip, "selector": {"app": name},
                     "ports": [{"name": n, "port": p, "protocol": "TCP"} for n, p in ports]}}


def endpoints(name, ips, port=("http", 8080)):
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name, "namespace": NS},
            "subsets": [{"addresses": [{"ip": ip} for ip in ips],
                         "ports": [{"name": port[0], "port": port[1], "protocol": "TCP"}]}]}


async def upstream_answer(query: dns.message.Message) -> dns.message.Message:
    """A fake upstream: example.test has one address, big.test 100 (too many for plain UDP)."""
    response = dns.message.make_response(query)
    name = query.question[0].name.to_text().lower()
    if name == "example.test.":
        response.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "192.0.2.1"))
    elif name == "big.test.":
        ips = [f"198.51.100.{i}" for i in range(1, 101)]
        response.answer.append(dns.rrset.from_text_list(query.question[0].name, 60, "IN", "A", ips))
    else:
        response.set_rcode(dns.rcode.NXDOMAIN)
    return response


@pytest.fixture
async def cluster(api):
    await api.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    await api.create(SERVICES, service("web", "10.96.0.10"))
    await api.create(SERVICES, service("db", "None"))
    await api.create(ENDPOINTS, endpoints("db", ["10.244.1.7", "10.244.2.8"]))
    await api.create(SERVICES, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": NS},
                                "spec": {"type": "ExternalName", "externalName": "example.test"}})
    return api


@pytest.fixture
async def upstream(nursery):
    """A fake upstream resolver on loopback: (host, port)."""
    return await nursery.start(serve_dns, upstream_answer, "127.0.0.1", 0)


@pytest.fixture
def silent_upstream():
    """An upstream that never answers: a bound UDP socket nobody reads, and no TCP listener."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()
    sock.close()


async def start_dns(nursery, api, upstreams, tmp_path):
    config = default_config(node={"name": "n1"}, dns={"upstream": [f"{h}:{p}" for h, p in upstreams]})
    (tmp_path / "resolv.conf").write_text("nameserver 127.0.0.1\n")  # not used: [dns] upstream is set
    return await nursery.start(lambda task_status: run_dns(config, api, host="127.0.0.1", port=0,
                                                           resolv_conf=tmp_path / "resolv.conf",
                                                           task_status=task_status))


async def udp(server, name, rdtype=T.A, **kw):
    return await dns.asyncquery.udp(dns.message.make_query(name, rdtype, **kw), server[0], TIMEOUT, server[1])


async def tcp(server, name, rdtype=T.A):
    return await dns.asyncquery.tcp(dns.message.make_query(name, rdtype), server[0], TIMEOUT, server[1])


async def tcp_message(stream):
    received = b""
    while len(received) < 2 or len(received) < 2 + int.from_bytes(received[:2], "big"):
        received += await stream.receive_some(1)  # byte by byte: never read into the next message
    return received[2:]


def addresses(response):
    return sorted(r.address for rrset in response.answer if rrset.rdtype == T.A for r in rrset)


async def test_service_names_over_udp_and_tcp(cluster, nursery, upstream, tmp_path):
    server = await start_dns(nursery, cluster, [upstream], tmp_path)
    for ask in (udp, tcp):
        response = await ask(server, "web.dnstest.svc.cluster.local.")
        assert response.rcode() == dns.rcode.NOERROR and addresses(response) == ["10.96.0.10"]
        assert response.flags & dns.flags.AA and response.answer[0].ttl == 5
        assert addresses(await ask(server, "DB.dnstest.svc.Cluster.Local.")) == ["10.244.1.7", "10.244.2.8"]
        srv = await ask(server, "_http._tcp.web.dnstest.svc.cluster.local.", T.SRV)
        assert [r.to_text() for r in srv.answer[0]] == ["0 100 80 web.dnstest.svc.cluster.local."]
        missing = await ask(server, "nope.dnstest.svc.cluster.local.")
        assert missing.rcode() == dns.rcode.NXDOMAIN and missing.authority[0].rdtype == T.SOA
        nodata = await ask(server, "web.dnstest.svc.cluster.local.", T.AAAA)
        assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == []
        ptr = await ask(server, "10.0.96.10.in-addr.arpa.", T.PTR)
        assert [r.to_text() for r in ptr.answer[0]] == ["web.dnstest.svc.cluster.local."]


async def test_answers_follow_the_api(cluster, nursery, upstream, tmp_path):
    server = await start_dns(nursery, cluster, [upstream], tmp_path)
    await cluster.create(SERVICES, service("late", "10.96.0.20"))
    with trio.fail_after(10):
        while (await udp(server, "late.dnstest.svc.cluster.local.")).rcode() != dns.rcode.NOERROR:
            await trio.sleep(0.05)
    await cluster.patch(ENDPOINTS, "db", {"subsets": endpoints("db", ["10.244.3.3"])["subsets"]}, namespace=NS)
    with trio.fail_after(10):
        while addresses(await udp(server, "db.dnstest.svc.cluster.local.")) != ["10.244.3.3"]:
            await trio.sleep(0.05)


async def test_other_names_are_forwarded_with_tcp_on_truncation(cluster, nursery, upstream, tmp_path):
    server = await start_dns(nursery, cluster, [upstream], tmp_path)
    response = await udp(server, "example.test.")
    assert addresses(response) == ["192.0.2.1"] and not response.flags & dns.flags.AA
    assert (await udp(server, "nothing.test.")).rcode() == dns.rcode.NXDOMAIN
    external = await udp(server, "ext.dnstest.svc.cluster.local.")  # an ExternalName: its CNAME, chased upstream
    assert [rrset.rdtype for rrset in external.answer] == [T.CNAME, T.A] and addresses(external) == ["192.0.2.1"]
    truncated = await udp(server, "big.test.")  # 100 A records do not fit 512 bytes: we truncate for the client
    assert truncated.flags & dns.flags.TC
    assert len(addresses(await tcp(server, "big.test."))) == 100
    assert len(addresses(await udp(server, "big.test.", use_edns=0, payload=4096))) == 100


async def test_a_silent_upstream_is_passed_over_and_none_gives_servfail(cluster, nursery, upstream,
                                                                        silent_upstream, tmp_path):
    server = await start_dns(nursery, cluster, [silent_upstream, upstream], tmp_path)
    with trio.fail_after(TIMEOUT + 1):
        assert addresses(await udp(server, "example.test.")) == ["192.0.2.1"]
    lonely = await start_dns(nursery, cluster, [silent_upstream], tmp_path)
    with trio.fail_after(TIMEOUT + 1):
        assert (await udp(lonely, "example.test.")).rcode() == dns.rcode.SERVFAIL


async def test_garbage_is_answered_formerr_or_dropped_and_the_server_goes_on(cluster, nursery, upstream, tmp_path):
    server = await start_dns(nursery, cluster, [upstream], tmp_path)
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        await sock.connect(server)
        await sock.send(b"\x12\x34\x01\x00" + b"\xff" * 28)  # a query header, then nonsense
        with trio.fail_after(TIMEOUT):
            reply = await sock.recv(512)
        assert reply[:2] == b"\x12\x34" and reply[3] & 0x0F == dns.rcode.FORMERR
        await sock.send(b"\x01")  # too short for a header: dropped
        response = dns.message.make_response(dns.message.make_query("web.dnstest.svc.cluster.local.", T.A))
        await sock.send(response.to_wire())  # a response: dropped, never answered
    stream = await trio.open_tcp_stream(*server)
    async with stream:
        garbage = b"\xab\xcd\x01\x00" + b"\xff" * 28  # a TCP message of garbage, then a good one on the same stream
        query = dns.message.make_query("web.dnstest.svc.cluster.local.", T.A).to_wire()
        await stream.send_all(len(garbage).to_bytes(2, "big") + garbage + len(query).to_bytes(2, "big") + query)
        with trio.fail_after(TIMEOUT):
            first, second = await tcp_message(stream), await tcp_message(stream)
        assert first[:2] == b"\xab\xcd" and first[3] & 0x0F == dns.rcode.FORMERR
        assert addresses(dns.message.from_wire(second)) == ["10.96.0.10"]
    assert addresses(await udp(server, "web.dnstest.svc.cluster.local.")) == ["10.96.0.10"]


async def test_waits_for_the_podcidr_and_binds_its_gateway_before_it_exists(api, nursery, tmp_path):
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n-dns"}, "spec": {}}
    await api.create(NODES, node)
    config = default_config(node={"name": "n-dns"}, dns={"upstream": ["127.0.0.1:9"]})
    started = trio.Event()
    bound = []

    async def run(task_status=trio.TASK_STATUS_IGNORED):
        bound.append(await nursery.start(lambda task_status: run_dns(config, api, port=0, task_status=task_status)))
        started.set()

    nursery.start_soon(run)
    await trio.sleep(1.5)
    assert not started.is_set()  # no podCIDR yet
    await api.patch(NODES, "n-dns", {"spec": {"podCIDR": "10.251.7.0/24"}})
    with trio.fail_after(10):
        await started.wait()
    assert bound[0][0] == "10.251.7.1"  # an address no interface has (IP_FREEBIND)


# -- pods' resolv.conf in real Podman --------------------------------------------------------------------------

def pod_resolv_in_podman(libpod, pod: dict, cluster, network: str, label: dict) -> str:
    """The /etc/resolv.conf a container of ``pod`` sees, its Podman pod made by the agent's spec functions."""
    from nodeos.agent.podman import dnsconfig, specgen
    from tests.integration.test_specgen_podman import create, run_container, wait_for_logs

    resolv = dnsconfig.pod_resolv_conf(pod, cluster)
    spec = specgen.pod_spec(pod, network=network, labels=label, name=pod["metadata"]["name"], dns=resolv)
    pod_id = create(libpod, "/pods/create", spec)
    assert libpod.post(f"/pods/{pod_id}/start").status_code in (200, 304)
    name = run_container(libpod, pod, {"name": "c", "command": ["sh", "-c", "cat /etc/resolv.conf; echo END"]},
                         pod_id, label)
    return wait_for_logs(name, "END").removesuffix("END\n")


def create_network(name: str):
    import ipaddress
    import secrets

    from tests.podman import podman

    for _ in range(20):
        subnet = ipaddress.ip_network(f"10.{secrets.randbelow(50) + 200}.{secrets.randbelow(254) + 1}.0/24")
        if podman("network", "create", "--disable-dns", "--subnet", str(subnet), name, check=False).returncode == 0:
            return subnet
    raise RuntimeError("no free subnet for the test network")


@pytest.fixture
def libpod(podman_socket):
    import httpx

    with httpx.Client(transport=httpx.HTTPTransport(uds=str(podman_socket)), base_url="http://d/v4.0.0/libpod",
                      timeout=60) as client:
        yield client


def test_pods_resolv_conf_in_podman_by_dns_policy(libpod, test_image, tmp_path):
    import secrets

    from nodeos.agent.podman.dnsconfig import ClusterDns
    from nodeos.agent.podman.network import gateway
    from nodeos.network.dns.resolvconf import ResolvConf, read_resolv_conf
    from tests.podman import podman, remove_labelled

    tag = secrets.token_hex(4)
    label = {"nodeos.test": f"n4-dns-{tag}"}
    network = f"nodeos-n4-dns-{tag}"
    subnet = create_network(network)  # as the agent makes it: without Podman's own DNS (aardvark)
    try:
        cluster = ClusterDns("cluster.local", gateway(str(subnet)), ResolvConf(searches=("corp.example",)))

        def k8s(name, **spec):
            return {"metadata": {"name": f"n4-{name}-{tag}", "namespace": "shop", "uid": f"{name}-{tag}"},
                    "spec": {"containers": [{"name": "c"}], **spec}}

        first = pod_resolv_in_podman(libpod, k8s("first"), cluster, network, label)
        assert first.splitlines() == ["search shop.svc.cluster.local svc.cluster.local cluster.local corp.example",
                                      f"nameserver {next(subnet.hosts())}", "options ndots:5"], first
        custom = pod_resolv_in_podman(libpod, k8s("none", dnsPolicy="None", dnsConfig={
            "nameservers": ["192.0.2.10"], "options": [{"name": "ndots", "value": "1"}]}), cluster, network, label)
        assert "nameserver 192.0.2.10" in custom.splitlines() and "options ndots:1" in custom.splitlines(), custom
        assert "search" not in custom and str(next(subnet.hosts())) not in custom, custom
        host = pod_resolv_in_podman(libpod, k8s("default", dnsPolicy="Default"), cluster, network, label)
        host_nameservers = [n for n in read_resolv_conf().nameservers if not n.startswith("127.")]
        assert [line.split()[1] for line in host.splitlines() if line.startswith("nameserver")] == \
            host_nameservers, host
    finally:
        remove_labelled(f"nodeos.test={label['nodeos.test']}")
        podman("network", "rm", "-f", network, check=False)


def test_a_node_without_the_dns_gives_its_pods_the_hosts_resolvers(podman_node, test_image):
    """The session's node runs no cluster DNS ([node] disable): no dead nameserver in its pods."""
    from nodeos.agent.podman import labels
    from nodeos.network.dns.resolvconf import read_resolv_conf
    from tests.podman import podman

    namespace = podman_node.namespace()
    podman_node.create_pod(namespace, "resolv", [{"name": "c", "image": test_image, "command": ["sleep", "300"]}])
    pod = podman_node.wait_pod(namespace, "resolv", lambda p: p["status"].get("phase") == "Running")
    container = labels.container_name(pod, "c", 0)
    seen = podman("exec", container, "cat", "/etc/resolv.conf").stdout
    nameservers = [line.split()[1] for line in seen.splitlines() if line.startswith("nameserver")]
    assert nameservers == [n for n in read_resolv_conf().nameservers if not n.startswith("127.")], seen
    assert "svc.cluster.local" not in seen, seen


# -- port 53 on an address that appears later, in a network namespace of the test's own ------------------------

SERVE_IN_NETNS = """
import sys, trio, dns.message, dns.rrset
from nodeos.network.dns.server import serve_dns

async def answer(query):
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text(query.question[0].name, 5, "IN", "A", "10.96.0.10"))
    return response

async def main():
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_dns, answer, sys.argv[1], 53)
        print("bound", flush=True)

trio.run(main)
"""

QUERY_IN_NETNS = """
import sys, dns.message, dns.query
query = dns.message.make_query("web.shop.svc.cluster.local.", "A")
for ask in (dns.query.udp, dns.query.tcp):
    print(ask(query, sys.argv[1], timeout=5).answer[0][0].address)
"""


@pytest.fixture
def netns():
    import secrets
    import subprocess

    name = f"nodeos-n4-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def test_port_53_on_the_gateway_bound_before_the_address_exists(netns):
    """As on a node before its first pod: the bridge (and its address) comes later, the server answers then."""
    import subprocess
    import sys

    run = ["ip", "netns", "exec", netns, sys.executable, "-c"]
    with subprocess.Popen([*run, SERVE_IN_NETNS, "10.77.0.1"], stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout.readline() == "bound\n"  # no interface has 10.77.0.1 yet
            for command in (["link", "add", "n4br", "type", "bridge"], ["addr", "add", "10.77.0.1/24", "dev", "n4br"],
                            ["link", "set", "n4br", "up"]):
                subprocess.run(["ip", "-n", netns, *command], check=True)
            asked = subprocess.run([*run, QUERY_IN_NETNS, "10.77.0.1"], capture_output=True, text=True, timeout=30)
            assert asked.stdout.splitlines() == ["10.96.0.10", "10.96.0.10"], asked.stderr
        finally:
            server.kill()
