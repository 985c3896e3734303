"""Network throughput benchmark: the overlay against the underlay, a Service against the pod behind it.

    .venv/bin/python tests/bench/bench_network.py [--seconds 3] [--rounds 5]

Side by side in one run, TCP throughput with iperf3 (``apt-get install -y
iperf3``) over:

- ``underlay``     host -> host on the underlay (the hosts' bridge);
- ``hostgw``       (``--netns`` only) pod -> pod routed over the underlay without encapsulation
                   (flannel's host-gw), to split vxlan's cost into pod plumbing and VXLAN itself;
- ``vxlan``        pod -> pod across hosts over the VXLAN overlay;
- ``clusterip-nft`` pod -> ClusterIP -> the same remote pod, nftables proxy mode;
- ``clusterip-user`` the same in userspace proxy mode (every byte through the proxy);

and reports the ratios vxlan/underlay (target >= 0.8) and clusterip/vxlan
(pod -> pod direct; target >= 0.95 for nftables mode). Each ratio comes
from pairs of runs back to back (the order flipped every other round), and
the median over the rounds is reported, so that the load of a shared
machine, which swings single runs by 2x here, falls on both sides alike.

The hosts are network namespaces of the benchmark's own, joined by a bridge
in a "switch" namespace; each host has a pod bridge ``nodeos0`` with one
pod (a namespace on a veth, MTU = underlay - 50) and a VXLAN device wired
as nodeos' overlay wires it: flannel's design, static neighbour, FDB entry
and onlink route per peer, no learning (``ip`` commands here; the kernel's
data path is the same). The ClusterIP rules are the real proxy's: the
nftables mode's table from ``nodeos.network.proxy.nftrules``, and for the
userspace mode a process in the host namespace running nodeos'
``TcpProxy`` behind ``redirect.ruleset``. Pods are namespaces, not Podman
containers: the data path (veth, bridge, VXLAN, nftables) is what is
measured, and it is the same. Everything is removed at the end.

Prints a table, then one JSON line. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from nodeos.network.proxy import redirect
from nodeos.network.proxy.model import Endpoint, ServicePort
from nodeos.network.proxy.nftrules import TABLE, Context, full_script

UNDERLAY = "192.168.231.{}"
POD_NET = "10.244.{}.{}"
CLUSTER_IP = "10.96.0.10"
VNI, VXLAN_PORT, MTU = 1, 8472, 1500
IPERF_PORT = 5201
SCENARIOS = ("underlay", "hostgw", "vxlan", "clusterip-nft", "clusterip-user")

USERSPACE_PROXY = """
import sys, trio
from nodeos.network.proxy import redirect
from nodeos.network.proxy.balancer import Balancer
from nodeos.network.proxy.relay import TcpProxy

async def main(cluster_ip, port, endpoint):
    proxy = TcpProxy(Balancer([(endpoint, port)]))
    script = redirect.ruleset([redirect.Redirect("tcp", cluster_ip, port, None, proxy.port, None)])
    await redirect.apply(script)
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.run)
        print("ready", flush=True)

