"""This node's etcd member: where its files are, its URLs, its certificates, how it first starts.

Layout under ``[node] data_dir``::

    pki/ca.crt, ca.key            the cluster CA (nodeos.pki), made by `nodeos etcd init`
    pki/etcd-peer.{crt,key}       this member's peer certificate (server and client auth)
    pki/etcd-server.{crt,key}     its client-port certificate, with [etcd] client_tls only
    pki/etcd-client.{crt,key}     a client certificate for nodeos' own use of etcd (store, CLI)
    etcd/                         etcd's --data-dir
    etcd-bootstrap.json           how the member starts the first time (see Bootstrap)

Why a bootstrap file: etcd reads ``--initial-cluster`` and
``--initial-cluster-state`` only when its data directory is empty; afterwards
the membership lives in its own data. ``nodeos etcd init``/``join`` decide
these once (a new cluster, or joining one after member add) and the daemon
reads the decision back, so the systemd unit needs no per-node flags.

Certificates are checked and (re)issued at every start from the CA in
``pki/``, so a changed advertise address or a certificate close to expiry
is fixed by a restart; the CA itself is never made here except by ``init``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from nodeos import pki
from nodeos.config import Address, Config
from nodeos.errors import ConfigError

__all__ = ["BOOTSTRAP_FILE", "Bootstrap", "Certificates", "LocalMember"]

BOOTSTRAP_FILE = "etcd-bootstrap.json"
_WILDCARDS = ("0.0.0.0", "::")


@dataclass(frozen=True)
class Bootstrap:
    """How a member with an empty data directory starts: etcd's three --initial-cluster* flags."""

    state: Literal["new", "existing"]
    initial_cluster: dict[str, str]  # member name -> peer URL
    token: str

    @classmethod
    def new_cluster(cls, name: str, peer_url: str) -> Bootstrap:
        # A token per cluster keeps members of two clusters on one network from ever joining each other.
        return cls("new", {name: peer_url}, f"nodeos-{secrets.token_hex(8)}")

    def flags(self) -> list[str]:
        cluster = ",".join(f"{name}={url}" for name, url in self.initial_cluster.items())
        return [f"--initial-cluster={cluster}", f"--initial-cluster-state={self.state}",
                f"--initial-cluster-token={self.token}"]

    def write(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> Bootstrap:
        try:
            data = json.loads(path.read_text())
            return cls(data["state"], dict(data["initial_cluster"]), data["token"])
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: not a bootstrap file written by `nodeos etcd init|join`: {exc}") from None


@dataclass(frozen=True)
class Certificates:
    """The files etcd and its clients are given; ``server``/``client`` only with client TLS."""

    ca: Path
    peer: pki.KeyPair
    server: pki.KeyPair | None
    client: pki.KeyPair | None


@dataclass(frozen=True)
class LocalMember:
    name: str
    data_dir: Path
    client_listen: Address
    peer_listen: Address
    advertise: str
    client_tls: bool
    source: str = "<config>"

    @classmethod
    def from_config(cls, config: Config) -> LocalMember:
        etcd = config.etcd
        return cls(config.node.name, config.node.data_dir, etcd.client_listen, etcd.peer_listen,
                   etcd.advertise_address or etcd.peer_listen.host, etcd.client_tls,
                   str(config.source) if config.source else "<config>")

    # --- files ---

    @property
    def etcd_dir(self) -> Path:
        return self.data_dir / "etcd"

    @property
    def pki_dir(self) -> Path:
        return self.data_dir / "pki"

    @property
    def bootstrap_path(self) -> Path:
        return self.data_dir / BOOTSTRAP_FILE

    @property
    def initialized(self) -> bool:
        """Whether etcd has data here, after which it ignores the bootstrap flags."""
        return (self.etcd_dir / "member").is_dir()

    # --- URLs ---

    @property
    def peer_url(self) -> str:
        """What the other members dial: always TLS."""
        return f"https://{_host(self.advertise)}:{self.peer_listen.port}"

    @property
    def listen_peer_url(self) -> str:
        return f"https://{self.peer_listen}"

    @property
    def client_url(self) -> str:
        """The client URL this member advertises, and what nodeos on this node dials."""
        host = self.client_listen.host
        host = self.advertise if host in _WILDCARDS else host
        return f"{self._scheme}://{_host(host)}:{self.client_listen.port}"

    @property
    def listen_client_url(self) -> str:
        return f"{self._scheme}://{self.client_listen}"

    @property
    def _scheme(self) -> str:
        return "https" if self.client_tls else "http"

    # --- certificates ---

    def load_ca(self) -> pki.CertificateAuthority:
        """The cluster CA, which init makes and a joining master is given."""
        try:
            return pki.load_ca(self.pki_dir)
        except pki.PkiError as exc:
            raise pki.PkiError(
                f"{exc}. The first master makes it with `nodeos etcd init`; for another master copy "
                f"ca.crt and ca.key from the first master's {self.pki_dir.name}/ directory into "
                f"{self.pki_dir} (mode 0600 for the key) before `nodeos etcd join`") from None

    def certificates(self) -> Certificates:
        """Check or (re)issue this member's certificates from the cluster CA. Blocking."""
        ca = self.load_ca()
        names = [self.name, "localhost"]
        ips = [ip for ip in (self.advertise, "127.0.0.1", self.peer_listen.host, self.client_listen.host)
               if _is_ip(ip) and ip not in _WILDCARDS]
        peer = pki.ensure_certificate(ca, self.pki_dir, "etcd-peer", common_name=self.name,
                                      dns_names=names, ips=ips, usage="peer")
        server = client = None
        if self.client_tls:
            # Client auth too: etcd's own JSON gateway dials its gRPC port with this certificate.
            server = pki.ensure_certificate(ca, self.pki_dir, "etcd-server", common_name=self.name,
                                            dns_names=names, ips=ips, usage="peer")
            client = pki.ensure_certificate(ca, self.pki_dir, "etcd-client", common_name=f"nodeos-{self.name}",
                                            usage="client")
        return Certificates(ca.cert_path, peer, server, client)

    def client_files(self) -> Certificates | None:
        """The files a client of this member needs (CLI, store), if it speaks TLS; None for plain HTTP."""
        if not self.client_tls:
            return None
        return Certificates(self.pki_dir / "ca.crt", self._pair("etcd-peer"), self._pair("etcd-server"),
                            self._pair("etcd-client"))

    def store_config(self, other_client_urls: Sequence[str] = ()) -> str:
        """The [store] lines that put this master's objects in etcd through this member first.

        Why not a silent default: the operator decides whether a master
        fails over to the other members (list them) or lives and dies with
        its own member (list only it, as k3s does).
        """
        others = [url for url in other_client_urls if url != self.client_url and not _loopback_url(url)]
        endpoints = ", ".join(f'"{url}"' for url in [self.client_url, *others])
        lines = ["[store]", 'backend = "etcd"', f"etcd_endpoints = [{endpoints}]"]
        if self.client_tls:
            lines += [f'etcd_ca_file = "{self.pki_dir / "ca.crt"}"',
                      f'etcd_cert_file = "{self.pki_dir / "etcd-client.crt"}"',
                      f'etcd_key_file = "{self.pki_dir / "etcd-client.key"}"']
        return "\n".join(lines)

    def _pair(self, name: str) -> pki.KeyPair:
        return pki.KeyPair(self.pki_dir / f"{name}.crt", self.pki_dir / f"{name}.key")


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _loopback_url(url: str) -> bool:
    """A client URL on loopback means "this host": useless to another master."""
    host = urlsplit(url).hostname or ""
    return host == "localhost" or (_is_ip(host) and ipaddress.ip_address(host).is_loopback)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
