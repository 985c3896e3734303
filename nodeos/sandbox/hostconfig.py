"""The files each sandbox host runs from: its nodeos TOML, its Podman configs, and the kubeconfig.

Hosts share one kernel and one filesystem, so everything Podman keeps per
machine is made per host here: storage (graphroot, runroot), the network
definitions (``network_config_dir``: each host's own "nodeos" network on its
own podCIDR), Podman's tmp_dir, and file locks under it instead of the
machine-wide shared-memory locks (a fresh tmp_dir makes Podman "refresh",
which frees every lock in the segment: other Podman users' too). The
machine's own containers.conf settings (runtime, ulimits) are carried over.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from nodeos.config import default_config, dump
from nodeos.daemon import NODE_NETWORK
from nodeos.sandbox.credentials import admin_pair, agent_pair, ca_path, node_pair
from nodeos.sandbox.layout import API_PORT, Host, Sandbox

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
    import tomli as tomllib

__all__ = ["base_containers_conf", "host_env", "write_host_files", "write_kubeconfig"]

HEARTBEAT_SECONDS = 5
_REPO_CONTAINERS_CONF = Path(__file__).resolve().parents[2] / "config" / "containers.conf"


def base_containers_conf() -> Path | None:
    """The machine's containers.conf for nodeos: $CONTAINERS_CONF, /etc/nodeos's, else the source tree's."""
    for candidate in (os.environ.get("CONTAINERS_CONF"), "/etc/nodeos/containers.conf", _REPO_CONTAINERS_CONF):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def host_env(host: Host) -> dict[str, str]:
    """The environment of the host's daemon and of Podman commands on its storage.

    The managed Podman service inherits the daemon's environment (adding
    CONTAINERS_CONF from ``[podman] containers_conf``), so storage.conf
    reaches it through CONTAINERS_STORAGE_CONF.
    """
    return {**os.environ, "CONTAINERS_CONF": str(host.containers_conf),
            "CONTAINERS_STORAGE_CONF": str(host.storage_conf)}


def write_host_files(sandbox: Sandbox, host: Host) -> None:
    for path in (host.dir, host.graphroot, host.runroot, host.podman_tmp, host.podman_socket.parent,
                 host.dir / "networks"):
        path.mkdir(parents=True, exist_ok=True)
    host.config.write_text(nodeos_config(sandbox, host))
    host.containers_conf.write_text(containers_conf(host))
    host.storage_conf.write_text(_toml({"storage": {
        "driver": "overlay", "graphroot": str(host.graphroot), "runroot": str(host.runroot)}}))


def nodeos_config(sandbox: Sandbox, host: Host) -> str:
    """The host's nodeos TOML, built and checked by nodeos.config's own schema."""
    agent: dict[str, Any] = {"address": host.ip, "heartbeat_seconds": HEARTBEAT_SECONDS}
    if host.role == "worker":
        pair, serving = node_pair(host), agent_pair(host)
        api: dict[str, Any] = {"server": sandbox.url, "ca_file": ca_path(sandbox), "cert_file": pair.cert_path,
                               "key_file": pair.key_path}
        agent.update(cert_file=serving.cert_path, key_file=serving.key_path)  # the agent port's, over TLS
    else:
        api = {"listen": f"0.0.0.0:{API_PORT}", "tls": True}  # its own agent's certificate comes from its CA
    config = default_config(
        node={"name": host.name, "role": host.role, "data_dir": host.dir / "data",
              "disable": [] if sandbox.network else list(NODE_NETWORK)},
        api=api,
        agent=agent,
        podman={"socket": host.podman_socket, "manage": True, "containers_conf": host.containers_conf},
        proxy={"mode": sandbox.proxy_mode},
    )
    return f"# nodeos sandbox {sandbox.dir}: host {host.name}\n" + dump(config)


def containers_conf(host: Host) -> str:
    base = base_containers_conf()
    data: dict[str, dict[str, Any]] = tomllib.loads(base.read_text()) if base else {}
    data.setdefault("engine", {}).update({
        "tmp_dir": str(host.podman_tmp), "lock_type": "file", "events_logger": "file"})
    data.setdefault("network", {})["network_config_dir"] = str(host.dir / "networks")
    return _toml(data)


def _toml(data: dict[str, dict[str, Any]]) -> str:
    """Tables of strings, numbers, booleans and lists of those: all containers.conf needs."""
    lines = []
    for table, keys in data.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
        lines.append("")
    return "\n".join(lines)


def write_kubeconfig(sandbox: Sandbox) -> None:
    """kubectl's way in: the master's TLS port, the cluster CA, the administrator's certificate (by path)."""
    pair = admin_pair(sandbox)
    sandbox.kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: sandbox\n  cluster:\n    server: {sandbox.url}\n"
        f"    certificate-authority: {ca_path(sandbox)}\n"
        f"users:\n- name: admin\n  user:\n    client-certificate: {pair.cert_path}\n"
        f"    client-key: {pair.key_path}\n"
        "contexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: admin\n"
        "current-context: sandbox\n")
