"""The userspace Service proxy, for real: kernel redirects, relays, endpoints in network namespaces.

The test builds a small node in namespaces of its own::

    pod (10.244.1.100) ─┐
    ep1..ep3 (.11-.13) ─┴─ br0 10.244.1.1 [node] up0 192.168.77.1 ── 192.168.77.2 [outside]

and runs the real component (``run_proxy`` with ``mode = "userspace"``) in
a subprocess inside ``node`` (``ip netns exec``), against an API server in
this test's trio run, reached through a unix socket forwarded to it (unix
sockets do not belong to a network namespace). The endpoints' servers and
the clients are trio tasks of this process on sockets made inside the
namespaces (a socket stays in the namespace it was created in, whichever
thread then uses it).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import socket
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio

from nodeos.api.kinds import by_plural
from nodeos.network.proxy.relay import relay

SERVICES = by_plural("", "v1", "services")
ENDPOINTS = by_plural("", "v1", "endpoints")
NODE = "node-a"
NODE_IP, OUTSIDE_IP = "192.168.77.1", "192.168.77.2"
POD_IP = "10.244.1.100"
ENDPOINT_IPS = {"ep1": "10.244.1.11", "ep2": "10.244.1.12", "ep3": "10.244.1.13"}
TCP_PORT, UDP_PORT = 8080, 5353
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")


# --- namespaces -----------------------------------------------------------------------------------------------

def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a thread of its own that entered ``netns`` (the thread ends with it)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {netns}")
            finally:
                os.close(fd)
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the caller
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def socket_in(netns: str, kind: socket.SocketKind) -> trio.socket.SocketType:
    return trio.socket.from_stdlib_socket(in_netns(netns, lambda: socket.socket(socket.AF_INET, kind)))


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Topology:
    """The namespaces of one test; names are unique (other tests run at the same time)."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.ns = {role: f"nodeos-n3-{tag}-{role}" for role in ("node", "pod", "outside", *ENDPOINT_IPS)}
        self.node, self.pod, self.outside = self.ns["node"], self.ns["pod"], self.ns["outside"]

    def build(self) -> None:
        for netns in self.ns.values():
            ip("netns", "add", netns)
            ip("-n", netns, "link", "set", "lo", "up")
        node = self.node
        subprocess.run(["ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
        ip("-n", node, "link", "add", "br0", "type", "bridge")
        ip("-n", node, "addr", "add", "10.244.1.1/24", "dev", "br0")
        ip("-n", node, "link", "set", "br0", "up")
        for i, (role, address) in enumerate([("pod", POD_IP), *ENDPOINT_IPS.items()]):
            peer = f"veth{i}"
            ip("-n", node, "link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", self.ns[role])
            ip("-n", node, "link", "set", peer, "master", "br0", "up")
            ip("-n", self.ns[role], "addr", "add", f"{address}/24", "dev", "eth0")
            ip("-n", self.ns[role], "link", "set", "eth0", "up")
            ip("-n", self.ns[role], "route", "add", "default", "via", "10.244.1.1")
        ip("-n", node, "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", self.outside)
        ip("-n", node, "addr", "add", f"{NODE_IP}/24", "dev", "up0")
        ip("-n", node, "link", "set", "up0", "up")
        ip("-n", self.outside, "addr", "add", f"{OUTSIDE_IP}/24", "dev", "eth0")
        ip("-n", self.outside, "link", "set", "eth0", "up")
        ip("-n", node, "route", "add", "default", "via", OUTSIDE_IP)  # the node's way to the cluster IPs

    def remove(self) -> None:
        for netns in self.ns.values():
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)


# --- servers and clients --------------------------------------------------------------------------------------

async def serve_tcp(netns: str, name: str, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Read a request to its EOF (a half-close), answer ``name:request``, close."""
    sock = socket_in(netns, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    await sock.bind(("0.0.0.0", TCP_PORT))
    sock.listen()

    async def answer(stream: trio.SocketStream) -> None:
        async with stream:
            request = b""
            while data := await stream.receive_some():
                request += data
            await stream.send_all(name.encode() + b":" + request)

    await trio.serve_listeners(answer, [trio.SocketListener(sock)], task_status=task_status)


async def serve_udp(netns: str, name: str, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    with socket_in(netns, socket.SOCK_DGRAM) as sock:
        await sock.bind(("0.0.0.0", UDP_PORT))
        task_status.started()
        while True:
            data, peer = await sock.recvfrom(65535)
            await sock.sendto(name.encode() + b":" + data, peer)


async def tcp_request(netns: str, address: str, port: int, request: bytes = b"hi") -> str:
    """Send ``request``, half-close, read the answer to EOF; the endpoint's name."""
    with trio.fail_after(5):
        sock = socket_in(netns, socket.SOCK_STREAM)
        try:
            await sock.connect((address, port))
        except BaseException:
            sock.close()
            raise
        async with trio.SocketStream(sock) as stream:
            await stream.send_all(request)
            await stream.send_eof()
            answer = b""
            while data := await stream.receive_some():
                answer += data
    name, _, echoed = answer.decode().partition(":")
    assert echoed == request.decode()
    return name


async def udp_request(sock: trio.socket.SocketType, address: str, port: int, request: bytes = b"ping", *,
                      timeout: float = 5) -> str:
    with trio.fail_after(timeout):
        await sock.sendto(request, (address, port))
        data, peer = await sock.recvfrom(65535)
    assert peer == (address, port)  # the answer comes from the Service's address: the redirect undone
    name, _, echoed = data.decode().partition(":")
    assert echoed == request.decode()
    return name


# --- the proxy in the node's namespace ------------------------------------------------------------------------

_RUN_PROXY = """
import logging, sys, httpx, trio
logging.basicConfig(level=logging.INFO)
from nodeos.client import ApiClient, Connection
from nodeos.config import default_config
from nodeos.network.proxy import run_proxy

async def main():
    config = default_config(node={"name": sys.argv[2]}, proxy={"mode": "userspace"})
    transport = httpx.AsyncHTTPTransport(uds=sys.argv[1])
    async with ApiClient(Connection(server="http://api"), transport=transport) as api:
        async with trio.open_nursery() as nursery:
            await nursery.start(run_proxy, config, api)
            print("started", flush=True)

trio.run(main)
"""


@contextlib.asynccontextmanager
async def forward_unix(path: Path, port: int) -> AsyncIterator[None]:
    """Serve ``path``, relaying each connection to 127.0.0.1:``port`` (this namespace's API server)."""
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    await sock.bind(str(path))
    sock.listen()

    async def forward(client: trio.SocketStream) -> None:
        await relay(client, await trio.open_tcp_stream("127.0.0.1", port))

    async with trio.open_nursery() as nursery:
        await nursery.start(trio.serve_listeners, forward, [trio.SocketListener(sock)])
        yield
        nursery.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def running_proxy(topology: Topology, api, tmp_path: Path) -> AsyncIterator[None]:
    port = int(api.server.rsplit(":", 1)[1])
    uds = tmp_path / "api.sock"
    log = tmp_path / "proxy.log"
    async with forward_unix(uds, port):
        with open(log, "wb") as stderr:
            process = await trio.lowlevel.open_process(
                ["ip", "netns", "exec", topology.node, sys.executable, "-c", _RUN_PROXY, str(uds), NODE],
                stdout=subprocess.PIPE, stderr=stderr, cwd=Path(__file__).parents[2])
        try:
            with trio.fail_after(20):
                assert (await process.stdout.receive_some()).startswith(b"started"), log.read_text()
            yield
        except BaseException:
            print(log.read_text(), file=sys.stderr)
            raise
        finally:
            process.terminate()
            with trio.move_on_after(5):
                await process.wait()
            process.kill()


@pytest.fixture
async def node(api, tmp_path) -> AsyncIterator[Topology]:
    """The namespaces, the endpoints' TCP and UDP servers, and the proxy running in ``node``."""
    topology = Topology()
    try:
        await trio.to_thread.run_sync(topology.build)
        async with trio.open_nursery() as nursery:
            for name in ENDPOINT_IPS:
                await nursery.start(serve_tcp, topology.ns[name], name)
                await nursery.start(serve_udp, topology.ns[name], name)
            async with running_proxy(topology, api, tmp_path):
                yield topology
            nursery.cancel_scope.cancel()
    finally:
        await trio.to_thread.run_sync(topology.remove)


async def create_service(api, name: str, *, node_port: int | None = None, affinity: bool = False,
                         local: bool = False, protocol: str = "TCP", port: int = 80,
                         cluster_ip: str | None = None) -> str:
    """A Service (NodePort when ``node_port``); its cluster IP."""
    target = TCP_PORT if protocol == "TCP" else UDP_PORT
    spec: dict[str, Any] = {"ports": [{"port": port, "targetPort": target, "protocol": protocol}]}
    if node_port:
        spec |= {"type": "NodePort"}
        spec["ports"][0]["nodePort"] = node_port
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    if affinity:
        spec["sessionAffinity"] = "ClientIP"
    if local:
        spec["externalTrafficPolicy"] = "Local"
    created = await api.create(SERVICES, {"metadata": {"name": name}, "spec": spec}, namespace="default")
    return created["spec"]["clusterIP"]


def endpoints(name: str, names: list[str], *, protocol: str = "TCP", nodes: dict[str, str] | None = None) -> dict:
    target = TCP_PORT if protocol == "TCP" else UDP_PORT
    addresses = [{"ip": ENDPOINT_IPS[n], "nodeName": (nodes or {}).get(n, NODE)} for n in names]
    subsets = [{"addresses": addresses, "ports": [{"port": target, "protocol": protocol}]}] if names else []
    return {"metadata": {"name": name, "namespace": "default"}, "subsets": subsets}


async def set_endpoints(api, name: str, names: list[str], **kwargs: Any) -> None:
    try:
        current = await api.get(ENDPOINTS, name, namespace="default")
    except Exception:
        await api.create(ENDPOINTS, endpoints(name, names, **kwargs), namespace="default")
        return
    await api.update(ENDPOINTS, endpoints(name, names, **kwargs) | {"metadata": current["metadata"]})


async def eventually(check: Callable[[], Any], timeout: float = 10) -> Any:
    """Await ``check()`` until it returns something truthy without raising."""
    with trio.fail_after(timeout):
        while True:
            with contextlib.suppress(OSError, AssertionError, trio.TooSlowError, trio.BrokenResourceError):
                if result := await check():
                    return result
            await trio.sleep(0.05)


async def table_has(topology: Topology, *fragments: str) -> None:
    """Wait until the proxy's table (in the node) holds each fragment, e.g. ``10.96.0.10 . tcp . 80 :``."""

    async def check() -> bool:
        listed = await trio.run_process(["ip", "netns", "exec", topology.node, "nft", "list", "table", "ip",
                                         "nodeos-userspace"], capture_stdout=True, capture_stderr=True)
        text = " ".join(listed.stdout.decode().split())
        return all(fragment in text for fragment in fragments)

    await eventually(check)


async def listener_port(topology: Topology, destination: str) -> int:
    """The listener port the proxy's cluster map sends ``destination`` (``ip . proto . port``) to."""
    listed = await trio.run_process(["ip", "netns", "exec", topology.node, "nft", "list", "map", "ip",
                                     "nodeos-userspace", "cluster"], capture_stdout=True)
    found = re.search(re.escape(destination) + r" : (\d+)", listed.stdout.decode())
    assert found, listed.stdout.decode()
    return int(found.group(1))


# --- the tests ------------------------------------------------------------------------------------------------

async def test_cluster_ip_spreads_round_robin_and_follows_endpoints(api, node):
    cluster_ip = await create_service(api, "web", node_port=30080)
    await set_endpoints(api, "web", ["ep1", "ep2", "ep3"])
    await table_has(node, f"{cluster_ip} . tcp . 80 :", "tcp . 30080 :")
    assert await tcp_request(node.pod, cluster_ip, 80) == "ep1"  # the sorted endpoints, in turn
    names = [await tcp_request(node.pod, cluster_ip, 80) for _ in range(9)]
    assert names == ["ep2", "ep3", "ep1"] * 3
    # The node's own processes (nat output) and a client outside through the node port get there too.
    assert await tcp_request(node.node, cluster_ip, 80) in ENDPOINT_IPS
    assert await tcp_request(node.outside, NODE_IP, 30080) in ENDPOINT_IPS
    assert await tcp_request(node.node, "127.0.0.1", 30080) in ENDPOINT_IPS
    # The listener itself is reached only through the redirect.
    listener = await listener_port(node, f"{cluster_ip} . tcp . 80")
    assert await _refused(node.outside, NODE_IP, listener)
    assert await _refused(node.pod, "10.244.1.1", listener)

    await set_endpoints(api, "web", ["ep1", "ep3"])

    async def without_ep2():
        return "ep2" not in [await tcp_request(node.pod, cluster_ip, 80) for _ in range(4)]

    await eventually(without_ep2)
    names = [await tcp_request(node.pod, cluster_ip, 80) for _ in range(20)]
    assert Counter(names) == {"ep1": 10, "ep3": 10}

    # A connection open while its endpoint goes away finishes; new ones are refused at once.
    sock = socket_in(node.pod, socket.SOCK_STREAM)
    await sock.connect((cluster_ip, 80))
    async with trio.SocketStream(sock) as open_connection:
        await open_connection.send_all(b"half")
        await set_endpoints(api, "web", [])
        await table_has(node, "cluster-reject", f"elements = {{ {cluster_ip} . tcp . 80 }}")
        for address, port, netns in [(cluster_ip, 80, node.pod), (NODE_IP, 30080, node.outside),
                                     (cluster_ip, 80, node.node)]:
            with trio.fail_after(1):  # refused at once, not a hang
                assert await _refused(netns, address, port)
        await open_connection.send_all(b" done")
        await open_connection.send_eof()
        with trio.fail_after(5):
            answer = b""
            while data := await open_connection.receive_some():
                answer += data
        assert answer in {b"ep1:half done", b"ep3:half done"}


async def test_udp_sessions_go_round_robin_and_answer_from_the_service_address(api, node):
    cluster_ip = "10.96.200.53"
    first = socket_in(node.pod, socket.SOCK_DGRAM)
    second = socket_in(node.pod, socket.SOCK_DGRAM)
    local = socket_in(node.node, socket.SOCK_DGRAM)  # the node's own: redirected to 127.0.0.1
    with first, second, local:
        # Sent before the Service exists: forwarded (and lost), and conntrack remembers that for the
        # flow's next datagrams, unless the proxy makes it forget.
        await first.sendto(b"early", (cluster_ip, 53))
        await create_service(api, "dns", protocol="UDP", port=53, cluster_ip=cluster_ip)
        await set_endpoints(api, "dns", ["ep1", "ep2"], protocol="UDP")
        # The client retries, as DNS clients do; the flow is forgotten just after the table is written.
        a = await eventually(lambda: udp_request(first, cluster_ip, 53, timeout=0.5))
        assert [await udp_request(first, cluster_ip, 53) for _ in range(3)] == [a] * 3  # one session
        b = await udp_request(second, cluster_ip, 53)
        assert {a, b} == {"ep1", "ep2"}  # a new client, the next endpoint
        assert await udp_request(local, cluster_ip, 53) in ("ep1", "ep2")

        await set_endpoints(api, "dns", ["ep3"], protocol="UDP")  # sessions to gone endpoints end
        await eventually(lambda: _is(udp_request(first, cluster_ip, 53, timeout=0.5), "ep3"))
        assert await udp_request(second, cluster_ip, 53) == "ep3"


async def test_session_affinity_and_a_refusing_endpoint_skipped(api, node):
    sticky_ip = await create_service(api, "sticky", affinity=True)
    await set_endpoints(api, "sticky", ["ep1", "ep2", "ep3"])
    await table_has(node, f"{sticky_ip} . tcp . 80 :")
    first = await tcp_request(node.pod, sticky_ip, 80)
    assert [await tcp_request(node.pod, sticky_ip, 80) for _ in range(6)] == [first] * 6
    # An endpoint that refuses (nothing listens on that port there): the next one is tried.
    cluster_ip = await create_service(api, "half", port=81)
    await api.create(ENDPOINTS, {"metadata": {"name": "half"}, "subsets": [
        {"addresses": [{"ip": ENDPOINT_IPS["ep1"]}], "ports": [{"port": 9, "protocol": "TCP"}]},
        {"addresses": [{"ip": ENDPOINT_IPS["ep2"]}], "ports": [{"port": TCP_PORT, "protocol": "TCP"}]}]},
        namespace="default")
    await table_has(node, f"{cluster_ip} . tcp . 81 :")
    assert [await tcp_request(node.pod, cluster_ip, 81) for _ in range(4)] == ["ep2"] * 4
    # Hairpin: the endpoint itself through its Service (the relay connects from the node: nothing special).
    assert await tcp_request(node.ns["ep2"], cluster_ip, 81) == "ep2"


async def test_local_traffic_policy_and_drift_repair(api, node):
    cluster_ip = await create_service(api, "local", node_port=30081, local=True)
    await set_endpoints(api, "local", ["ep1", "ep2"], nodes={"ep2": "node-b"})
    # The node port goes only to this node's endpoint; the cluster IP to both.
    await table_has(node, f"{cluster_ip} . tcp . 80 :", "tcp . 30081 :")
    assert {await tcp_request(node.outside, NODE_IP, 30081) for _ in range(4)} == {"ep1"}
    assert {await tcp_request(node.pod, cluster_ip, 80) for _ in range(4)} == {"ep1", "ep2"}
    await set_endpoints(api, "local", ["ep2"], nodes={"ep2": "node-b"})
    await table_has(node, "nodeport-reject", "elements = { tcp . 30081 }")
    assert await _refused(node.outside, NODE_IP, 30081)
    assert await tcp_request(node.pod, cluster_ip, 80) == "ep2"

    # A map element deleted by hand is back after the next sync (here: another Service's change).
    nft = ["ip", "netns", "exec", node.node, "nft"]
    await trio.run_process([*nft, "flush", "map", "ip", "nodeos-userspace", "cluster"])
    with pytest.raises((OSError, trio.TooSlowError)):
        with trio.fail_after(1):
            await tcp_request(node.node, cluster_ip, 80)
    await create_service(api, "other")
    await table_has(node, f"{cluster_ip} . tcp . 80 :")
    assert await tcp_request(node.pod, cluster_ip, 80) == "ep2"


async def _is(awaitable, expected: str) -> bool:
    return await awaitable == expected


async def _refused(netns: str, address: str, port: int) -> bool:
    try:
        await tcp_request(netns, address, port)
    except ConnectionRefusedError:
        return True
    return False
