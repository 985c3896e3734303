"""The VXLAN overlay on a real kernel: three "hosts" (network namespaces) on a bridged underlay, each with a
"pod" namespace behind a bridge on its podCIDR, and ``run_overlay`` for each host in this process against a real
API server (``netns=`` makes each program its own namespace).

Layout (all in namespaces the test makes and removes)::

    <id>-u:  br0 192.168.50.1/24 (the underlay; also "outside the cluster")
    <id>-a:  ul0 192.168.50.2/24 | nodeos0 10.244.1.1/24 | nodeos.1 (the overlay)   <id>-pa: eth0 10.244.1.2
    <id>-b:  ul0 192.168.50.3/24 | nodeos0 10.244.2.1/24 | ...                       <id>-pb: eth0 10.244.2.2
    <id>-c:  ul0 192.168.50.4/24 | nodeos0 10.244.3.1/24 | ...                       <id>-pc: eth0 10.244.3.2

Each host also gets netavark's masquerade rule for its pod subnet (what Podman installs), so the test shows the
overlay's own table keeps pod-to-pod sources intact despite it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import trio

from nodeos.api.kinds import by_plural
from nodeos.config import Config, default_config
from nodeos.network.overlay import VTEP_MAC_ANNOTATION, run_overlay

NODES = by_plural("", "v1", "nodes")
PORT = 7000
RESYNC = 1.0
DEVICE = "nodeos.1"
# A TCP server that answers each connection with the address it came from, then closes it.
ECHO_SOURCE = f"""
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {PORT}))
s.listen(16)
while True:
    c, peer = s.accept()
    c.sendall(peer[0].encode())
    c.close()
"""
CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as c:
    print(c.recv(100).decode())
"""


@dataclass
class Host:
    name: str  # the Node's name
    ns: str  # the host's namespace
    pod_ns: str
    address: str  # InternalIP on the underlay
    pod_cidr: str
    pod_ip: str

    def config(self) -> Config:
        return default_config(node={"name": self.name}, agent={"address": self.address})


def sh(*args: str, check: bool = True) -> str:
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=20).stdout


@pytest.fixture
def hosts() -> Iterator[list[Host]]:
    prefix = f"nodeos-n1-{uuid.uuid4().hex[:6]}"
    underlay = f"{prefix}-u"
    made: list[str] = []
    servers: list[subprocess.Popen] = []
    try:
        sh("ip", "netns", "add", underlay)
        made.append(underlay)
        sh("ip", "-n", underlay, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", underlay, "addr", "add", "192.168.50.1/24", "dev", "br0")
        sh("ip", "-n", underlay, "link", "set", "br0", "up")
        result = []
        for i, name in enumerate("abc"):
            host = Host(name=name, ns=f"{prefix}-{name}", pod_ns=f"{prefix}-p{name}", address=f"192.168.50.{i + 2}",
                        pod_cidr=f"10.244.{i + 1}.0/24", pod_ip=f"10.244.{i + 1}.2")
            for ns in (host.ns, host.pod_ns):
                sh("ip", "netns", "add", ns)
                made.append(ns)
            _wire_host(host, underlay, i)
            servers.append(subprocess.Popen(["ip", "netns", "exec", host.pod_ns, sys.executable, "-c", ECHO_SOURCE]))
            result.append(host)
        servers.append(subprocess.Popen(["ip", "netns", "exec", underlay, sys.executable, "-c", ECHO_SOURCE]))
        yield result
    finally:
        for server in servers:
            server.kill()
            server.wait()
        for ns in made:
            sh("ip", "netns", "del", ns, check=False)


def _wire_host(host: Host, underlay: str, i: int) -> None:
    ns, pod = host.ns, host.pod_ns
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", ns, "link", "add", "ul0", "type", "veth", "peer", "name", f"ul-{host.name}", "netns", underlay)
    sh("ip", "-n", underlay, "link", "set", f"ul-{host.name}", "master", "br0", "up")
    sh("ip", "-n", ns, "addr", "add", f"{host.address}/24", "dev", "ul0")
    sh("ip", "-n", ns, "link", "set", "ul0", "up")
    gateway = f"10.244.{i + 1}.1"
    sh("ip", "-n", ns, "link", "add", "nodeos0", "type", "bridge")
    sh("ip", "-n", ns, "addr", "add", f"{gateway}/24", "dev", "nodeos0")
    sh("ip", "-n", ns, "link", "set", "nodeos0", "up")
    sh("ip", "-n", ns, "link", "add", "vp0", "mtu", "1450", "type", "veth", "peer", "name", "eth0", "netns", pod)
    sh("ip", "-n", ns, "link", "set", "vp0", "master", "nodeos0", "up")
    sh("ip", "-n", pod, "addr", "add", f"{host.pod_ip}/24", "dev", "eth0")
    sh("ip", "-n", pod, "link", "set", "eth0", "up")
    sh("ip", "-n", pod, "link", "set", "lo", "up")
    sh("ip", "-n", pod, "route", "add", "default", "via", gateway)
    # netavark's rules for the node's pod subnet, as it writes them (iptables-nft: ip nat POSTROUTING, srcnat).
    for rule in (["-N", "NETAVARK-1"], ["-A", "NETAVARK-1", "-d", host.pod_cidr, "-j", "ACCEPT"],
                 ["-A", "NETAVARK-1", "!", "-d", "224.0.0.0/4", "-j", "MASQUERADE"],
                 ["-A", "POSTROUTING", "-s", host.pod_cidr, "-j", "NETAVARK-1"]):
        sh("ip", "netns", "exec", ns, "iptables", "-t", "nat", *rule)


# --- helpers ---------------------------------------------------------------------------------------------------

async def register(api: Any, host: Host) -> None:
    await api.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": host.name},
                             "spec": {"podCIDR": host.pod_cidr, "podCIDRs": [host.pod_cidr]}})
    await api.patch(NODES, host.name, {"status": {"addresses": [{"type": "InternalIP", "address": host.address}]}},
                    "merge", subresource="status")


