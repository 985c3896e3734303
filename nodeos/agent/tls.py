"""The agent port over TLS: which certificate it serves, and whom it answers.

On a TLS cluster the API server is the agent port's only client (logs,
exec, stats), as with the kubelet: the agent serves HTTPS with a
certificate of the cluster CA (CN ``system:node:<name>``, SANs the node
name and its InternalIP, which the API server dials and checks) and
answers only client certificates of that CA in ``system:masters`` — the
API server's own. A node's credential (``system:nodes``) is refused, so a
worker's root cannot reach other nodes' pods through their agents, and no
shared token exists to leak.

Where the certificate comes from:

- ``[agent] cert_file`` / ``key_file``: ``nodeos join`` (or the sandbox)
  wrote them; the CA that client certificates must chain to is ``[api]
  ca_file``, else the node's own ``<data_dir>/pki/ca.crt``;
- a master or all-in-one node with ``[api] tls`` holds the CA: it issues its
  own agent certificate into its pki (kept while it fits, like the API's);
- otherwise (test clusters, plain HTTP masters) the port stays plain HTTP
  with the shared agent token (``nodeos.agent.token``), exactly as before.

Everything here blocks (files, key generation): call it from a thread.
"""

from __future__ import annotations

from pathlib import Path

import trio

from nodeos.agent.token import agent_token
from nodeos.api.auth.certs import user_from_certificate
from nodeos.api.tls import MASTERS_GROUP, ServingFiles, pki_dir
from nodeos.config import Config
from nodeos.errors import ApiError, ConfigError
from nodeos.pki import ensure_ca, ensure_certificate

__all__ = ["AGENT_CERT_NAME", "agent_serving_files", "check_client", "port_credentials"]

AGENT_CERT_NAME = "agent"  # <pki>/agent.crt and agent.key
NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"


def agent_serving_files(config: Config, address: str) -> ServingFiles | None:
    """The agent port's TLS files, or None when it serves plain HTTP with the agent token."""
    agent = config.agent
    if agent.cert_file is not None and agent.key_file is not None:
        ca = config.api.ca_file or pki_dir(config) / "ca.crt"
        _readable(ca, "[api] ca_file" if config.api.ca_file else "the cluster CA", config)
        _readable(agent.cert_file, "[agent] cert_file", config)
        _readable(agent.key_file, "[agent] key_file", config)
        return ServingFiles(ca, agent.cert_file, agent.key_file)
    if config.node.role == "worker" or not config.api.tls:
        return None
    ca = ensure_ca(pki_dir(config))
    pair = ensure_certificate(ca, pki_dir(config), AGENT_CERT_NAME, common_name=NODE_USER_PREFIX + config.node.name,
                              organizations=(NODES_GROUP,), dns_names=[config.node.name], ips=[address],
                              usage="server")
    return ServingFiles(ca.cert_path, pair.cert_path, pair.key_path)


async def port_credentials(config: Config, address: str) -> tuple[str | None, ServingFiles | None]:
    """``(token, None)`` for plain HTTP or ``(None, files)`` for TLS: the agent token is made only where used."""
    files = await trio.to_thread.run_sync(agent_serving_files, config, address)
    if files is not None:
        return None, files
    return await trio.to_thread.run_sync(agent_token, config.node.data_dir), None


def check_client(der: bytes | None) -> None:
    """ApiError 401 (no client certificate) or 403 (not the API server's) unless ``der`` may use the agent.

    The TLS handshake has already verified the certificate against the
    cluster CA; what is left is who it names.
    """
    if not der:
        raise ApiError(401, "Unauthorized", "Unauthorized: the agent answers the API server's client "
                                            "certificate only")
    user = user_from_certificate(der)
    if user is None:
        raise ApiError(401, "Unauthorized", "Unauthorized")
    if MASTERS_GROUP not in user.groups:
        raise ApiError.forbidden(f'User "{user.name}" cannot reach this node\'s agent: only the API server '
                                 f"({MASTERS_GROUP}) may")


def _readable(path: Path, what: str, config: Config) -> None:
    try:
        path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{config.source or '<config>'}: {what}: {path}: cannot read: {exc.strerror}") from None
