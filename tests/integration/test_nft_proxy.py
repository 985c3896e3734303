"""The nftables proxy in a real kernel: a "node" network namespace with our table, "pods" around it.

Topology (every namespace made here, removed at the end)::

    pod1 10.244.1.11 ┐
    pod2 10.244.1.12 ├─ nodeos0 10.244.1.1 ─ NODE ─ vc 10.244.9.1 ── client 10.244.9.2 (a pod, routed)
    pod3 10.244.1.13 ┘                    │  └── vo 192.168.50.1 ── outside 192.168.50.2 (not a pod)
                                          └ svc0 (a veth to nowhere): the route to the service CIDR

Each pod runs a TCP server on 8080 that answers with its name and the peer's
address, so a test sees which backend it reached and from where. The client
side is a small script run with ``ip netns exec``, making N connections.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess
import sys
import textwrap

import pytest
import trio

from nodeos.agent.podman.network import BRIDGE
from nodeos.api.kinds import by_plural
from nodeos.config import parse
from nodeos.network.proxy import nftrules
from nodeos.network.proxy.hairpin import ensure_hairpin
from nodeos.network.proxy.model import Changes, Endpoint, ServicePort
from nodeos.network.proxy.nftables import NftablesProxy, run_nftables_proxy
from nodeos.network.proxy.nftrules import Context

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="network namespaces")

PODS = {"pod1": "10.244.1.11", "pod2": "10.244.1.12", "pod3": "10.244.1.13"}
NODE_IP, OUTSIDE_IP, CLIENT_IP = "192.168.50.1", "192.168.50.2", "10.244.9.2"
CTX = Context(node="n1", pod_cidr="10.244.0.0/16")

SERVER = textwrap.dedent("""
    import socket, sys, threading
    name = sys.argv[1]
    def serve(conn, peer):
        with conn:
            conn.sendall(f"{name} {peer[0]}\\n".encode())
    def udp():
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", 8080))
        while True:
            data, peer = u.recvfrom(100)
            u.sendto(f"{name} {peer[0]}".encode(), peer)
    threading.Thread(target=udp, daemon=True).start()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 8080))
    s.listen(128)
    print("ready", flush=True)
    while True:
        conn, peer = s.accept()
        threading.Thread(target=serve, args=(conn, peer), daemon=True).start()
""")

CLIENT = textwrap.dedent("""
    import json, socket, sys
    host, port, count, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    udp, sport = sys.argv[5] == "udp", int(sys.argv[6])
    results = []
    for _ in range(count):
        try:
            if udp:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.settimeout(timeout)
                    s.bind(("0.0.0.0", sport))  # 0: a fresh source port, a new conntrack entry each time
                    s.connect((host, port))
                    s.send(b"hi")
                    results.append(s.recv(100).decode())
                continue
            with socket.create_connection((host, port), timeout=timeout) as s:
                results.append(s.makefile().readline().strip())
        except ConnectionRefusedError:
            results.append("refused")
        except OSError as exc:
            results.append(f"error {type(exc).__name__}")
    print(json.dumps(results))
