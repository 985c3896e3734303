"""The ``cluster-info`` ConfigMap: how a joining host finds the cluster's CA before it trusts anything.

kubeadm's discovery, in its layout: ConfigMap ``cluster-info`` in namespace
``kube-public``, key ``kubeconfig``, a kubeconfig with one cluster holding the
CA (``certificate-authority-data``) and a master's URL. Anyone may read it
(the authenticator lets anonymous callers GET exactly this object), because
it holds nothing secret. The joining host reads it over TLS *without*
verifying the server, then trusts it only if the CA's hash equals the one
the operator gave it (``--ca-hash sha256:…``, printed by ``nodeos token
create``): a man in the middle cannot forge a CA with that hash.

The hash is kubeadm's: SHA-256 of the CA certificate's SubjectPublicKeyInfo
(DER), so ``kubeadm``-style tooling and ``openssl`` compute the same value::

    openssl x509 -pubkey -in ca.crt | openssl pkey -pubin -outform der | sha256sum

Every master ensures the object when it serves TLS; with several masters the
first one's URL stays (any master answers a join), and a CA that changed is
written anew.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import TYPE_CHECKING, Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from nodeos.api.kinds import by_plural
from nodeos.errors import ApiError

if TYPE_CHECKING:
    from nodeos.api.registry import Registry
    from nodeos.config import Config

__all__ = [
    "CLUSTER_INFO",
    "NAMESPACE",
    "ca_from_kubeconfig",
    "ca_hash",
    "cluster_info",
    "ensure_cluster_info",
    "master_url",
]

log = logging.getLogger(__name__)
NAMESPACE = "kube-public"
CLUSTER_INFO = "cluster-info"
HASH_PREFIX = "sha256:"


def ca_hash(ca_pem: bytes) -> str:
    """``sha256:<hex>`` of the certificate's SubjectPublicKeyInfo; ValueError when it is not a PEM certificate."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return HASH_PREFIX + hashlib.sha256(spki).hexdigest()


def master_url(config: Config, advertise: str) -> str:
    """This master's secure port as other hosts reach it: the listen address, or the advertised one for a wildcard."""
    host = config.api.listen.host
    if host in ("", "0.0.0.0", "::"):
        host = advertise
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"https://{host}:{config.api.listen.port}"


def cluster_info(ca_pem: bytes, server: str) -> dict[str, Any]:
    """The ConfigMap, kubeadm's shape: a kubeconfig with the cluster and no user."""
    kubeconfig = yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "", "cluster": {"certificate-authority-data": base64.b64encode(ca_pem).decode(),
                                              "server": server}}],
        "contexts": [],
        "current-context": "",
        "preferences": {},
        "users": [],
    }, sort_keys=False)
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": CLUSTER_INFO, "namespace": NAMESPACE}, "data": {"kubeconfig": kubeconfig}}


def ca_from_kubeconfig(text: str) -> tuple[bytes, str]:
    """The CA (PEM) and server URL of cluster-info's kubeconfig; ValueError (one line) when it has none."""
    try:
        data = yaml.safe_load(text)
        cluster = data["clusters"][0]["cluster"]
        ca = base64.b64decode(cluster["certificate-authority-data"], validate=True)
        server = str(cluster.get("server") or "")
    except (yaml.YAMLError, KeyError, IndexError, TypeError, ValueError):
        raise ValueError("cluster-info holds no kubeconfig with a cluster's certificate-authority-data") from None
    return ca, server


async def ensure_cluster_info(registry: Registry, ca_pem: bytes, server: str) -> None:
    """Create cluster-info if missing; replace its CA if it names another. Safe on several masters at once."""
    configmaps = by_plural("", "v1", "configmaps")
    assert configmaps is not None
    wanted = cluster_info(ca_pem, server)
    await registry.sync()
    try:
        current = registry.get(configmaps, NAMESPACE, CLUSTER_INFO)
    except ApiError:
        current = None
    try:
        if current is None:
            await registry.create(configmaps, NAMESPACE, wanted)
            log.info("created ConfigMap %s/%s for joining hosts (server %s)", NAMESPACE, CLUSTER_INFO, server)
            return
        try:
            have, _ = ca_from_kubeconfig(str((current.obj.get("data") or {}).get("kubeconfig", "")))
        except ValueError:
            have = b""
        if have != ca_pem:
            wanted["metadata"]["resourceVersion"] = str(current.revision)
            await registry.update(configmaps, NAMESPACE, CLUSTER_INFO, wanted)
            log.warning("ConfigMap %s/%s named another CA: written anew with this master's", NAMESPACE,
                        CLUSTER_INFO)
    except ApiError as exc:
        if exc.reason not in ("AlreadyExists", "Conflict"):
            raise  # another master did it at the same moment otherwise

