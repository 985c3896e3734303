"""Running the host's tools (ip, nsenter, podman) for the sandbox, and its one error type.

The sandbox drives the kernel through ``ip`` rather than netlink from
Python: every step is then a command an operator can read in the error
and repeat by hand, and nothing here runs on an event loop.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from nodeos.errors import NodeosError

__all__ = ["REQUIRED_TOOLS", "SandboxError", "check_host", "in_netns", "run"]

REQUIRED_TOOLS = ("ip", "nft", "nsenter", "podman")


class SandboxError(NodeosError):
    """The sandbox cannot be built, used or removed; one line for the operator."""


def check_host() -> None:
    """Refuse early, in one line, on a host that cannot run a sandbox."""
    if os.geteuid() != 0:
        raise SandboxError("nodeos sandbox needs root (network namespaces, bridges, Podman as root)")
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise SandboxError(f"nodeos sandbox needs {', '.join(missing)} on PATH (apt-get install iproute2 "
                           "nftables util-linux podman)")


def run(args: Sequence[str], *, check: bool = True, env: Mapping[str, str] | None = None,
        timeout: float = 60, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output; with ``check``, a failure is a SandboxError naming it."""
    try:
        result = subprocess.run(list(args), capture_output=True, text=True, env=dict(env) if env else None,
                                timeout=timeout, input=input.decode() if input else None)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"{' '.join(args)}: {exc}") from None
    if check and result.returncode != 0:
        reason = " ".join((result.stderr or result.stdout).split()) or f"exit status {result.returncode}"
        raise SandboxError(f"{' '.join(args)}: {reason}")
    return result


def in_netns(netns: str, args: Sequence[str]) -> list[str]:
    """``args`` run in the network namespace ``netns`` only.

    ``nsenter --net`` rather than ``ip netns exec``: the latter also gives the
    process a mount namespace with a fresh /sys, which loses the cgroup
    mounts Podman and runc need, and hides the containers' mounts from the
    rest of the host (so nothing outside could clean them up).
    """
    return ["nsenter", f"--net=/run/netns/{netns}", "--", *args]