""")


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=check, capture_output=True, text=True)


class Net:
    """The namespaces of one test module, named ``nodeos-n2-<hex>-<role>``."""

    def __init__(self) -> None:
        self.prefix = f"nodeos-n2-{secrets.token_hex(3)}"
        self.node = f"{self.prefix}-node"
        self.namespaces: list[str] = []
        self.servers: list[subprocess.Popen] = []

    def ns(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def add_ns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def link(self, ns: str, host_if: str, addr: str, gateway: str | None) -> None:
        """A veth from the node (``host_if``) to ``ns`` (eth0 with ``addr``/24)."""
        sh("ip", "-n", self.node, "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        if gateway:
            sh("ip", "-n", ns, "route", "add", "default", "via", gateway)

    def up(self) -> None:
        self.add_ns(self.node)
        node = ("ip", "-n", self.node)
        sh("ip", "netns", "exec", self.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh(*node, "link", "add", BRIDGE, "type", "bridge")
        sh(*node, "addr", "add", "10.244.1.1/24", "dev", BRIDGE)
        sh(*node, "link", "set", BRIDGE, "up")
        for i, (pod, ip) in enumerate(PODS.items()):
            self.add_ns(self.ns(pod))
            self.link(self.ns(pod), f"v{i}", ip, "10.244.1.1")
            sh(*node, "link", "set", f"v{i}", "master", BRIDGE, "up")
            # br_netfilter DNATs hairpin traffic at the bridge and sends it back out the port it came in
            # on; a bridge does that only with hairpin mode (kubelet's hairpin-veth mode)
            sh(*node, "link", "set", f"v{i}", "type", "bridge_slave", "hairpin", "on")
        self.add_ns(self.ns("client"))
        self.link(self.ns("client"), "vc", CLIENT_IP, "10.244.9.1")
        sh(*node, "addr", "add", "10.244.9.1/24", "dev", "vc")
        sh(*node, "link", "set", "vc", "up")
        self.add_ns(self.ns("outside"))
        self.link(self.ns("outside"), "vo", OUTSIDE_IP, None)
        sh(*node, "addr", "add", f"{NODE_IP}/24", "dev", "vo")
        sh(*node, "link", "set", "vo", "up")
        sh(*node, "link", "add", "svc0", "type", "veth", "peer", "name", "svc1")  # no dummy module here
        sh(*node, "link", "set", "svc1", "up")
        sh(*node, "link", "set", "svc0", "up")
        sh(*node, "route", "add", "10.96.0.0/16", "dev", "svc0")
        for pod in PODS:
            server = subprocess.Popen(["ip", "netns", "exec", self.ns(pod), sys.executable, "-c", SERVER, pod],
                                      stdout=subprocess.PIPE, text=True)
            self.servers.append(server)
            assert server.stdout and server.stdout.readline().strip() == "ready"

    def down(self) -> None:
        for server in self.servers:
            server.kill()
            server.wait()
            if server.stdout:
                server.stdout.close()
        for name in reversed(self.namespaces):
            sh("ip", "netns", "del", name, check=False)

    def nft(self) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.node, "nft")

    async def connect(self, where: str, host: str, port: int, count: int = 1, timeout: float = 2.0,
                      protocol: str = "tcp", sport: int = 0) -> list[str]:
        """``count`` TCP connections (or UDP exchanges, from source port ``sport`` if given) from
        namespace ``where``; each a reply ("pod1 10.244.9.2"), "refused" or "error <exception>"."""
        done = await trio.run_process(["ip", "netns", "exec", self.ns(where), sys.executable, "-c", CLIENT,
                                       host, str(port), str(count), str(timeout), protocol, str(sport)],
                                      capture_stdout=True)
        return json.loads(done.stdout)


@pytest.fixture(scope="module")
def net():
    net = Net()
    try:
        net.up()
        yield net
    finally:
        net.down()


FORGET = ("import json, sys; from nodeos.network.proxy.redirect import forget_udp_flows; "
          "print(forget_udp_flows([tuple(d) for d in json.loads(sys.argv[1])]))")


@pytest.fixture
def proxy(net):
    """A proxy over the node namespace, from an empty table; it forgets UDP flows there too."""
    sh(*net.nft(), "delete", "table", *nftrules.TABLE.split(), check=False)
    proxy = NftablesProxy(CTX, net.nft())
    proxy.forgotten = []

    async def forget_udp(destinations):
        proxy.forgotten.append(destinations)
        await trio.run_process(["ip", "netns", "exec", net.node, sys.executable, "-c", FORGET,
                                json.dumps(destinations)], capture_stdout=True)

    proxy.forget_udp = forget_udp
    return proxy


def service(name="web", *pods, cluster_ip="10.96.0.10", node_port=None, affinity=None, local=False,
            nodes=None, protocol="TCP") -> ServicePort:
    nodes = nodes or {}
    endpoints = tuple(Endpoint(PODS[pod], 8080, nodes.get(pod, "n1"), True) for pod in sorted(pods))
    return ServicePort("default", name, "http", protocol, cluster_ip, 80, node_port, endpoints, affinity, local)


async def program(proxy: NftablesProxy, *ports: ServicePort, full: bool = True) -> None:
    snapshot = {sp.key: sp for sp in ports}
    changes = Changes(set(snapshot) | set(proxy.programmed), full=full)
    await proxy.apply(changes, snapshot)


async def until(check, timeout: float) -> None:
    with trio.fail_after(timeout):
        while not await check():
            await trio.sleep(0.1)


def backends(replies: list[str]) -> set[str]:
    return {reply.split()[0] for reply in replies}


async def test_cluster_ip_spreads_over_ready_endpoints(net, proxy):
    await program(proxy, service("web", "pod1", "pod2", "pod3"))
    replies = await net.connect("client", "10.96.0.10", 80, count=30)
    assert backends(replies) == {"pod1", "pod2", "pod3"}
    assert {reply.split()[1] for reply in replies} == {CLIENT_IP}  # a pod's address is kept


async def test_udp_service_spreads_and_refuses_without_endpoints(net, proxy):
    await program(proxy, service("dns", "pod1", "pod2", protocol="UDP", cluster_ip="10.96.0.53"),
                  service("none", protocol="UDP", cluster_ip="10.96.0.54"))
    replies = await net.connect("client", "10.96.0.53", 80, count=20, protocol="udp")
    assert backends(replies) == {"pod1", "pod2"}
    assert await net.connect("client", "10.96.0.54", 80, protocol="udp") == ["refused"]
    assert await net.connect("client", "10.96.0.53", 80, protocol="tcp", timeout=0.5) != ["pod1 " + CLIENT_IP]


async def test_udp_flow_leaves_a_removed_endpoint(net, proxy):
    """A UDP client keeping its source port keeps its conntrack entry: unless the proxy forgets it,
    it keeps going to the endpoint it first went to (here still alive, so the test can tell)."""
    await program(proxy, service("dns", "pod1", protocol="UDP", cluster_ip="10.96.0.53"))
    first = await net.connect("client", "10.96.0.53", 80, count=2, protocol="udp", sport=40053)
    assert first == [f"pod1 {CLIENT_IP}"] * 2
    await program(proxy, service("dns", "pod2", protocol="UDP", cluster_ip="10.96.0.53"), full=False)
    assert proxy.forgotten[-1] == [("10.96.0.53", 80)]
    assert await net.connect("client", "10.96.0.53", 80, protocol="udp", sport=40053) == [f"pod2 {CLIENT_IP}"]


async def test_node_port_from_outside_is_masqueraded(net, proxy):
    await program(proxy, service("web", "pod1", "pod2", node_port=30080))
    replies = await net.connect("outside", NODE_IP, 30080, count=10)
    assert backends(replies) <= {"pod1", "pod2"} and len(replies) == 10
    assert {reply.split()[1] for reply in replies} == {"10.244.1.1"}  # the node's address on the pod network


async def test_node_port_local_policy_keeps_client_address_and_only_local_endpoints(net, proxy):
    await program(proxy, service("web", "pod1", "pod2", "pod3", node_port=30080, local=True,
                                 nodes={"pod2": "n2", "pod3": "n2"}))
    replies = await net.connect("outside", NODE_IP, 30080, count=10)
    assert set(replies) == {f"pod1 {OUTSIDE_IP}"}
    # pods are not external: they go the cluster way, to any endpoint
    assert backends(await net.connect("client", NODE_IP, 30080, count=20)) == {"pod1", "pod2", "pod3"}
    await program(proxy, service("web", "pod2", node_port=30080, local=True, nodes={"pod2": "n2"}))
    assert (await net.connect("outside", NODE_IP, 30080, timeout=0.5)) == ["error TimeoutError"]  # dropped


async def test_session_affinity_sticks(net, proxy):
    await program(proxy, service("web", "pod1", "pod2", "pod3", affinity=60))
    replies = await net.connect("client", "10.96.0.10", 80, count=15)
    assert len(backends(replies)) == 1 and len(replies) == 15


async def test_no_endpoints_is_refused_at_once(net, proxy):
    await program(proxy, service("web", cluster_ip="10.96.0.10", node_port=30080))
    # "refused" is ECONNREFUSED, from the ICMP port unreachable; a black hole would be a TimeoutError
    assert await net.connect("client", "10.96.0.10", 80) == ["refused"]
    assert await net.connect("outside", NODE_IP, 30080) == ["refused"]
    await program(proxy, service("web", "pod1", node_port=30080), full=False)
    assert backends(await net.connect("client", "10.96.0.10", 80)) == {"pod1"}


async def test_removed_endpoint_gets_no_new_connections(net, proxy):
    await program(proxy, service("web", "pod1", "pod2"))
    assert backends(await net.connect("client", "10.96.0.10", 80, count=20)) == {"pod1", "pod2"}
    await program(proxy, service("web", "pod1"), full=False)
    assert backends(await net.connect("client", "10.96.0.10", 80, count=20)) == {"pod1"}


async def test_hairpin_a_pod_reaches_itself_through_its_service(net, proxy):
    await program(proxy, service("web", "pod1"))
    replies = await net.connect("pod1", "10.96.0.10", 80, count=3)
    assert replies == ["pod1 10.244.1.1"] * 3  # masqueraded, so the reply comes back through the node


async def test_hairpin_survives_the_overlay_keeping_pod_to_pod_sources(net, proxy):
    """The overlay's postrouting chain runs before ours and keeps pod-to-pod sources (an identity SNAT
    binding) unless the proxy's mark says otherwise: hairpin must be marked, not only masqueraded."""
    from nodeos.network.overlay.masquerade import TABLE, masquerade_rules

    await program(proxy, service("web", "pod1"))
    rules = masquerade_rules(ipaddress.ip_network("10.244.0.0/16"), ipaddress.ip_address("10.244.1.0"), "vx")
    subprocess.run([*net.nft(), "-f", "-"], input=rules, text=True, check=True)
    try:
        assert await net.connect("pod1", "10.96.0.10", 80, count=2) == ["pod1 10.244.1.1"] * 2
    finally:
        sh(*net.nft(), "delete", "table", "ip", TABLE)


