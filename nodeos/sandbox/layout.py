"""Where a sandbox keeps things: names derived from its directory, and its state file.

Every name a sandbox gives the kernel (namespaces, links) carries a short
hash of its directory, so several sandboxes (and tests running at the same
time) never collide, and ``down`` can find what belongs to a sandbox from
the directory alone, even when ``up`` died before writing its state file.
Interface names are at most 15 bytes: ``nsb-<6 hex>`` for the bridge and
``nsb-<6 hex>-<i>`` for the root end of each host's veth.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["API_PORT", "STATE_FILE", "Host", "Sandbox", "host_names", "tag_of"]

STATE_FILE = "sandbox.json"
API_PORT = 6443  # the master's API (TLS) on its underlay address
SOCKET_MAX = 100  # a unix socket path must fit sockaddr_un's 108 bytes


def tag_of(directory: Path) -> str:
    """Six hex digits naming the sandbox of ``directory`` in the kernel."""
    return hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:6]


def host_names(workers: int) -> list[str]:
    """Host 0 is the master (role "all"), then worker1..workerN."""
    return ["master"] + [f"worker{i}" for i in range(1, workers + 1)]


@dataclass(frozen=True)
class Host:
    """One host of the sandbox: a network namespace with its own daemon and Podman."""

    index: int
    name: str
    netns: str
    veth: str  # the root namespace's end; the host's end is "eth0"
    ip: str
    dir: Path

    @property
    def role(self) -> str:
        return "all" if self.index == 0 else "worker"

    @property
    def config(self) -> Path:
        return self.dir / "nodeos.toml"

    @property
    def log(self) -> Path:
        return self.dir / "daemon.log"

    @property
    def pid_file(self) -> Path:
        return self.dir / "daemon.pid"

    @property
    def podman_socket(self) -> Path:
        return self.dir / "podman" / "podman.sock"

    @property
    def containers_conf(self) -> Path:
        return self.dir / "containers.conf"

    @property
    def storage_conf(self) -> Path:
        return self.dir / "storage.conf"

    @property
    def graphroot(self) -> Path:
        return self.dir / "storage"

    @property
    def runroot(self) -> Path:
        return self.dir / "run"

    @property
    def podman_tmp(self) -> Path:
        return self.dir / "podman-tmp"


@dataclass(frozen=True)
class Sandbox:
    """A sandbox as ``up`` laid it out; saved as DIR/sandbox.json so ``down`` and ``load`` find it."""

    dir: Path
    tag: str
    subnet: str  # the underlay's /24; the root namespace has its first address
    proxy_mode: str
    network: bool  # False: the overlay, proxy and DNS are not run (the hidden --no-network)
    hosts: tuple[Host, ...]

    @classmethod
    def plan(cls, directory: Path, workers: int, subnet: str, proxy_mode: str, network: bool) -> Sandbox:
        directory = directory.resolve()
        tag = tag_of(directory)
        addresses = list(ipaddress.ip_network(subnet).hosts())
        hosts = tuple(Host(i, name, f"nodeos-sb-{tag}-{name}", f"nsb-{tag}-{i}", str(addresses[i + 1]),
                           directory / name)
                      for i, name in enumerate(host_names(workers)))
        return cls(directory, tag, subnet, proxy_mode, network, hosts)

    @property
    def bridge(self) -> str:
        return f"nsb-{self.tag}"

    @property
    def gateway(self) -> str:
        """The root namespace's address on the underlay: "outside the cluster"."""
        return str(next(ipaddress.ip_network(self.subnet).hosts()))

    @property
    def master(self) -> Host:
        return self.hosts[0]

    @property
    def url(self) -> str:
        return f"https://{self.master.ip}:{API_PORT}"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.dir / STATE_FILE

    def host(self, name: str) -> Host:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def save(self) -> None:
        data = asdict(self)
        data["dir"] = str(self.dir)
        data["hosts"] = [{**asdict(h), "dir": str(h.dir)} for h in self.hosts]
        self.state_file.write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> Sandbox | None:
        """The saved sandbox of ``directory``, or None when there is none (or it is unreadable)."""
        try:
            data = json.loads((directory / STATE_FILE).read_text())
            hosts = tuple(Host(**{**h, "dir": Path(h["dir"])}) for h in data.pop("hosts"))
            return cls(**{**data, "dir": Path(data["dir"]), "hosts": hosts})
        except (OSError, ValueError, TypeError, KeyError):
            return None
