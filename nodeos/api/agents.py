"""How the API server reaches a node's agent: the URL, and the credential it presents there.

Three parts of the API server talk to the agents — pods' logs and exec
(``nodeos.api.http.podproxy``), the node proxy (``nodeproxy``) and the
metrics API (``nodeos.api.metrics.agents``) — and all of them dial through
one ``AgentDialer``, so the scheme and the credential are decided once:

- a TLS master dials HTTPS: it verifies the agent's certificate against the
  cluster CA alone, with the hostname check against the address it dials
  (the node's InternalIP, an IP SAN of the agent's certificate), and
  presents its own client certificate in ``system:masters``
  (``<pki>/apiserver-agent-client.crt``), the only one agents answer
  (``nodeos.agent.tls``);
- a plain-HTTP master (test clusters on loopback) sends the shared agent
  token (``nodeos.agent.token``) over HTTP, as before.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from nodeos.api.tls import MASTERS_GROUP, client_certificate, pki_dir
from nodeos.config import Config
from nodeos.errors import ApiError

__all__ = ["CLIENT_CERT_NAME", "CLIENT_USER", "DEFAULT_AGENT_PORT", "AgentDialer", "agent_address", "host_port",
           "reachable", "tls_dialer"]

CLIENT_CERT_NAME = "apiserver-agent-client"
CLIENT_USER = "system:nodeos:apiserver"
DEFAULT_AGENT_PORT = 10250


@dataclass(frozen=True)
class AgentDialer:
    """The scheme and credential for the nodes' agents: a TLS ``context`` (with the client certificate
    loaded) or a bearer ``token`` over plain HTTP."""

    token: str | None = None
    context: ssl.SSLContext | None = None

    @property
    def scheme(self) -> str:
        return "http" if self.context is None else "https"

    def address(self, node: dict[str, Any]) -> tuple[str, int]:
        """Where the node's agent listens (ApiError 400 when the node has no address)."""
        return agent_address(node)

    def url(self, node: dict[str, Any], path: str) -> str:
        """The URL of ``path`` (already quoted) on the node's agent."""
        return f"{self.scheme}://{host_port(*self.address(node))}/{path.lstrip('/')}"

    def headers(self) -> dict[str, str]:
        return {} if self.token is None else {"Authorization": f"Bearer {self.token}"}

    def http_client(self, **options: Any) -> httpx.AsyncClient:
        """An httpx client for agents; plain HTTP passes verify=False only to spare loading the CA bundle."""
        return httpx.AsyncClient(verify=self.context or False, headers=self.headers(), **options)

    async def open_stream(self, host: str, port: int) -> trio.abc.Stream:
        """A connection to an agent, TLS handshake done (a WebSocket goes over it); OSError or
        trio.BrokenResourceError (the agent's certificate does not verify) when it fails."""
        stream = await trio.open_tcp_stream(host, port)
        if self.context is None:
            return stream
        secure = trio.SSLStream(stream, self.context, server_hostname=host)
        try:
            await secure.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
        return secure


def reachable(dialer: AgentDialer | None) -> AgentDialer:
    """``dialer``, or ApiError 503 for an API server made without one (it cannot reach the agents)."""
    if dialer is None:
        raise ApiError.unavailable("this API server has no agent credential: it cannot reach the nodes' agents")
    return dialer


def tls_dialer(config: Config) -> AgentDialer:
    """A TLS master's dialer: the cluster CA, and its ``system:masters`` client certificate for agents
    (issued into its pki at the first start, reissued near expiry). Blocking: call from a thread."""
    pair = client_certificate(config, CLIENT_CERT_NAME, CLIENT_USER, (MASTERS_GROUP,))
    context = ssl.create_default_context(cafile=str(pki_dir(config) / "ca.crt"))
    context.load_cert_chain(str(pair.cert_path), str(pair.key_path))
    return AgentDialer(context=context)


def agent_address(node: dict[str, Any]) -> tuple[str, int]:
    """Where the node's agent listens: its InternalIP (else ExternalIP, Hostname) and kubelet port."""
    status = node.get("status") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or [] if isinstance(a, dict)}
    host = addresses.get("InternalIP") or addresses.get("ExternalIP") or addresses.get("Hostname")
    if not host:
        raise ApiError.bad_request(f'node "{node["metadata"]["name"]}" has no address to reach its agent at')
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    return host, port if isinstance(port, int) and port > 0 else DEFAULT_AGENT_PORT


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