async def start_overlay(nursery: trio.Nursery, api: Any, host: Host) -> trio.CancelScope:
    """Run the host's overlay in ``nursery`` until the returned scope is cancelled; return once started."""
    scope = trio.CancelScope()

    async def run(task_status: trio.TaskStatus[None]) -> None:
        with scope:
            await run_overlay(host.config(), api, netns=host.ns, resync_seconds=RESYNC, task_status=task_status)

    await nursery.start(run)
    return scope


async def connect(host: Host, address: str, *, from_host: bool = False) -> str:
    """Connect from the host's pod (or the host itself) to the echo server at ``address``; the source it saw."""
    ns = host.ns if from_host else host.pod_ns
    result = await trio.run_process(["ip", "netns", "exec", ns, sys.executable, "-c", CLIENT, address,
                                     str(PORT)], capture_stdout=True, capture_stderr=True, check=False)
    return result.stdout.decode().strip() if result.returncode == 0 else f"failed: {result.stderr.decode()[-200:]}"


async def eventually(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    with trio.move_on_after(timeout):
        while True:
            result = await check()
            if result:
                return result
            await trio.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what} (last: {await check()!r})")


def ip_json(*args: str) -> list[dict]:
    return json.loads(sh(*args) or "[]")


def entries(host: Host) -> dict[str, set]:
    """What the host's vxlan device has, read with ip(8) and bridge(8)."""
    routes = {(r["dst"], r.get("gateway")) for r in ip_json("ip", "-n", host.ns, "-j", "route", "show", "dev", DEVICE)
              if r.get("gateway")}
    fdb = {(f["mac"], f.get("dst")) for f in ip_json("bridge", "-n", host.ns, "-j", "fdb", "show", "dev", DEVICE)
           if f.get("dst")}
    neigh = {(n["dst"], n.get("lladdr")) for n in ip_json("ip", "-n", host.ns, "-j", "-4", "neigh", "show", "dev",
                                                          DEVICE) if "PERMANENT" in n.get("state", [])}
    return {"routes": routes, "fdb": fdb, "neigh": neigh}


def link(host: Host) -> dict:
    return ip_json("ip", "-n", host.ns, "-j", "-d", "link", "show", DEVICE)[0]


def expected(peers: list[Host], macs: dict[str, str]) -> dict[str, set]:
    return {"routes": {(p.pod_cidr, p.pod_cidr.split("/")[0]) for p in peers},
            "fdb": {(macs[p.name], p.address) for p in peers},
            "neigh": {(p.pod_cidr.split("/")[0], macs[p.name]) for p in peers}}


async def vtep_macs(api: Any, hosts: list[Host]) -> dict[str, str]:
    async def published() -> dict[str, str] | None:
        found = {h.name: ((await api.get(NODES, h.name))["metadata"].get("annotations") or {}).get(VTEP_MAC_ANNOTATION)
                 for h in hosts}
        return found if all(found.values()) else None

    return await eventually(published, "every node's VTEP MAC published")


async def converged(host: Host, want: dict[str, set]) -> None:
    async def check() -> bool:
        return await trio.to_thread.run_sync(entries, host) == want

    await eventually(check, f"host {host.name}'s entries {want}")


# --- tests -----------------------------------------------------------------------------------------------------

