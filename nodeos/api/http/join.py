"""``POST /nodeos/v1/join``: a bootstrap token's holder trades it, once, for a node credential.

The caller is a bootstrap user (``system:bootstrap:<id>``, authenticated by
its token: nodeos.api.auth.bootstrap) and sends ``{"nodeName", "csr"}`` — a
PEM certificate signing request whose key never leaves the new host. The
server checks the CSR (its signature, an RSA key of 2048 bits or more or an
EC key, a node name that is a DNS-1123 subdomain), consumes the token (a
compare-and-swap: a second join with it gets 401), and signs a client
certificate for ``system:node:<name>`` in ``system:nodes`` — whatever subject
the CSR asked for, the server decides who the node is.

The answer carries all the worker needs to write its config: the
certificate, the CA, the masters' URLs (this master's first, then those in
the ``kubernetes`` Endpoints), the cluster's ranges and DNS domain, and the
master's agent token (the API server still uses that one shared token to
reach every agent for logs and exec — a known limit: a per-node agent
credential would be better).

Why a nodeos path and not Kubernetes' CertificateSigningRequest API: that API
needs an approver and a signer controller, and kubelet's TLS bootstrap
polls for approval; one synchronous request keeps the join one step while
keeping the same trust model (token → CSR → client certificate of the CA).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import trio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from nodeos.api.auth.bootstrap import BOOTSTRAP_GROUP, USER_PREFIX, BootstrapTokens
from nodeos.api.auth.user import User
from nodeos.api.clusterinfo import ensure_cluster_info, master_url
from nodeos.api.http.request import Request, Send, send_json
from nodeos.api.kinds import by_plural
from nodeos.api.model.validation import is_dns1123_subdomain
from nodeos.api.registry import Registry
from nodeos.api.tls import pki_dir
from nodeos.config import Config
from nodeos.errors import ApiError
from nodeos.pki import load_ca, sign_public_key

__all__ = ["JOIN_PATH", "NODES_GROUP", "NODE_USER_PREFIX", "JoinHandler", "check_csr", "node_user", "start_join"]

JOIN_PATH = "/nodeos/v1/join"
NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
MIN_RSA_BITS = 2048
ENDPOINTS = by_plural("", "v1", "endpoints")
NODES = by_plural("", "v1", "nodes")


def node_user(name: str) -> str:
    return NODE_USER_PREFIX + name


def check_csr(pem: str, node_name: str) -> x509.CertificateSigningRequest:
    """The CSR, if it may become the node's certificate; ApiError 400 naming the first problem otherwise."""
    problems = is_dns1123_subdomain(node_name) if node_name else ["must not be empty"]
    if problems:
        raise _invalid(f"nodeName {json.dumps(node_name)}: {problems[0]}")
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError:
        raise _invalid("csr: not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise _invalid("csr: its signature does not match its key")
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise _invalid(f"csr: an RSA key of {key.key_size} bits is too weak; use {MIN_RSA_BITS} or more, or EC")
    elif not isinstance(key, ec.EllipticCurvePublicKey):
        raise _invalid("csr: the key must be RSA (2048 bits or more) or EC")
    return csr


@dataclass(frozen=True)
class ClusterFacts:
    """What a worker's config must agree on with the masters: given by the master's config."""

    service_cidr: str
    pod_cidr: str
    node_cidr_size: int
    dns_domain: str


class JoinHandler:
    def __init__(self, registry: Registry, tokens: BootstrapTokens, pki_directory: Path, facts: ClusterFacts,
                 agent_token: str, own_url: str) -> None:
        self.registry = registry
        self.tokens = tokens
        self.pki_directory = pki_directory
        self.facts = facts
        self.agent_token = agent_token
        self.own_url = own_url

    async def handle(self, req: Request, user: User | None, send: Send) -> None:
        if req.method != "POST":
            raise ApiError.method_not_allowed("the join takes a POST")
        if user is None or BOOTSTRAP_GROUP not in user.groups or not user.name.startswith(USER_PREFIX):
            raise ApiError.forbidden("the join is for bootstrap tokens only (system:bootstrappers): "
                                     "get one with nodeos token create on a master")
        body = await req.document()
        if not isinstance(body, dict):
            raise _invalid("the body must be a JSON object {\"nodeName\": ..., \"csr\": ...}")
        name, pem = body.get("nodeName"), body.get("csr")
        if not isinstance(name, str) or not isinstance(pem, str):
            raise _invalid("nodeName and csr must be strings")
        csr = check_csr(pem, name)
        self._refuse_a_live_node(name)
        # Signed before the token is spent: a CA that cannot sign must not cost the operator the token.
        ca_pem, cert_pem = await trio.to_thread.run_sync(self._sign, csr, name)
        await self.tokens.consume(user.name.removeprefix(USER_PREFIX), name)
        await send_json(send, 200, {
            "kind": "JoinResponse", "apiVersion": "nodeos/v1",
            "certificate": cert_pem, "ca": ca_pem, "servers": self._servers(),
            "cluster": {"service_cidr": self.facts.service_cidr, "pod_cidr": self.facts.pod_cidr,
                        "node_cidr_size": self.facts.node_cidr_size, "dns_domain": self.facts.dns_domain},
            "agentToken": self.agent_token,
        })

    def _refuse_a_live_node(self, name: str) -> None:
        """A Ready Node of that name is another host: joining as it would take its identity (kubeadm refuses too)."""
        assert NODES is not None
        try:
            node = self.registry.get(NODES, None, name).obj
        except ApiError:
            return
        conditions = (node.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            raise ApiError(409, "AlreadyExists", f'a Ready node named "{name}" exists already: choose another '
                                                 "name with --name, or delete that Node first")

    def _sign(self, csr: x509.CertificateSigningRequest, name: str) -> tuple[str, str]:
        ca = load_ca(self.pki_directory)
        cert = sign_public_key(ca, csr.public_key(), common_name=node_user(name), organizations=(NODES_GROUP,),
                               usage="client")
        pem = serialization.Encoding.PEM
        return ca.cert.public_bytes(pem).decode(), cert.public_bytes(pem).decode()

    def _servers(self) -> list[str]:
        """This master first, then every master in the ``kubernetes`` Endpoints (its https port)."""
        assert ENDPOINTS is not None
        urls = [self.own_url]
        try:
            endpoints = self.registry.get(ENDPOINTS, "default", "kubernetes").obj
        except ApiError:
            return urls
        for subset in endpoints.get("subsets") or []:
            ports = [p.get("port") for p in subset.get("ports") or [] if isinstance(p.get("port"), int)]
            for address in subset.get("addresses") or []:
                ip = str(address.get("ip") or "")
                host = f"[{ip}]" if ":" in ip else ip
                urls += [f"https://{host}:{port}" for port in ports[:1] if ip]
        return list(dict.fromkeys(urls))


def _invalid(message: str) -> ApiError:
    return ApiError.bad_request(message)


async def start_join(config: Config, registry: Registry, tokens: BootstrapTokens, agent_token: str,
                     advertise: str) -> JoinHandler:
    """The join endpoint of a TLS master, with cluster-info ensured for the hosts that will call it."""
    own_url = master_url(config, advertise)
    ca_pem = await trio.Path(pki_dir(config) / "ca.crt").read_bytes()
    await ensure_cluster_info(registry, ca_pem, own_url)
    facts = ClusterFacts(str(config.cluster.service_cidr), str(config.cluster.pod_cidr),
                         config.cluster.node_cidr_size, config.dns.domain)
    return JoinHandler(registry, tokens, pki_dir(config), facts, agent_token, own_url)
