"""The ports the role will listen on: free, or held by whom.

Each address is tried with a real ``bind`` (released at once), which is
what the daemon will do; a port in use is then looked up in
``/proc/net/{tcp,udp}`` and in the processes' open sockets, so the line
says which program holds it. A port held by a running nodeos daemon is not
a problem but a sign the node already runs.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from nodeos.config import Config
from nodeos.doctor import Check, is_node

__all__ = ["Port", "check_ports", "holder", "wanted_ports"]

DNS_PORT = 53


@dataclass(frozen=True)
class Port:
    what: str  # e.g. "[api] listen"
    protocol: str  # "tcp" or "udp"
    host: str
    port: int
    required: bool = True  # a port in use fails; else it warns
    change: str = ""  # the fix besides stopping the holder; default: change ``what``
    wildcard_only: bool = False  # only a listener on every address clashes (the daemon binds with IP_FREEBIND)
    own_device: str = ""  # for the VXLAN port: the overlay's own device, which holds it while the node runs

    @property
    def fix(self) -> str:
        return f"stop what holds it, or {self.change or 'change ' + self.what}"

    @property
    def name(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"port {self.protocol} {host}:{self.port}"


def wanted_ports(config: Config) -> list[Port]:
    """What this config's role listens on."""
    ports = []
    if config.node.role in ("master", "all"):
        ports.append(Port("[api] listen", "tcp", config.api.listen.host, config.api.listen.port))
        if config.api.insecure_listen is not None:
            ports.append(Port("[api] insecure_listen", "tcp", config.api.insecure_listen.host,
                              config.api.insecure_listen.port))
        if config.etcd.managed:
            for key in ("client_listen", "peer_listen"):
                address = getattr(config.etcd, key)
                ports.append(Port(f"[etcd] {key}", "tcp", address.host, address.port))
    if is_node(config):
        from nodeos.agent.host import default_address
        from nodeos.network.overlay.device import device_name

        address = config.agent.address or default_address()
        ports.append(Port("[agent] port", "tcp", address, config.agent.port))
        if config.network.backend == "vxlan":
            ports.append(Port("[network] port", "udp", "0.0.0.0", config.network.port,
                              own_device=device_name(config.network)))
        # The cluster DNS answers on the pod bridge's gateway, bound before the bridge exists (IP_FREEBIND):
        # only a resolver listening on every address (dnsmasq, named) clashes, not systemd-resolved's 127.0.0.53.
        for protocol in ("udp", "tcp"):
            ports.append(Port("the cluster DNS", protocol, "0.0.0.0", DNS_PORT, required=False, wildcard_only=True,
                              change='run no cluster DNS here: [node] disable = ["dns"]'))
    return ports


def _bind_error(port: Port) -> OSError | None:
    family = socket.AF_INET6 if ":" in port.host else socket.AF_INET
    kind = socket.SOCK_STREAM if port.protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(family, kind) as sock:
        if port.protocol == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no clash
        try:
            sock.bind((port.host, port.port))
        except OSError as exc:
            return exc
    return None


