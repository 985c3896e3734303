"""The sandbox's credentials: the cluster CA, a node certificate per worker, and the administrator's.

The master serves its API over TLS only (an insecure port is loopback-only),
so the workers and the root namespace need certificates from the cluster CA.
The sandbox plays the operator who holds that CA: it makes it in the
master's data dir before anything starts and issues each worker the
certificate ``nodeos join`` would give it — CN ``system:node:<name>``, O
``system:nodes`` — so node restriction confines the sandbox's workers
exactly as on a real fleet (the join itself is exercised by the package
test), and its agent port's serving certificate (SANs its name and address),
as the join's serving CSR would: the API server reaches the workers' agents
over TLS with its own client certificate, no shared token. The
administrator's certificate (``system:masters``) is what the kubeconfig and
``up``'s readiness poll use.

Blocking file I/O and key generation: the sandbox's commands are synchronous.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from nodeos.pki import KeyPair, ensure_ca, ensure_certificate
from nodeos.sandbox.layout import Host, Sandbox

__all__ = ["admin_client", "admin_pair", "agent_pair", "ca_path", "ensure_credentials", "node_pair"]

NODES_GROUP = "system:nodes"
MASTERS_GROUP = "system:masters"
ADMIN_NAME = "sandbox-admin"


def _master_pki(sandbox: Sandbox) -> Path:
    return sandbox.master.dir / "data" / "pki"  # the master's [node] data_dir/pki: nodeos.api.tls.pki_dir


def ca_path(sandbox: Sandbox) -> Path:
    return _master_pki(sandbox) / "ca.crt"


def node_pair(host: Host) -> KeyPair:
    directory = host.dir / "data" / "pki"
    return KeyPair(directory / "node.crt", directory / "node.key")


def agent_pair(host: Host) -> KeyPair:
    directory = host.dir / "data" / "pki"
    return KeyPair(directory / "agent.crt", directory / "agent.key")


def admin_pair(sandbox: Sandbox) -> KeyPair:
    return KeyPair(sandbox.dir / f"{ADMIN_NAME}.crt", sandbox.dir / f"{ADMIN_NAME}.key")


def ensure_credentials(sandbox: Sandbox) -> None:
    """The CA (kept if the master's data dir has one), each worker's node and agent certificates, the admin's."""
    ca = ensure_ca(_master_pki(sandbox))
    for host in sandbox.hosts:
        if host.role == "worker":
            pair = node_pair(host)
            ensure_certificate(ca, pair.cert_path.parent, "node", common_name=f"system:node:{host.name}",
                               organizations=(NODES_GROUP,), usage="client")
            ensure_certificate(ca, pair.cert_path.parent, "agent", common_name=f"system:node:{host.name}",
                               organizations=(NODES_GROUP,), dns_names=[host.name], ips=[host.ip], usage="server")
    ensure_certificate(ca, sandbox.dir, ADMIN_NAME, common_name=ADMIN_NAME, organizations=(MASTERS_GROUP,),
                       usage="client")


def admin_client(sandbox: Sandbox, timeout: float) -> httpx.Client:
    """An httpx client of the master's API as the administrator, trusting the cluster CA only."""
    context = ssl.create_default_context(cafile=str(ca_path(sandbox)))
    pair = admin_pair(sandbox)
    context.load_cert_chain(str(pair.cert_path), str(pair.key_path))
    return httpx.Client(verify=context, timeout=timeout)
