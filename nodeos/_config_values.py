"""The values of the node's TOML config: one parser per kind of value.

Each parser takes a TOML value and returns a typed one, or raises
``ValueError`` with the reason, which ``nodeos.config`` turns into a
one-line error naming the file and the key. Kept apart from the schema so
that each file reads in one sitting.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "BACKENDS",
    "DEFAULT_CAPACITY",
    "DEFAULT_RESERVED",
    "DISABLEABLE",
    "ROLES",
    "RUNTIMES",
    "Address",
    "absolute_path",
    "address",
    "backend",
    "capacity",
    "count",
    "data_dir",
    "disable",
    "etcd_endpoints",
    "etcd_prefix",
    "host_ip",
    "ipv4_network",
    "log_file",
    "megabytes",
    "node_cidr_size",
    "node_name",
    "optional_path",
    "port",
    "positive",
    "quote",
    "role",
    "runtime",
    "server_url",
    "server_urls",
    "service_cidr",
]

ROLES = ("master", "worker", "all")
DEFAULT_CAPACITY: dict[str, str | int] = {"cpu": "4", "memory": "8Gi", "pods": 110}
DEFAULT_RESERVED: dict[str, str | int] = {"cpu": "100m", "memory": "256Mi"}
# "podman" is the real runtime and the default; "simulated" runs nothing (tests, scale).
RUNTIMES = ("podman", "simulated")


@dataclass(frozen=True)
class Address:
    """A ``host:port`` to listen on; ``str()`` gives it back (``[::1]:6443`` for IPv6)."""

    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


# --- value parsers: a TOML value in, a typed value out, ValueError(why) if bad ---

def quote(value: object) -> str:
    """Quote a value the way it is written in TOML, for error messages."""
    return json.dumps(value, default=str)


_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")


def node_name(value: str) -> str:
    # Kubernetes' rule for Node names (IsDNS1123Subdomain): the name becomes an API object name.
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(
            f"{quote(value)} is not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit, at most 253 characters)")
    return value


def role(value: str) -> str:
    if value not in ROLES:
        raise ValueError(f"{quote(value)} is not one of {', '.join(quote(r) for r in ROLES)}")
    return value


# Components a node may be told not to run; the API server is what every master is for.
DISABLEABLE = ("scheduler", "controller-manager", "agent", "forwarding", "overlay", "proxy", "dns")
PROXY_MODES = ("nftables", "userspace")
OVERLAY_BACKENDS = ("vxlan", "none")


def disable(value: list[Any]) -> tuple[str, ...]:
    for name in value:
        if name not in DISABLEABLE:
            raise ValueError(f"{quote(name)} is not one of {', '.join(quote(n) for n in DISABLEABLE)}")
    return tuple(dict.fromkeys(value))


def data_dir(value: str) -> Path:
    # Relative paths would depend on the working directory, which is / under systemd.
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise ValueError(f"{quote(value)} must be an absolute path")
    return path


def address(value: str) -> Address:
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f'{quote(value)} is not host:port (e.g. "127.0.0.1:6443" or "[::1]:6443")')
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        _ipv6(host, value)
    elif ":" in host:
        raise ValueError(f"{quote(value)}: write an IPv6 address in brackets, e.g. \"[::1]:6443\"")
    elif not _is_ipv4(host) and not _DNS_SUBDOMAIN.fullmatch(host):
        raise ValueError(f"{quote(value)}: {quote(host)} is neither an IP address nor a host name")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"{quote(value)}: port {port} is out of range 1-65535")
    return Address(host, port)


def _ipv6(host: str, value: str) -> None:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        raise ValueError(f"{quote(value)}: {quote(host)} is not an IPv6 address") from None


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


BACKENDS = ("sqlite", "etcd")


def backend(value: str) -> str:
    if value not in BACKENDS:
        raise ValueError(f"{quote(value)} is not a known store backend; use {' or '.join(quote(b) for b in BACKENDS)}")
    return value


def etcd_endpoints(value: list[Any]) -> tuple[str, ...]:
    """etcd client URLs, ``http://host:port`` or ``https://host:port``."""
    urls: list[str] = []
    for item in value:
        if type(item) is not str:
            raise ValueError(f"expected URL strings, got {quote(item)}")
        url = server_url(item, example="http://10.0.0.1:2379")
        if url in urls:
            raise ValueError(f"{quote(url)} is listed twice")
        urls.append(url)
    return tuple(urls)


def etcd_prefix(value: str) -> str:
    """The etcd key under which every object is kept; several clusters may share one etcd."""
    if not re.fullmatch(r"(/[A-Za-z0-9._-]+)+/?", value):
        raise ValueError(f'{quote(value)} is not a key prefix like "/nodeos" (letters, digits, . _ - between slashes)')
    return value.rstrip("/")


def ipv4_network(value: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value)
    except ValueError as exc:
        raise ValueError(f"{quote(value)} is not an IPv4 CIDR like \"10.96.0.0/16\": {exc}") from None