async def test_ensure_hairpin_turns_hairpin_mode_on_for_the_pod_bridge_ports(net, proxy):
    await program(proxy, service("web", "pod1"))
    sh("ip", "-n", net.node, "link", "set", "v0", "type", "bridge_slave", "hairpin", "off")  # netavark's way
    try:
        assert await net.connect("pod1", "10.96.0.10", 80, timeout=0.5) == ["error TimeoutError"]
    finally:
        assert await ensure_hairpin(BRIDGE, ("ip", "-n", net.node)) == ["v0"]
    assert await net.connect("pod1", "10.96.0.10", 80) == ["pod1 10.244.1.1"]
    assert await ensure_hairpin(BRIDGE, ("ip", "-n", net.node)) == []
    assert await ensure_hairpin("nodeos-none", ("ip", "-n", net.node)) == []


async def test_hairpin_entry_shared_by_two_services_survives_one_of_them(net, proxy):
    web, other = service("web", "pod1"), service("other", "pod1", cluster_ip="10.96.0.12")
    await program(proxy, web, other)
    await program(proxy, web, full=False)  # "other" removed: pod1's hairpin entry is still web's
    assert await net.connect("pod1", "10.96.0.10", 80) == ["pod1 10.244.1.1"]
    assert await net.connect("pod1", "10.96.0.12", 80, timeout=0.5) != ["pod1 10.244.1.1"]


