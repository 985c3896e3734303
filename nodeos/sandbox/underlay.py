"""The underlay: a Linux bridge in the root namespace joining one network namespace per host.

Each host gets a veth pair, its end named ``eth0`` inside the namespace
with the host's address on the sandbox's /24, and a default route into a
veth whose other end stays down (an uplink that goes nowhere); the root namespace keeps the
first address on the bridge, which is how "outside the cluster" (the root
namespace) reaches NodePorts and the master's API. Inside each namespace
loopback is up and IPv4 forwarding on, as on any Kubernetes node.

The /24 is picked from 172.31.0.0/16, starting at a place derived from the
sandbox's tag and skipping any that overlaps an address or route of the
root namespace (other sandboxes' bridges included). A lock file makes the
choice and the bridge's creation one step between concurrent ``up``\\ s.

Removal deletes the namespaces (their links, routes and nftables tables
die with them), then the veths' root ends and the bridge (its address with
it). Each step tolerates "already gone", so ``down`` can be repeated.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nodeos.sandbox.layout import Host, Sandbox
from nodeos.sandbox.system import SandboxError, run

__all__ = ["create_bridge", "create_host", "free_subnet", "netns_exists", "remove_underlay", "subnet_lock"]

POOL = ipaddress.ip_network("172.31.0.0/16")
LOCK_FILE = Path("/run/lock/nodeos-sandbox.lock")


@contextmanager
def subnet_lock() -> Iterator[None]:
    """Held while one ``up`` picks its /24 and puts its address on its bridge."""
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def free_subnet(tag: str) -> str:
    """A /24 of POOL that no address or route of the root namespace overlaps."""
    used = _root_networks()
    subnets = list(POOL.subnets(new_prefix=24))
    start = int(tag, 16) % len(subnets)
    for subnet in subnets[start:] + subnets[:start]:
        if not any(subnet.overlaps(net) for net in used):
            return str(subnet)
    raise SandboxError(f"no free /24 left in {POOL} for the sandbox's underlay")


def _root_networks() -> list[ipaddress.IPv4Network]:
    nets = []
    for entry in json.loads(run(["ip", "-j", "-4", "addr"]).stdout or "[]"):
        for addr in entry.get("addr_info", []):
            nets.append(ipaddress.ip_network(f"{addr['local']}/{addr['prefixlen']}", strict=False))
    for route in json.loads(run(["ip", "-j", "-4", "route"]).stdout or "[]"):
        if route.get("dst") not in (None, "default"):
            nets.append(ipaddress.ip_network(route["dst"] if "/" in route["dst"] else f"{route['dst']}/32",
                                             strict=False))
    return nets


def create_bridge(sandbox: Sandbox) -> None:
    prefix = ipaddress.ip_network(sandbox.subnet).prefixlen
    run(["ip", "link", "add", sandbox.bridge, "type", "bridge"])
    run(["ip", "addr", "add", f"{sandbox.gateway}/{prefix}", "dev", sandbox.bridge])
    run(["ip", "link", "set", sandbox.bridge, "up"])


def create_host(sandbox: Sandbox, host: Host) -> None:
    """The host's namespace, wired to the bridge, with loopback up and forwarding on."""
    prefix = ipaddress.ip_network(sandbox.subnet).prefixlen
    ns = ["ip", "-n", host.netns]
    run(["ip", "netns", "add", host.netns])
    run(["ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns])
    run(["ip", "link", "set", host.veth, "master", sandbox.bridge, "up"])
    run([*ns, "link", "set", "lo", "up"])
    run([*ns, "addr", "add", f"{host.ip}/{prefix}", "dev", "eth0"])
    run([*ns, "link", "set", "eth0", "up"])
    # A default route, as a real host has (without one, traffic to a Service IP nothing answers fails
    # routing before the forward hook, with "network unreachable" instead of the proxy's reject), but
    # into an "uplink" that leads nowhere, a veth whose other end stays down (no dummy module on every
    # kernel): nothing from a sandbox host may leave the machine.
    run([*ns, "link", "add", "uplink", "type", "veth", "peer", "name", "uplink-end"])
    run([*ns, "link", "set", "uplink", "up"])
    run([*ns, "route", "add", "default", "dev", "uplink"])
    run(["ip", "netns", "exec", host.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])


def netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def remove_underlay(sandbox: Sandbox) -> None:
    """Delete every namespace and link of the sandbox that is still there (by name, prefix included)."""
    for netns in _names(["ip", "netns", "list"], f"nodeos-sb-{sandbox.tag}-"):
        run(["ip", "netns", "del", netns], check=False)
    links = _names(["ip", "-o", "link", "show"], f"nsb-{sandbox.tag}", field=1)
    for link in sorted(links, key=len, reverse=True):  # the veths, then the bridge
        run(["ip", "link", "del", link.split("@")[0].rstrip(":")], check=False)


def _names(command: list[str], prefix: str, field: int = 0) -> list[str]:
    names = []
    for line in run(command, check=False).stdout.splitlines():
        words = line.split()
        if len(words) > field and words[field].startswith(prefix):
            names.append(words[field])
    return names
