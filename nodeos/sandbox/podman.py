"""Each host's Podman from outside: loading images into it, and emptying it on ``down``.

Images go through the host's own libpod API socket (``POST
/libpod/images/load``), so the host's service writes its own storage.
Removal uses the Podman CLI on the host's storage, inside the host's
network namespace (netavark tears the pods' veths and rules down there),
after the daemons, and with them the Podman services, have stopped: then
nothing re-creates a pod behind its back.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from nodeos.agent.podman.client import API_VERSION
from nodeos.sandbox.hostconfig import host_env
from nodeos.sandbox.layout import Host
from nodeos.sandbox.system import SandboxError, in_netns, run

__all__ = ["load_image", "remove_containers"]

LOAD_TIMEOUT = 300.0
REMOVE_TIMEOUT = 120.0


def load_image(host: Host, archive: Path) -> list[str]:
    """Load a ``podman save`` archive through the host's Podman service; the image names it loaded."""
    transport = httpx.HTTPTransport(uds=str(host.podman_socket))
    try:
        with httpx.Client(transport=transport, timeout=LOAD_TIMEOUT) as client, archive.open("rb") as body:
            response = client.post(f"http://d/{API_VERSION}/libpod/images/load", content=body,
                                   headers={"Content-Type": "application/x-tar"})
    except (OSError, httpx.HTTPError) as exc:
        raise SandboxError(f"{host.name}: cannot load {archive} through {host.podman_socket}: {exc}") from None
    if response.status_code != 200:
        raise SandboxError(f"{host.name}: loading {archive} failed: {response.status_code} {response.text.strip()}")
    return list(response.json().get("Names") or [])


def remove_containers(host: Host) -> None:
    """Remove every pod and container of the host's storage (its namespace must exist)."""
    if not (host.graphroot / "libpod").exists():
        return  # Podman never ran on this host
    env = host_env(host)
    # SIGKILL first: a sandbox being removed has no state worth a graceful stop, and a container the agent
    # was stopping gracefully when its daemon stopped would hold `pod rm` for the rest of its grace period.
    for what in (["kill", "--all", "--signal", "KILL"], ["pod", "rm", "--all", "--force", "--time", "0"],
                 ["rm", "--all", "--force", "--time", "0"]):
        run(in_netns(host.netns, ["podman", *what]), env=env, timeout=REMOVE_TIMEOUT, check=False)
