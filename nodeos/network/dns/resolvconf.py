"""The host's resolver settings, as /etc/resolv.conf states them (resolv.conf(5)), pure but for ``read``.

The cluster DNS forwards to the host's nameservers, and pods that do not use
the cluster DNS (``dnsPolicy: Default``) or add to it get the host's search
domains and options, as the kubelet takes them from its ``--resolv-conf``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["HOST_RESOLV_CONF", "ResolvConf", "parse_resolv_conf", "read_resolv_conf"]

HOST_RESOLV_CONF = Path("/etc/resolv.conf")


@dataclass(frozen=True)
class ResolvConf:
    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # "ndots:5", "edns0"


def parse_resolv_conf(text: str) -> ResolvConf:
    """The ``nameserver``, ``search`` (or ``domain``: the last one wins) and ``options`` lines."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        keyword, values = words[0], words[1:]
        if keyword == "nameserver" and values:
            nameservers.append(values[0])
        elif keyword in ("search", "domain"):
            searches = [v.rstrip(".") for v in values if v.rstrip(".")]
        elif keyword == "options":
            options.extend(values)
    return ResolvConf(tuple(nameservers), tuple(searches), tuple(options))


def read_resolv_conf(path: Path = HOST_RESOLV_CONF) -> ResolvConf:
    """Blocking. A missing or unreadable file is an empty configuration (glibc then asks 127.0.0.1)."""
    try:
        return parse_resolv_conf(path.read_text(errors="replace"))
    except OSError:
        return ResolvConf()
