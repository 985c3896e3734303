"""``nodeos doctor``: a preflight of the host a node runs on, each check ok, warn or fail with a fix.

What a node needs from its host is spread over the kernel (modules, sysctls,
cgroups), tools (nft, Podman and its OCI runtime), free ports, and the
host's firewall (the forward-drop trap). Each module here checks one of
those and returns ``Check`` values; nothing is changed on the host. The
checks a role does not need are left out (a master runs no pods), and a
check that needs root says so as a warning when run without it, rather
than guessing.

    kernel   modules, ip_forward, br_netfilter's bridge-nf-call-iptables, cgroups
    tools    nft, podman, runc/crun, the Podman API socket
    ports    the listen addresses the role will bind, and who holds them
    forward  the forward-drop trap (nodeos.network.forwarding), with the exact fix
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from nodeos.config import Config

__all__ = ["Check", "exit_code", "is_node", "run_checks", "summary"]

STATUSES = ("ok", "warn", "fail")


@dataclass(frozen=True)
class Check:
    """One finding: ``status`` is ok, warn or fail; ``fix`` says what to run or change, one line each."""

    name: str
    status: str
    detail: str
    fix: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fix": list(self.fix)}


def is_node(config: Config) -> bool:
    """Whether the config runs pods here (worker or all on a real runtime): the network checks matter."""
    return config.node.role in ("worker", "all") and config.agent.runtime == "podman"


def run_checks(config: Config, *, root: bool | None = None) -> list[Check]:
    """Every check for ``config``'s role, in the order they are printed. Blocking; reads, never writes."""
    from nodeos.doctor import forward, kernel, ports, tools

    root = os.geteuid() == 0 if root is None else root
    checks: list[Check] = []
    if is_node(config):
        checks += kernel.check_modules(config)
        checks += [kernel.check_ip_forward(), kernel.check_bridge_netfilter(), tools.check_nft(config, root=root)]
        checks += tools.check_podman(config, root=root)
        checks += [kernel.check_cgroups(config=config)]
    checks += ports.check_ports(config, root=root)
    if is_node(config):
        checks += forward.check_forward(config, root=root)
    return checks


def exit_code(checks: list[Check]) -> int:
    """0 when nothing failed (warnings allowed), 1 when something did."""
    return 1 if any(check.status == "fail" for check in checks) else 0


def summary(checks: list[Check]) -> str:
    counts = {status: sum(check.status == status for check in checks) for status in STATUSES}
    return ", ".join(f"{n} {status}" for status, n in counts.items())