def _socket_inodes(protocol: str, port: int, proc: Path, *, wildcard: bool = False) -> set[str]:
    """Inodes of the sockets bound to ``port`` (listening, for TCP) in this network namespace;
    with ``wildcard``, only those bound to every address."""
    inodes = set()
    for table in (protocol, protocol + "6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            host, _, hex_port = local.rpartition(":")
            if wildcard and host.strip("0"):
                continue
            if int(hex_port, 16) == port and (protocol == "udp" or state == "0A"):
                inodes.add(inode)
    return inodes


def holder(protocol: str, port: int, proc: Path = Path("/proc"), *, wildcard: bool = False) -> tuple[int, str] | None:
    """(pid, command line) of a process holding the port; None when none can be seen (not root, or
    a kernel socket such as a VXLAN device's)."""
    targets = {f"socket:[{inode}]" for inode in _socket_inodes(protocol, port, proc, wildcard=wildcard)}
    if not targets:
        return None
    for pid in (p for p in os.listdir(proc) if p.isdigit()):
        try:
            fds = os.listdir(proc / pid / "fd")
            for fd in fds:
                if os.readlink(proc / pid / "fd" / fd) in targets:
                    cmdline = (proc / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    return int(pid), cmdline.strip()
        except OSError:
            continue
    return None


def vxlan_device(port: int) -> str | None:
    """The name of a VXLAN device in this namespace bound to UDP ``port`` (the kernel holds its socket)."""
    try:
        done = subprocess.run(["ip", "-d", "-j", "link", "show", "type", "vxlan"], capture_output=True, text=True,
                              timeout=10, check=False)
        links = json.loads(done.stdout or "[]")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    for link in links:
        if ((link.get("linkinfo") or {}).get("info_data") or {}).get("port") == port:
            return link.get("ifname")
    return None


def _is_nodeos_daemon(cmdline: str) -> bool:
    """``nodeos daemon ...`` or ``python -m nodeos daemon ...``: the node itself already runs."""
    words = cmdline.split()
    return any(word.rsplit("/", 1)[-1] == "nodeos" and after == "daemon" for word, after in pairwise(words))


def _check_wildcard(port: Port, root: bool) -> Check:
    """Whether something listens on every address at the port: the only bind that clashes with IP_FREEBIND's."""
    if not _socket_inodes(port.protocol, port.port, Path("/proc"), wildcard=True):
        return Check(port.name, "ok", f"nothing listens on every address ({port.what})")
    owner = holder(port.protocol, port.port, wildcard=True)
    who = f"pid {owner[0]}: {owner[1][:80]}" if owner else "a process" + ("" if root else " (not root: not looked up)")
    if owner and _is_nodeos_daemon(owner[1]):
        return Check(port.name, "ok", f"in use by a running nodeos (pid {owner[0]}) ({port.what})")
    return Check(port.name, "warn", f"{who} listens on every address: {port.what} cannot bind", (port.fix,))


def _check(port: Port, root: bool) -> Check:
    if port.wildcard_only:
        return _check_wildcard(port, root)
    error = _bind_error(port)
    if error is None:
        return Check(port.name, "ok", f"free ({port.what})")
    if error.errno == errno.EACCES:
        return Check(port.name, "warn", f"{port.what}: binding needs root here: not tried",
                     ("run nodeos doctor as root",))
    if error.errno == errno.EADDRNOTAVAIL:
        return Check(port.name, "fail" if port.required else "warn",
                     f"{port.what}: {port.host} is not an address of this host",
                     (f"set {port.what} to an address of this host",))
    if error.errno != errno.EADDRINUSE:
        return Check(port.name, "warn", f"{port.what}: cannot bind: {error.strerror}")
    owner = holder(port.protocol, port.port)
    device = vxlan_device(port.port) if port.protocol == "udp" and owner is None else None
    if device is not None:
        if device == port.own_device:
            return Check(port.name, "ok", f"held by the overlay's own VXLAN device {device} ({port.what})")
        return Check(port.name, "fail", f"held by the VXLAN device {device}, another overlay's ({port.what})",
                     (f"remove it (ip link del {device}) if nothing uses it, or change {port.what}",))
    if owner and _is_nodeos_daemon(owner[1]):
        return Check(port.name, "ok", f"in use by a running nodeos (pid {owner[0]}) ({port.what})")
    who = (f"pid {owner[0]}: {owner[1][:80]}" if owner else
           "a kernel socket or another user's process" + ("" if root else " (not root: processes not looked at)"))
    return Check(port.name, "fail" if port.required else "warn", f"in use by {who} ({port.what})",
                 (port.fix,))


def check_ports(config: Config, *, root: bool) -> list[Check]:
    return [_check(port, root) for port in wanted_ports(config)]
