"""How a node's components log in to remote masters: ``[api] ca_file``, ``cert_file``, ``key_file``.

``nodeos join`` writes a worker's credentials (nodeos.cli.join): the cluster
CA, and a client certificate ``system:node:<name>`` in ``system:nodes`` with
its key. The node's components (agent, proxy, overlay, DNS) use them for the
https URLs of ``[api] servers``: the CA alone is trusted for them (as kubectl
trusts a kubeconfig's CA); without ``ca_file`` an https server is verified
against the system's CAs. Plain-http servers (insecure ports on loopback, the
test clusters) need none of this. The agent's own port (logs, exec, stats)
serves ``[agent] cert_file`` / ``key_file`` (also written by the join) and
answers only the API server's client certificate (nodeos.agent.tls).

``check_credentials`` reads the files once before the daemon starts, so a
missing or unreadable one is one line and exit 2, not a restart loop.
"""

from __future__ import annotations

import ssl

from nodeos.client import Connection
from nodeos.config import Config
from nodeos.errors import ConfigError

__all__ = ["check_credentials", "remote_connection"]


def remote_connection(config: Config, server: str) -> Connection:
    """A Connection to a remote master with this node's credentials (none: plain http, system CAs)."""
    api = config.api
    cert = (str(api.cert_file), str(api.key_file)) if api.cert_file and api.key_file else None
    return Connection(server=server, verify=str(api.ca_file) if api.ca_file else True, cert=cert)


def check_credentials(config: Config) -> None:
    """ConfigError (one line naming the key and file) when the credential files cannot be used."""
    api, where = config.api, config.source or "<config>"
    agent = config.agent
    for key, path in (("[api] ca_file", api.ca_file), ("[api] cert_file", api.cert_file),
                      ("[api] key_file", api.key_file), ("[agent] cert_file", agent.cert_file),
                      ("[agent] key_file", agent.key_file)):
        if path is None:
            continue
        try:
            path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{where}: {key}: {path}: cannot read: {exc.strerror}") from None
    try:
        context = ssl.create_default_context(cafile=str(api.ca_file) if api.ca_file else None)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"{where}: [api] ca_file: {api.ca_file}: not a PEM CA certificate ({_reason(exc)})") from None
    for section, cert, key in (("api", api.cert_file, api.key_file), ("agent", agent.cert_file, agent.key_file)):
        if cert and key:
            try:
                context.load_cert_chain(str(cert), str(key))
            except (ssl.SSLError, ValueError) as exc:
                raise ConfigError(f"{where}: [{section}] cert_file: {cert} with key_file {key}: not a usable "
                                  f"certificate and key ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc).lower().replace("_", " ")