async def test_one_service_change_rewrites_only_that_service(net, proxy):
    await program(proxy, service("web", "pod1", "pod2"), service("db", "pod3", cluster_ip="10.96.0.11"))
    db_chain = nftrules.service_chain(service("db", "pod3", cluster_ip="10.96.0.11"))
    handle_before = sh(*net.nft(), "-a", "list", "chain", "ip", "nodeos", db_chain).stdout
    await program(proxy, service("web", "pod1"), service("db", "pod3", cluster_ip="10.96.0.11"), full=False)
    assert "default/web/" in proxy.last_script and "default/db/" not in proxy.last_script
    assert "service-ips" not in proxy.last_script and "nat-prerouting" not in proxy.last_script
    assert sh(*net.nft(), "-a", "list", "chain", "ip", "nodeos", db_chain).stdout == handle_before
    assert backends(await net.connect("client", "10.96.0.11", 80, count=5)) == {"pod3"}


async def test_full_resync_repairs_drift(net, proxy):
    web = service("web", "pod1", "pod2")
    await program(proxy, web)
    # by hand: the dispatch entry deleted, a stray chain added, a base chain emptied
    sh(*net.nft(), "delete", "element", "ip", "nodeos", "service-ips",
       f"{{ 10.96.0.10 . tcp . 80 : goto {nftrules.service_chain(web)} }}")
    sh(*net.nft(), "add", "chain", "ip", "nodeos", "service-STRAY-x")
    sh(*net.nft(), "flush", "chain", "ip", "nodeos", "masquerading")
    assert set(await net.connect("client", "10.96.0.10", 80, timeout=0.5)) <= {"error TimeoutError", "refused"}
    await program(proxy, web)  # what the periodic resync does
    assert backends(await net.connect("client", "10.96.0.10", 80, count=20)) == {"pod1", "pod2"}
    assert "service-STRAY-x" not in sh(*net.nft(), "list", "table", "ip", "nodeos").stdout


