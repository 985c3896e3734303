"""The API server's certificates: the cluster CA, its serving certificate, and client certificates.

Why here and not in each caller: the master's start, ``nodeos kubeconfig``
and the node's own components all need the same files in the same place,
``<data_dir>/pki`` (where ``nodeos etcd`` keeps the cluster CA too), so a
master with a CA — made by etcd's bootstrap or by an earlier start — reuses
it and every credential it ever issued stays valid.

The serving certificate names every way a client may reach this master:
the host and node names, the node's addresses, loopback, and the
``kubernetes`` Service (its ClusterIP, the first address of service_cidr,
and its DNS names). It is issued anew when that list changes (a new
address) or it nears expiry (``nodeos.pki.ensure_certificate``).

Everything here blocks (files, key generation): call it from a thread.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from nodeos.client import Connection
from nodeos.config import Config
from nodeos.pki import CertificateAuthority, KeyPair, PkiError, ensure_ca, ensure_certificate, load_ca

__all__ = ["MASTERS_GROUP", "ServingFiles", "check_files", "client_certificate", "ensure_serving", "local_connection",
           "local_url", "pki_dir", "serving_names"]

MASTERS_GROUP = "system:masters"  # Kubernetes' group of administrators, which authorization will honour
SERVING_NAME = "apiserver"


@dataclass(frozen=True)
class ServingFiles:
    """What the TLS listener loads: its certificate and key, and the CA that client certificates must chain to."""

    ca_path: Path
    cert_path: Path
    key_path: Path


def pki_dir(config: Config) -> Path:
    return config.node.data_dir / "pki"


def serving_names(config: Config, addresses: list[str]) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses the serving certificate must hold."""
    domain = config.dns.domain
    dns = [socket.gethostname().lower(), config.node.name, "localhost", "kubernetes", "kubernetes.default",
           "kubernetes.default.svc", f"kubernetes.default.svc.{domain}"]
    listen_host = config.api.listen.host
    ips = ["127.0.0.1", str(_first_address(config.cluster.service_cidr)), *addresses]
    if _is_ip(listen_host) and not ipaddress.ip_address(listen_host).is_unspecified:
        ips.append(listen_host)
    elif not _is_ip(listen_host) and listen_host:
        dns.append(listen_host)
    return list(dict.fromkeys(d for d in dns if _valid_dns(d))), list(dict.fromkeys(ips))


def ensure_serving(config: Config, addresses: list[str]) -> ServingFiles:
    """The CA (made on the first start) and a serving certificate that fits ``serving_names``."""
    directory = pki_dir(config)
    ca = ensure_ca(directory)
    dns, ips = serving_names(config, addresses)
    pair = ensure_certificate(ca, directory, SERVING_NAME, common_name="nodeos-apiserver", dns_names=dns, ips=ips,
                              usage="server")
    return ServingFiles(ca.cert_path, pair.cert_path, pair.key_path)


def check_files(config: Config) -> None:
    """PkiError (one line naming the file) when the CA or serving files there cannot be used.

    For the daemon's start: a bad file found only inside the API server
    would be a crash-and-restart loop instead of the operator's one line.
    Absent files are fine: the first start makes them — except a CA gone
    while a certificate it signed is still there: a new CA would silently
    void every credential the old one issued (kubeconfigs, joined nodes).
    """
    directory = pki_dir(config)
    if directory.exists() and not directory.is_dir():
        raise PkiError(f"{directory}: not a directory (the cluster CA and the API's certificates go there)")
    cert, key = directory / f"{SERVING_NAME}.crt", directory / f"{SERVING_NAME}.key"
    if (directory / "ca.crt").exists() or (directory / "ca.key").exists():
        load_ca(directory)
    elif cert.exists():
        raise PkiError(f"{directory / 'ca.crt'}: missing, with ca.key, though {cert.name} it signed is there: "
                       f"restore the cluster CA, or remove {directory} for a new one (voiding every credential "
                       "the old one issued)")
    for path, load in ((cert, _load_cert), (key, _load_key)):
        if path.exists():
            load(path)


def _load_cert(path: Path) -> None:
    try:
        x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise PkiError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError:
        raise PkiError(f"{path}: not a PEM certificate") from None


def _load_key(path: Path) -> None:
    try:
        serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise PkiError(f"{path}: cannot read: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise PkiError(f"{path}: not an unencrypted PEM private key") from None


def client_certificate(config: Config, name: str, user: str, groups: tuple[str, ...] = ()) -> KeyPair:
    """A client certificate for ``user`` in ``groups`` (CN and O, Kubernetes' rule) from the cluster CA.

    Kept while it fits (same subject, not near expiry), so asking twice hands out the same credential.
    """
    ca = load_ca(pki_dir(config))
    return _ensure_client(ca, pki_dir(config), name, user, groups)


def local_url(config: Config) -> str:
    """This master's secure port as its own components reach it: a wildcard listen over loopback."""
    address = config.api.listen
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(address.host, address.host)
    return f"https://[{host}]:{address.port}" if ":" in host else f"https://{host}:{address.port}"


def local_connection(config: Config) -> Connection:
    """How this node's own components (scheduler, controllers, agent) reach its secure port.

    They log in with a client certificate of the node, CN ``system:nodeos:<node>``
    in ``system:masters``, kept in the pki directory and reissued when it nears expiry.
    """
    ca = ensure_ca(pki_dir(config))
    pair = _ensure_client(ca, pki_dir(config), "node-components", f"system:nodeos:{config.node.name}",
                          (MASTERS_GROUP,))
    return Connection(server=local_url(config), verify=str(ca.cert_path),
                      cert=(str(pair.cert_path), str(pair.key_path)))


def _ensure_client(ca: CertificateAuthority, directory: Path, name: str, user: str,
                   groups: tuple[str, ...]) -> KeyPair:
    if not user or "/" in name or not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise PkiError(f"{user!r}: not a user name nodeos can issue a certificate for")
    return ensure_certificate(ca, directory, name, common_name=user, organizations=groups, usage="client")


def _first_address(cidr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return next(ipaddress.ip_network(cidr, strict=False).hosts())


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _valid_dns(name: str) -> bool:
    return bool(name) and bool(re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", name))