def service_cidr(value: str) -> ipaddress.IPv4Network:
    network = ipv4_network(value)
    if network.prefixlen > 28:
        # Service IPs are handed out from this range; a /29 or smaller leaves almost none.
        raise ValueError(f"{quote(value)} is too small: use /28 or larger")
    return network


def server_url(value: str, example: str = "http://10.0.0.1:8080") -> str:
    try:
        url = urlsplit(value)
        port = url.port
    except ValueError as exc:
        raise ValueError(f"{quote(value)} is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"{quote(value)} is not an http(s) URL like {quote(example)}")
    if url.path not in ("", "/") or url.query or url.fragment or url.username:
        raise ValueError(f"{quote(value)}: give only scheme, host and port")
    if port == 0:
        raise ValueError(f"{quote(value)}: port 0 is out of range 1-65535")
    return value.rstrip("/")


def server_urls(value: list[Any]) -> tuple[str, ...]:
    urls: list[str] = []
    for item in value:
        if type(item) is not str:
            raise ValueError(f"expected URL strings, got {quote(item)}")
        url = server_url(item)
        if url in urls:
            raise ValueError(f"{quote(url)} is listed twice")
        urls.append(url)
    return tuple(urls)


def positive(value: int) -> int:
    if value <= 0:
        raise ValueError(f"{value} must be a positive number of seconds")
    return value


def node_cidr_size(value: int) -> int:
    if not 1 <= value <= 30:
        # A /31 or /32 leaves no pod addresses once the network and gateway are taken.
        raise ValueError(f"{value} must be between the pod_cidr prefix and 30")
    return value


def runtime(value: str) -> str:
    if value not in RUNTIMES:
        raise ValueError(f"{quote(value)} is not one of {', '.join(quote(r) for r in RUNTIMES)}")
    return value


_CAPACITY_NAMES = ("cpu", "memory", "pods", "ephemeral-storage")


def capacity(value: dict[str, Any]) -> dict[str, str | int]:
    """Resource quantities; the caller lays them over what the host (or a simulated node) has."""
    from nodeos.api.model.quantity import parse_quantity  # the API model is only needed here

    merged: dict[str, str | int] = {}
    for name, quantity in value.items():
        if name not in _CAPACITY_NAMES:
            raise ValueError(f"unknown resource {quote(name)} (known: {', '.join(_CAPACITY_NAMES)})")
        if name == "pods":
            if type(quantity) is not int or quantity <= 0:
                raise ValueError(f"pods: {quote(quantity)} must be a positive integer")
        elif type(quantity) is not str:
            raise ValueError(f'{name}: expected a quantity string like "4" or "8Gi", got {quote(quantity)}')
        else:
            try:
                amount = parse_quantity(quantity)
            except ValueError:
                amount = None
            if amount is None or amount <= 0:
                raise ValueError(f"{name}: {quote(quantity)} is not a positive quantity like \"4\" or \"8Gi\"")
        merged[name] = quantity
    return merged


def host_ip(value: str) -> str:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{quote(value)} is not an IP address") from None
    if ip.is_unspecified or ip.is_multicast:
        raise ValueError(f"{quote(value)} cannot be a node's address")
    return str(ip)


def proxy_mode(value: str) -> str:
    return _one_of(value, PROXY_MODES, "proxy mode")


def overlay_backend(value: str) -> str:
    return _one_of(value, OVERLAY_BACKENDS, "network backend")


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{quote(value)} is not a known {what}; use {' or '.join(quote(a) for a in allowed)}")
    return value


def vni(value: int) -> int:
    if not 1 <= value <= 16_777_215:  # 24 bits
        raise ValueError(f"{value} is out of range 1-16777215 (a VXLAN network identifier is 24 bits)")
    return value


def mtu(value: int) -> int:
    if value != 0 and not 576 <= value <= 65535:
        raise ValueError(f"{value} is out of range 576-65535 (or 0: the underlay's MTU minus 50)")
    return value


def dns_domain(value: str) -> str:
    if not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{quote(value)} is not a DNS domain (e.g. \"cluster.local\")")
    return value


def nameservers(value: list[Any]) -> tuple[str, ...]:
    for item in value:
        if not isinstance(item, str) or not _is_ipv4(item.rpartition(":")[0] if item.count(":") == 1 else item):
            raise ValueError(f"{quote(item)} is not an IPv4 address (optionally with :port)")
    return tuple(value)


def port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"{value} is out of range 1-65535")
    return value


def absolute_path(value: str) -> Path:
    if not value.startswith("/"):
        raise ValueError(f"{quote(value)} must be an absolute path")
    return Path(value)


def optional_path(value: str) -> Path | None:
    return absolute_path(value) if value else None


def log_file(value: str) -> Path | None:
    """A file the node writes: absolute, or relative to data_dir; "" turns it off (None)."""
    if not value:
        return None
    path = Path(value)
    if ".." in path.parts:
        raise ValueError(f"{quote(value)} must not leave its directory: give an absolute path instead")
    return path


def megabytes(value: int) -> int:
    if value <= 0:
        raise ValueError(f"{value} must be a positive number of megabytes")
    return value


def count(value: int) -> int:
    if value < 0:
        raise ValueError(f"{value} must not be negative")
    return value