async def test_pods_reach_pods_on_other_hosts_with_their_own_address(api, hosts):
    a, b, c = hosts
    for host in hosts:
        await register(api, host)
    async with trio.open_nursery() as nursery:
        for host in hosts:
            await start_overlay(nursery, api, host)
        macs = await vtep_macs(api, hosts)
        for host in hosts:
            await converged(host, expected([p for p in hosts if p is not host], macs))
        # No address on the device: Podman would refuse a pod network on a podCIDR a host address is in.
        assert not any(e.get("addr_info") for e in ip_json("ip", "-n", a.ns, "-j", "-4", "addr", "show", DEVICE))
        device = await trio.to_thread.run_sync(link, a)
        assert device["address"] == macs["a"] and device["mtu"] == 1450  # the veth underlay's 1500 - 50
        vxlan = device["linkinfo"]["info_data"]
        assert (vxlan["id"], vxlan["port"], vxlan["local"], vxlan.get("learning")) == (1, 8472, a.address, False)

        assert await connect(a, b.pod_ip) == a.pod_ip  # across the overlay, the source kept
        assert await connect(b, c.pod_ip) == b.pod_ip
        assert await connect(c, a.pod_ip) == c.pod_ip
        assert await connect(a, "192.168.50.1") == a.address  # leaving the cluster: masqueraded
        assert await connect(a, b.pod_ip, from_host=True) == "10.244.1.0"  # the host into the overlay: its VTEP
        nursery.cancel_scope.cancel()

    # The control: without the overlay's table, netavark's rule hides the pod behind its host.
    sh("ip", "netns", "exec", a.ns, "nft", "delete", "table", "ip", "nodeos-overlay")
    assert await connect(a, b.pod_ip) in (a.address, "10.244.1.1")


async def test_entries_follow_nodes_are_repaired_and_survive_restarts(api, hosts):
    a, b, c = hosts
    for host in hosts:
        await register(api, host)
    async with trio.open_nursery() as nursery:
        scopes = {host.name: await start_overlay(nursery, api, host) for host in hosts}
        macs = await vtep_macs(api, hosts)
        await converged(a, expected([b, c], macs))

        # Deleted by hand: back within a resync.
        sh("ip", "-n", a.ns, "route", "del", b.pod_cidr)
        sh("bridge", "-n", a.ns, "fdb", "del", macs["c"], "dev", DEVICE, "dst", c.address)
        sh("ip", "-n", a.ns, "neigh", "del", "10.244.2.0", "dev", DEVICE)
        await converged(a, expected([b, c], macs))
        assert await connect(a, b.pod_ip) == a.pod_ip

        # A node gone: all of its entries go, on every other host.
        scopes["c"].cancel()
        await api.delete(NODES, "c")
        await converged(a, expected([b], macs))
        await converged(b, expected([a], macs))

        # A restart adopts the device (same MAC, same index) and removes what belongs to nodes that vanished
        # meanwhile.
        scopes["a"].cancel()
        before = await trio.to_thread.run_sync(link, a)
        await api.delete(NODES, "b")
        scopes["a"] = await start_overlay(nursery, api, a)  # started: already programmed
        after = await trio.to_thread.run_sync(link, a)
        assert (after["ifindex"], after["address"]) == (before["ifindex"], before["address"])
        assert await trio.to_thread.run_sync(entries, a) == expected([], macs)
        assert (await api.get(NODES, "a"))["metadata"]["annotations"][VTEP_MAC_ANNOTATION] == macs["a"]
        nursery.cancel_scope.cancel()


async def test_the_pod_network_gets_the_overlays_mtu(podman_socket):
    """On real Podman: the network is created with the MTU, kept when it matches, recreated when it does not."""
    import random

    from nodeos.agent.podman.client import LibpodClient, PodmanError
    from nodeos.agent.podman.network import ensure_network

    name = f"nodeos-n1-{uuid.uuid4().hex[:8]}"
    bridge = f"n1{name[-8:]}"
    async with LibpodClient(podman_socket, timeout=30) as client:
        try:
            for _ in range(10):  # other tests may hold some 10.244.x subnets
                cidr = f"10.244.{random.randint(128, 254)}.0/24"
                try:
                    await ensure_network(client, cidr, name=name, bridge=bridge, mtu=1400)
                    break
                except PodmanError as exc:
                    if "already used" not in exc.message:
                        raise
            else:
                pytest.fail("no free 10.244.x subnet")
            created = await client.network_inspect(name)
            assert created["options"]["mtu"] == "1400"
            await ensure_network(client, cidr, name=name, bridge=bridge, mtu=1400)
            await ensure_network(client, cidr, name=name, bridge=bridge)  # no MTU wanted: whatever it has will do
            assert (await client.network_inspect(name))["id"] == created["id"]
            await ensure_network(client, cidr, name=name, bridge=bridge, mtu=1450)
            assert (await client.network_inspect(name))["options"]["mtu"] == "1450"
        finally:
            await client.network_remove(name)
