"""Service ClusterIPs and NodePorts: unique, handed out on create, freed on delete.

The allocator keeps the used sets in memory, rebuilt from the watch cache at
start and after every Service event, so nothing about allocation is stored
twice. The registry takes ``lock`` around allocate-then-create so two
concurrent creates cannot take the same address. (With several masters on
etcd this needs allocation records in the store; that comes with HA.)
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from nodeos.errors import ApiError, Cause

NODE_PORT_RANGE = range(30000, 32768)


class ServiceAllocator:
    def __init__(self, service_cidr: ipaddress.IPv4Network) -> None:
        self.cidr = service_cidr
        self.used_ips: set[ipaddress.IPv4Address] = set()
        self.used_ports: set[tuple[str, int]] = set()  # (protocol, port)

    @property
    def api_service_ip(self) -> str:
        """The first usable address: the ``kubernetes`` Service's own."""
        return str(self.cidr.network_address + 1)

    def rebuild(self, services: list[dict[str, Any]]) -> None:
        self.used_ips.clear()
        self.used_ports.clear()
        for svc in services:
            self.mark_used(svc)

    def mark_used(self, svc: dict[str, Any]) -> None:
        ips, ports = _holdings(svc)
        self.used_ips.update(ips)
        self.used_ports.update(ports)

    def release(self, svc: dict[str, Any]) -> None:
        ips, ports = _holdings(svc)
        self.used_ips.difference_update(ips)
        self.used_ports.difference_update(ports)

    def assign(self, svc: dict[str, Any], old: dict[str, Any] | None = None) -> None:
        """Fill in ``clusterIP(s)`` and ``nodePort``s the user left empty, and check
        the ones they asked for. Mutates ``svc``; raises Invalid on clashes."""
        spec = svc["spec"]
        old_spec = (old or {}).get("spec") or {}
        kind = spec.get("type", "ClusterIP")
        if kind == "ExternalName":
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        elif old_spec.get("clusterIP") and not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec["clusterIP"]
        elif not spec.get("clusterIP"):
            spec["clusterIP"] = self._free_ip()
        elif spec["clusterIP"] != "None" and spec["clusterIP"] != old_spec.get("clusterIP"):
            self._claim_ip(spec["clusterIP"])
        if kind != "ExternalName":
            spec["clusterIPs"] = [spec["clusterIP"]]
        self._assign_node_ports(spec, old_spec, kind)

    def _assign_node_ports(self, spec: dict[str, Any], old_spec: dict[str, Any], kind: str) -> None:
        old_ports = {(p.get("protocol", "TCP"), p.get("port")): p.get("nodePort")
                     for p in old_spec.get("ports") or [] if isinstance(p, dict)}
        for i, port in enumerate(spec.get("ports") or []):
            if kind not in ("NodePort", "LoadBalancer"):
                port.pop("nodePort", None)
                continue
            protocol = port.get("protocol", "TCP")
            kept = old_ports.get((protocol, port.get("port")))
            if not port.get("nodePort"):
                port["nodePort"] = kept or self._free_port(protocol)
            elif port["nodePort"] != kept:
                self._claim_port(protocol, port["nodePort"], i)

    def _free_ip(self) -> str:
        reserved = {self.cidr.network_address, self.cidr.network_address + 1, self.cidr.broadcast_address}
        size = self.cidr.num_addresses
        start = random.randrange(size)
        for offset in range(size):
            addr = self.cidr.network_address + (start + offset) % size
            if addr not in reserved and addr not in self.used_ips:
                self.used_ips.add(addr)
                return str(addr)
        raise ApiError(500, "InternalError", f"Internal error occurred: range {self.cidr} is full")

    def _claim_ip(self, text: str) -> None:
        addr = _address(text)
        if addr is None:
            raise _invalid("spec.clusterIP", f'"{text}": must be a valid IP address')
        if addr not in self.cidr:
            raise _invalid("spec.clusterIP", f'"{text}": provided IP is not in the valid range. '
                           f"The range of valid IPs is {self.cidr}")
        if addr in self.used_ips:
            raise _invalid("spec.clusterIP", f'"{text}": provided IP is already allocated')
        self.used_ips.add(addr)

    def _free_port(self, protocol: str) -> int:
        start = random.randrange(len(NODE_PORT_RANGE))
        for offset in range(len(NODE_PORT_RANGE)):
            port = NODE_PORT_RANGE[(start + offset) % len(NODE_PORT_RANGE)]
            if (protocol, port) not in self.used_ports:
                self.used_ports.add((protocol, port))
                return port
        raise ApiError(500, "InternalError", "Internal error occurred: the node port range is full")

    def _claim_port(self, protocol: str, port: int, index: int) -> None:
        field = f"spec.ports[{index}].nodePort"
        if port not in NODE_PORT_RANGE:
            raise _invalid(field, f"{port}: provided port is not in the valid range. "
                           "The range of valid ports is 30000-32767")
        if (protocol, port) in self.used_ports:
            raise _invalid(field, f"{port}: provided port is already allocated")
        self.used_ports.add((protocol, port))


def _holdings(svc: dict[str, Any]) -> tuple[set[ipaddress.IPv4Address], set[tuple[str, int]]]:
    """The cluster IPs and (protocol, nodePort)s a Service holds."""
    spec = svc.get("spec") or {}
    addresses = (_address(ip) for ip in spec.get("clusterIPs") or [spec.get("clusterIP")])
    ports = {(p.get("protocol", "TCP"), p["nodePort"]) for p in spec.get("ports") or []
             if isinstance(p, dict) and isinstance(p.get("nodePort"), int)}
    return {a for a in addresses if a is not None}, ports


def _address(text: Any) -> ipaddress.IPv4Address | None:
    if not isinstance(text, str) or not text or text == "None":
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    return addr if isinstance(addr, ipaddress.IPv4Address) else None


def _invalid(field: str, what: str) -> ApiError:
    return ApiError.invalid("Service", "", [Cause(field, f"Invalid value: {what}")])