trio.run(main, sys.argv[1], int(sys.argv[2]), sys.argv[3])
"""


def sh(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, input=input, timeout=120, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done


class Lab:
    """Two hosts, a switch, one pod per host; names carry a random tag so runs never collide."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.tag = tag
        self.switch = f"nodeos-n6b-{tag}-sw"
        self.hosts = [f"nodeos-n6b-{tag}-h{i}" for i in (1, 2)]
        self.pods = [f"nodeos-n6b-{tag}-p{i}" for i in (1, 2)]

    def namespaces(self) -> list[str]:
        return [self.switch, *self.hosts, *self.pods]

    def ip(self, ns: str, *args: str) -> None:
        sh("ip", "-n", ns, *args)

    def run(self, ns: str, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
        return sh(*in_netns(ns), *args, **kwargs)

    def build(self) -> None:
        for ns in self.namespaces():
            sh("ip", "netns", "add", ns)
            self.ip(ns, "link", "set", "lo", "up")
        self.ip(self.switch, "link", "add", "br0", "type", "bridge")
        self.ip(self.switch, "link", "set", "br0", "up")
        for i, (host, pod) in enumerate(zip(self.hosts, self.pods, strict=True), start=1):
            self._underlay(i, host)
            self._pod(i, host, pod)
            self.run(host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        macs = [self._vxlan(i, host) for i, host in enumerate(self.hosts, start=1)]
        for i, host in enumerate(self.hosts, start=1):
            for j, mac in enumerate(macs, start=1):
                if j != i:
                    self._peer(host, j, mac)

    def _underlay(self, i: int, host: str) -> None:
        self.ip(self.switch, "link", "add", f"sw{i}", "type", "veth", "peer", "name", "eth0", "netns", host)
        self.ip(self.switch, "link", "set", f"sw{i}", "master", "br0", "up")
        self.ip(host, "addr", "add", UNDERLAY.format(i) + "/24", "dev", "eth0")
        self.ip(host, "link", "set", "eth0", "mtu", str(MTU), "up")

    def _pod(self, i: int, host: str, pod: str) -> None:
        mtu = str(MTU - 50)
        self.ip(host, "link", "add", "nodeos0", "type", "bridge")
        self.ip(host, "addr", "add", POD_NET.format(i, 1) + "/24", "dev", "nodeos0")
        self.ip(host, "link", "set", "nodeos0", "mtu", mtu, "up")
        self.ip(host, "link", "add", "veth-p", "mtu", mtu, "type", "veth", "peer", "name", "eth0", "netns", pod)
        self.ip(host, "link", "set", "veth-p", "master", "nodeos0", "up")
        self.ip(pod, "addr", "add", POD_NET.format(i, 2) + "/24", "dev", "eth0")
        self.ip(pod, "link", "set", "eth0", "mtu", mtu, "up")
        self.ip(pod, "route", "add", "default", "via", POD_NET.format(i, 1))

    def _vxlan(self, i: int, host: str) -> str:
        device = f"nodeos.{VNI}"
        self.ip(host, "link", "add", device, "type", "vxlan", "id", str(VNI), "dstport", str(VXLAN_PORT),
                "local", UNDERLAY.format(i), "dev", "eth0", "nolearning")
        self.ip(host, "addr", "add", POD_NET.format(i, 0) + "/32", "dev", device)
        self.ip(host, "link", "set", device, "mtu", str(MTU - 50), "up")
        link = json.loads(self.run(host, "ip", "-j", "link", "show", device).stdout)
        return link[0]["address"]

    def route_pods(self, how: str) -> None:
        """Route each host's way to the other's pods over the VXLAN device ("vxlan"), or straight to the
        other host on the underlay ("hostgw", flannel's host-gw backend: no encapsulation)."""
        for i, host in enumerate(self.hosts, start=1):
            j = 3 - i
            via = (("via", POD_NET.format(j, 0), "dev", f"nodeos.{VNI}", "onlink") if how == "vxlan"
                   else ("via", UNDERLAY.format(j), "dev", "eth0"))
            self.ip(host, "route", "replace", POD_NET.format(j, 0) + "/24", *via)

    def _peer(self, host: str, j: int, mac: str) -> None:
        """nodeos' overlay entries for peer ``j``: neighbour, FDB, onlink route, in that order."""
        device = f"nodeos.{VNI}"
        self.ip(host, "neigh", "replace", POD_NET.format(j, 0), "lladdr", mac, "dev", device, "nud", "permanent")
        self.run(host, "bridge", "fdb", "append", mac, "dev", device, "dst", UNDERLAY.format(j))
        self.ip(host, "route", "replace", POD_NET.format(j, 0) + "/24", "via", POD_NET.format(j, 0),
                "dev", device, "onlink")

    def destroy(self) -> None:
        for ns in self.namespaces():
            sh("ip", "netns", "del", ns, check=False)


@contextmanager
def lab() -> Iterator[Lab]:
    built = Lab()
    try:
        built.build()
        yield built
    finally:
        built.destroy()


Prefix = tuple[str, ...]  # runs a command in a namespace: ip netns exec NS, or nsenter --net=/proc/PID/ns/net


def in_netns(ns: str) -> Prefix:
    return ("ip", "netns", "exec", ns)


def in_pod(pid: int) -> Prefix:
    return ("nsenter", f"--net=/proc/{pid}/ns/net")


@contextmanager
def iperf_server(where: Prefix, address: str) -> Iterator[None]:
    server = subprocess.Popen([*where, "iperf3", "-s", "-B", address, "-p", str(IPERF_PORT)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while f"{address}:{IPERF_PORT}" not in sh(*where, "ss", "-ltnH").stdout:
            if time.monotonic() > deadline:
                raise RuntimeError(f"iperf3 did not listen on {address}")
            time.sleep(0.05)
        yield
    finally:
        server.terminate()
        server.wait(timeout=10)


def iperf(where: Prefix, target: str, seconds: float) -> float:
    """Gbit/s received, as iperf3's client reports it (its first second left out: slow start)."""
    done = sh(*where, "iperf3", "-c", target, "-p", str(IPERF_PORT), "-t", f"{seconds:g}", "-O", "1", "-J",
              check=False)
    result = json.loads(done.stdout or "{}")
    if "error" in result or done.returncode != 0:
        raise RuntimeError(f"iperf3 -> {target}: {result.get('error') or done.stderr.strip()}")
    return result["end"]["sum_received"]["bits_per_second"] / 1e9


class Results:
    def __init__(self) -> None:
        self.gbits: dict[str, list[float]] = {}
        self.ratios: dict[str, list[float]] = {}

    def pair(self, paths: dict[str, tuple[Prefix, str]], a: str, b: str, seconds: float, flip: bool) -> None:
        """Run ``a`` and ``b`` back to back (the order flipped when ``flip``); record both, and b/a."""
        for name in ((b, a) if flip else (a, b)):
            self.gbits.setdefault(name, []).append(iperf(*paths[name], seconds))
        self.ratios.setdefault(f"{b} / {a}", []).append(self.gbits[b][-1] / self.gbits[a][-1])

    def rounds(self, paths: dict[str, tuple[Prefix, str]], pairs: list[tuple[str, str]], seconds: float,
               rounds: int) -> None:
        for i in range(rounds):
            for j, (a, b) in enumerate(pairs):
                self.pair(paths, a, b, seconds, (i + j) % 2 == 1)


def nftables_service(lab: Lab) -> None:
    """The nftables proxy's table on host 1 for one Service whose one endpoint is host 2's pod."""
    endpoint = Endpoint(POD_NET.format(2, 2), IPERF_PORT, "h2", True)
    port = ServicePort("default", "bench", "", "TCP", CLUSTER_IP, IPERF_PORT, None, (endpoint,), None, False)
    script, _ = full_script([port], Context(node="h1", pod_cidr="10.244.0.0/16"))
    lab.run(lab.hosts[0], "nft", "-f", "-", input=script)


@contextmanager
def userspace_service(lab: Lab) -> Iterator[None]:
    """The userspace proxy in host 1's namespace, the ClusterIP redirected to it."""
    lab.run(lab.hosts[0], "nft", "delete", "table", *TABLE.split(), check=False)
    proxy = subprocess.Popen(["ip", "netns", "exec", lab.hosts[0], sys.executable, "-c", USERSPACE_PROXY,
                              CLUSTER_IP, str(IPERF_PORT), POD_NET.format(2, 2)],
                             stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        if proxy.stdout is None or proxy.stdout.readline().strip() != "ready":
            raise RuntimeError("the userspace proxy did not start")
        yield
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
        lab.run(lab.hosts[0], "nft", "delete", "table", "ip", redirect.TABLE, check=False)


def lab_paths(net: Lab) -> dict[str, tuple[Prefix, str]]:
    """Scenario -> (where the client runs, the target address)."""
    pod = in_netns(net.pods[0])
    return {"underlay": (in_netns(net.hosts[0]), UNDERLAY.format(2)), "vxlan": (pod, POD_NET.format(2, 2)),
            "clusterip-nft": (pod, CLUSTER_IP), "clusterip-user": (pod, CLUSTER_IP)}


def measure_lab(seconds: float, rounds: int) -> Results:
    results = Results()
    with lab() as net:
        paths = lab_paths(net)
        with (iperf_server(in_netns(net.hosts[1]), UNDERLAY.format(2)),
              iperf_server(in_netns(net.pods[1]), POD_NET.format(2, 2))):
            nftables_service(net)
            results.rounds(paths, [("underlay", "vxlan"), ("vxlan", "clusterip-nft")], seconds, rounds)
            for i in range(rounds):  # where vxlan's cost goes: pod plumbing (hostgw) vs encapsulation
                for how in (("hostgw", "vxlan") if i % 2 == 0 else ("vxlan", "hostgw")):
                    net.route_pods(how)
                    results.gbits.setdefault(how, []).append(iperf(*paths["vxlan"], seconds))
                results.ratios.setdefault("vxlan / hostgw", []).append(
                    results.gbits["vxlan"][-1] / results.gbits["hostgw"][-1])
            net.route_pods("vxlan")
            with userspace_service(net):
                results.rounds(paths, [("vxlan", "clusterip-user")], seconds, rounds)
    return results


# --- in a sandbox: real daemons, real Podman pods ------------------------------------------------

def pod(name: str, node: str, labels: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": TEST_IMAGE,
                                                       "command": ["sleep", "3600"]}]}}


SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bench", "namespace": "default"},
           "spec": {"selector": {"app": "bench-server"}, "ports": [{"port": IPERF_PORT, "protocol": "TCP"}]}}
TEST_IMAGE = "localhost/nodeos-test/busybox:1"


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise RuntimeError(f"not within {timeout:g}s: {what}")


def pod_pid(host, name: str) -> int:
    """The PID of the pod's container, whose network namespace is the pod's."""
    from tests.sandbox import host_podman

    ids = host_podman(host, "ps", "-q", "--filter", f"label=nodeos.pod-name={name}",
                      "--filter", "label=nodeos.container-name=c").stdout.split()
    return int(host_podman(host, "inspect", "--format", "{{.State.Pid}}", ids[0]).stdout.strip())


@contextmanager
def sandbox(workdir: Path, mode: str) -> Iterator[dict[str, tuple[Prefix, str]]]:
    """A sandbox (a master and two workers) in proxy ``mode`` with a client pod on worker1, a server pod on
    worker2 behind Service "bench", iperf3 servers listening; yields the scenarios' paths."""
    import httpx

    from nodeos.sandbox import Sandbox
    from tests.sandbox import image_archive

    directory = workdir / f"sandbox-{mode}"
    try:
        up = nodeos("sandbox", "up", "--workers", "2", "--dir", str(directory), "--proxy-mode", mode)
        if up.returncode != 0:
            raise RuntimeError(f"sandbox up: {up.stderr.strip()}")
        loaded = nodeos("sandbox", "load", "--dir", str(directory), str(image_archive(workdir)))
        if loaded.returncode != 0:
            raise RuntimeError(f"sandbox load: {loaded.stderr.strip()}")
        sb = Sandbox.load(directory)
        w1, w2 = sb.host("worker1"), sb.host("worker2")
        with httpx.Client(base_url=sb.url, timeout=10) as api:
            base = "/api/v1/namespaces/default"
            api.post(f"{base}/pods", json=pod("bench-client", "worker1", {"app": "bench-client"})).raise_for_status()
            api.post(f"{base}/pods", json=pod("bench-server", "worker2", {"app": "bench-server"})).raise_for_status()
            cluster_ip = api.post(f"{base}/services", json=SERVICE).raise_for_status().json()["spec"]["clusterIP"]

            def running_ip(name: str) -> str | None:
                status = api.get(f"{base}/pods/{name}").json().get("status") or {}
                return status.get("podIP") if status.get("phase") == "Running" else None

            client_ip = wait_for(lambda: running_ip("bench-client"), 120, "the client pod Running")
            server_ip = wait_for(lambda: running_ip("bench-server"), 120, "the server pod Running")
        client, server = in_pod(pod_pid(w1, "bench-client")), in_pod(pod_pid(w2, "bench-server"))
        print(f"sandbox {mode}: client {client_ip} on worker1, server {server_ip} on worker2, "
              f"Service {cluster_ip}", file=sys.stderr)
        paths = {"underlay": (in_netns(w1.netns), w2.ip), "vxlan": (client, server_ip),
                 f"clusterip-{'nft' if mode == 'nftables' else 'user'}": (client, cluster_ip)}
        with iperf_server(in_netns(w2.netns), w2.ip), iperf_server(server, server_ip):
            wait_for(lambda: _answers(client, cluster_ip), 60, f"the Service {cluster_ip} answering")
            yield paths
    finally:
        down = nodeos("sandbox", "down", "--dir", str(directory))
        if down.returncode != 0:
            print(f"sandbox down failed: {down.stderr.strip()}; run: nodeos sandbox down --dir {directory}",
                  file=sys.stderr)


def nodeos(*args: str) -> subprocess.CompletedProcess[str]:
    """The real ``nodeos`` command line."""
    return subprocess.run([sys.executable, "-m", "nodeos", *args], capture_output=True, text=True, timeout=300,
                          check=False)


def _answers(where: Prefix, target: str) -> bool:
    try:
        return iperf(where, target, 1) > 0
    except RuntimeError:
        return False


def measure_sandbox(seconds: float, rounds: int) -> Results:
    results = Results()
    with tempfile.TemporaryDirectory(prefix="nodeos-bench-net-") as tmp:
        with sandbox(Path(tmp), "nftables") as paths:
            results.rounds(paths, [("underlay", "vxlan"), ("vxlan", "clusterip-nft")], seconds, rounds)
        with sandbox(Path(tmp), "userspace") as paths:
            results.rounds(paths, [("vxlan", "clusterip-user")], seconds, rounds)
    return results


TARGETS = {"vxlan / underlay": 0.8, "clusterip-nft / vxlan": 0.95}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each iperf3 run")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each scenario (medians are reported)")
    parser.add_argument("--netns", action="store_true",
                        help="namespaces of the benchmark's own instead of a sandbox (no daemons, no Podman)")
    args = parser.parse_args()
    if shutil.which("iperf3") is None:
        sys.exit("iperf3 is not installed: apt-get install -y iperf3")
    results = (measure_lab if args.netns else measure_sandbox)(args.seconds, args.rounds)
    print(f"{'path':<16} {'Gbit/s median':>14}  runs")
    for name in (name for name in SCENARIOS if name in results.gbits):
        values = results.gbits[name]
        print(f"{name:<16} {statistics.median(values):>14.2f}  {' '.join(f'{v:.2f}' for v in values)}")
    print(f"\n{'ratio (paired runs)':<24} {'median':>7}  target  per round")
    for name, values in results.ratios.items():
        target = f">= {TARGETS[name]}" if name in TARGETS else "-"
        print(f"{name:<24} {statistics.median(values):>7.3f}  {target:<6}  {' '.join(f'{v:.2f}' for v in values)}")
    print(json.dumps({"where": "netns" if args.netns else "sandbox", "seconds": args.seconds, "rounds": args.rounds,
                      "gbits": {k: round(statistics.median(v), 3) for k, v in results.gbits.items()},
                      "ratios": {k: round(statistics.median(v), 3) for k, v in results.ratios.items()},
                      "ratio_range": {k: [round(min(v), 3), round(max(v), 3)] for k, v in results.ratios.items()}}))


if __name__ == "__main__":
    main()
