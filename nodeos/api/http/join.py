"""``POST /nodeos/v1/join``: a bootstrap token's holder trades it, once, for a node credential.

The caller is a bootstrap user (``system:bootstrap:<id>``, authenticated by
its token: nodeos.api.auth.bootstrap) and sends ``{"nodeName", "csr",
"servingCsr"}`` — PEM certificate signing requests whose keys never leave the
new host: one for its client certificate, one for its agent port. The
server checks the CSR (its signature, an RSA key of 2048 bits or more or an
EC key, a node name that is a DNS-1123 subdomain), consumes the token (a
compare-and-swap: a second join with it gets 401), and signs a client
certificate for ``system:node:<name>`` in ``system:nodes`` — whatever subject
the CSR asked for, the server decides who the node is — and a serving
certificate for its agent (usage server, the same subject, SANs the node
name and the IP addresses the serving CSR lists: the address the API server
will dial). As with kubelet serving certificates, the node's claimed
address is trusted at join time: the token's holder is trusted to be that
host, and a wrong address only makes its own agent unreachable.

The answer carries all the worker needs to write its config: the
certificates, the CA, the masters' URLs (this master's first, then those in
the ``kubernetes`` Endpoints), the cluster's ranges and DNS domain. No shared
secret: the API server reaches the agent with its own client certificate
(nodeos.api.agents), which the agent checks (nodeos.agent.tls).

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

__all__ = ["JOIN_PATH", "NODES_GROUP", "NODE_USER_PREFIX", "JoinHandler", "check_csr", "node_user", "serving_ips",
           "start_join"]

JOIN_PATH = "/nodeos/v1/join"
NODE_USER_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
MIN_RSA_BITS = 2048
ENDPOINTS = by_plural("", "v1", "endpoints")
NODES = by_plural("", "v1", "nodes")


def node_user(name: str) -> str:
    return NODE_USER_PREFIX + name


def check_csr(pem: str, node_name: str, field: str = "csr") -> x509.CertificateSigningRequest:
    """The CSR, if it may become the node's certificate; ApiError 400 naming the first problem otherwise."""
    problems = is_dns1123_subdomain(node_name) if node_name else ["must not be empty"]
    if problems:
        raise _invalid(f"nodeName {json.dumps(node_name)}: {problems[0]}")
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
    except ValueError:
        raise _invalid(f"{field}: not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise _invalid(f"{field}: its signature does not match its key")
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise _invalid(f"{field}: an RSA key of {key.key_size} bits is too weak; use {MIN_RSA_BITS} or more, "
                           "or EC")
    elif not isinstance(key, ec.EllipticCurvePublicKey):
        raise _invalid(f"{field}: the key must be RSA (2048 bits or more) or EC")
    return csr


def serving_ips(csr: x509.CertificateSigningRequest) -> list[str]:
    """The IP addresses the serving CSR lists (its DNS names are ignored: the node name is the one)."""
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = None
    ips = [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] if sans is not None else []
    if not ips:
        raise _invalid("servingCsr: it must list the node's address (an IP SAN): the API server dials it there")
    return ips


@dataclass(frozen=True)
class ClusterFacts:
    """What a worker's config must agree on with the masters: given by the master's config."""

    service_cidr: str
    pod_cidr: str
    node_cidr_size: int
    dns_domain: str


class JoinHandler:
    def __init__(self, registry: Registry, tokens: BootstrapTokens, pki_directory: Path, facts: ClusterFacts,
                 own_url: str) -> None:
        self.registry = registry
        self.tokens = tokens
        self.pki_directory = pki_directory
        self.facts = facts
        self.own_url = own_url

    async def handle(self, req: Request, user: User | None, send: Send) -> None:
        if req.method != "POST":
            raise ApiError.method_not_allowed("the join takes a POST")
        if user is None or BOOTSTRAP_GROUP not in user.groups or not user.name.startswith(USER_PREFIX):
            raise ApiError.forbidden("the join is for bootstrap tokens only (system:bootstrappers): "
                                     "get one with nodeos token create on a master")
        body = await req.document()
        if not isinstance(body, dict):
            raise _invalid('the body must be a JSON object {"nodeName": ..., "csr": ..., "servingCsr": ...}')
        name, pem, serving_pem = body.get("nodeName"), body.get("csr"), body.get("servingCsr")
        if not isinstance(name, str) or not isinstance(pem, str) or not isinstance(serving_pem, str):
            raise _invalid("nodeName, csr and servingCsr must be strings (servingCsr: the agent port's, "
                           "from a nodeos join of this version)")
        csr = check_csr(pem, name)
        serving = check_csr(serving_pem, name, "servingCsr")
        ips = serving_ips(serving)
        self._refuse_a_live_node(name)
        # Signed before the token is spent: a CA that cannot sign must not cost the operator the token.
        ca_pem, cert_pem, serving_cert_pem = await trio.to_thread.run_sync(self._sign, csr, serving, ips, name)
        await self.tokens.consume(user.name.removeprefix(USER_PREFIX), name)
        await send_json(send, 200, {
            "kind": "JoinResponse", "apiVersion": "nodeos/v1",
            "certificate": cert_pem, "servingCertificate": serving_cert_pem, "ca": ca_pem,
            "servers": self._servers(),
            "cluster": {"service_cidr": self.facts.service_cidr, "pod_cidr": self.facts.pod_cidr,
                        "node_cidr_size": self.facts.node_cidr_size, "dns_domain": self.facts.dns_domain},
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

    def _sign(self, csr: x509.CertificateSigningRequest, serving: x509.CertificateSigningRequest, ips: list[str],
              name: str) -> tuple[str, str, str]:
        """The CA, the node's client certificate and its agent's serving certificate, as PEM."""
        ca = load_ca(self.pki_directory)
        cert = sign_public_key(ca, csr.public_key(), common_name=node_user(name), organizations=(NODES_GROUP,),
                               usage="client")
        serving_cert = sign_public_key(ca, serving.public_key(), common_name=node_user(name),
                                       organizations=(NODES_GROUP,), dns_names=[name], ips=ips, usage="server")
        pem = serialization.Encoding.PEM
        return (ca.cert.public_bytes(pem).decode(), cert.public_bytes(pem).decode(),
                serving_cert.public_bytes(pem).decode())

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


async def start_join(config: Config, registry: Registry, tokens: BootstrapTokens, advertise: str) -> JoinHandler:
    """The join endpoint of a TLS master, with cluster-info ensured for the hosts that will call it."""
    own_url = master_url(config, advertise)
    ca_pem = await trio.Path(pki_dir(config) / "ca.crt").read_bytes()
    await ensure_cluster_info(registry, ca_pem, own_url)
    facts = ClusterFacts(str(config.cluster.service_cidr), str(config.cluster.pod_cidr),
                         config.cluster.node_cidr_size, config.dns.domain)
    return JoinHandler(registry, tokens, pki_dir(config), facts, own_url)