async def test_an_update_on_a_drifted_table_falls_back_to_a_full_sync(net, proxy):
    web = service("web", "pod1", "pod2")
    await program(proxy, web)
    sh(*net.nft(), "delete", "element", "ip", "nodeos", "service-ips",
       f"{{ 10.96.0.10 . tcp . 80 : goto {nftrules.service_chain(web)} }}")
    await program(proxy, service("web", cluster_ip="10.96.0.10"), full=False)  # must delete that element: fails
    assert proxy.last_script.startswith("add table ip nodeos")  # the full sync that followed
    assert await net.connect("client", "10.96.0.10", 80) == ["refused"]


SERVICES = by_plural("", "v1", "services")
ENDPOINTS = by_plural("", "v1", "endpoints")


async def test_the_component_follows_services_and_endpoints(net, api):
    sh(*net.nft(), "delete", "table", *nftrules.TABLE.split(), check=False)
    config = parse('[node]\nname = "n1"\nrole = "worker"\n[api]\nserver = "http://127.0.0.1:1"\n', "test")
    await api.create(SERVICES, {"metadata": {"name": "web", "namespace": "default"},
                                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    created = await api.get(SERVICES, "web", "default")
    cluster_ip = created["spec"]["clusterIP"]

    def endpoints(*pods):
        return {"metadata": {"name": "web", "namespace": "default"},
                "subsets": [{"addresses": [{"ip": PODS[p], "nodeName": "n1"} for p in pods],
                             "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]}

    await api.create(ENDPOINTS, endpoints("pod1", "pod2"))
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: run_nftables_proxy(
            config, api, task_status=task_status, nft=net.nft(), ip=("ip", "-n", net.node)))
        assert backends(await net.connect("client", cluster_ip, 80, count=20)) == {"pod1", "pod2"}
        await api.update(ENDPOINTS, endpoints("pod3"))

        async def only_pod3():
            return backends(await net.connect("client", cluster_ip, 80, count=5)) == {"pod3"}

        await until(only_pod3, timeout=10)
        await api.delete(SERVICES, "web", "default")

        async def refused():
            return await net.connect("client", cluster_ip, 80, timeout=0.5) != ["pod3 " + CLIENT_IP]

        await until(refused, timeout=10)
        nursery.cancel_scope.cancel()
