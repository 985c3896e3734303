"""The cluster CA: one certificate authority per cluster, and the certificates it issues.

Why our own CA: every TLS link inside the cluster (etcd peers now, the API
server and its clients later) trusts exactly this CA and nothing else, as
k3s' and kubeadm's do. It lives in a directory (``<data_dir>/pki`` on a
master) as ``ca.crt`` and ``ca.key``; a certificate is ``NAME.crt`` beside
its ``NAME.key``. Keys are ECDSA P-256 (small, fast, accepted by etcd, Go
and OpenSSL alike) and written 0600; certificates 0644.

Usages: ``server`` (serverAuth), ``client`` (clientAuth), ``peer`` (both: an
etcd member is the server of some links and the client of others).

``ensure_ca`` and ``ensure_certificate`` are safe to repeat: an existing CA
is loaded, never replaced (replacing it would orphan every certificate in the
cluster), and an existing certificate is kept while it is signed by this CA,
names the same hosts, has the same usages and is not within ``RENEW_BEFORE``
of expiring; otherwise it is issued anew. Files are replaced atomically so a
reader never sees half a key.

Errors: unreadable or malformed files raise ``PkiError`` naming the file.
Everything here blocks (files, key generation): call it from a thread in
async code.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nodeos.errors import ConfigError

__all__ = [
    "CA_DAYS",
    "CERT_DAYS",
    "RENEW_BEFORE",
    "CertificateAuthority",
    "KeyPair",
    "PkiError",
    "Usage",
    "ensure_ca",
    "ensure_certificate",
    "issue_certificate",
    "load_ca",
    "sign_public_key",
]

Usage = Literal["server", "client", "peer"]
_USAGES: dict[str, tuple[x509.ObjectIdentifier, ...]] = {
    "server": (ExtendedKeyUsageOID.SERVER_AUTH,),
    "client": (ExtendedKeyUsageOID.CLIENT_AUTH,),
    "peer": (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
}
CA_DAYS = 3650
CERT_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=90)


class PkiError(ConfigError):
    """A CA or certificate file that is missing, unreadable or malformed."""


@dataclass(frozen=True)
class KeyPair:
    """Where a certificate and its key are."""

    cert_path: Path
    key_path: Path


@dataclass(frozen=True)
class CertificateAuthority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    paths: KeyPair

    @property
    def cert_path(self) -> Path:
        return self.paths.cert_path

    def signed(self, cert: x509.Certificate) -> bool:
        """Whether ``cert`` was issued by this CA (its signature checks out with our key)."""
        try:
            cert.verify_directly_issued_by(self.cert)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True


def _pair(directory: Path, name: str) -> KeyPair:
    return KeyPair(directory / f"{name}.crt", directory / f"{name}.key")


def load_ca(directory: Path) -> CertificateAuthority:
    """The CA in ``directory``; PkiError when it is not there or not a CA."""
    paths = _pair(directory, "ca")
    missing = [p for p in (paths.cert_path, paths.key_path) if not p.exists()]
    if missing:
        raise PkiError(f"{missing[0]}: no such file: the cluster CA is not in {directory}")
    cert, key = _load_cert(paths.cert_path), _load_key(paths.key_path)
    if key.public_key() != cert.public_key():
        raise PkiError(f"{paths.key_path}: does not belong to {paths.cert_path}")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise PkiError(f"{paths.cert_path}: not a CA certificate")
    return CertificateAuthority(cert, key, paths)


def ensure_ca(directory: Path, common_name: str = "nodeos-ca") -> CertificateAuthority:
    """Load the CA in ``directory``, or create it there if neither file exists.

    Half a CA (a certificate without its key, or the reverse) is an error,
    not a reason to make a new one: the other half is somewhere, and a new CA
    would not be trusted by the members that hold the old one.
    """
    paths = _pair(directory, "ca")
    if paths.cert_path.exists() or paths.key_path.exists():
        return load_ca(directory)
    _make_dir(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))  # tolerate clocks slightly behind
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(paths.key_path, _key_pem(key), 0o600)
    _write(paths.cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return CertificateAuthority(cert, key, paths)


def issue_certificate(ca: CertificateAuthority, directory: Path, name: str, *, common_name: str,
                      dns_names: Iterable[str] = (), ips: Iterable[str] = (),
                      usage: Usage = "server", days: int = CERT_DAYS, organizations: Iterable[str] = ()) -> KeyPair:
    """Issue a new key and certificate as ``directory/NAME.{crt,key}``, replacing what is there.

    ``organizations`` become the subject's O attributes: a client certificate's groups, in Kubernetes' rule.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    cert = sign_public_key(ca, key.public_key(), common_name=common_name, dns_names=dns_names, ips=ips,
                           usage=usage, days=days, organizations=organizations)
    _make_dir(directory)
    pair = _pair(directory, name)
    _write(pair.key_path, _key_pem(key), 0o600)
    _write(pair.cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return pair


def sign_public_key(ca: CertificateAuthority, public_key: CertificatePublicKeyTypes, *, common_name: str,
                    dns_names: Iterable[str] = (), ips: Iterable[str] = (), usage: Usage = "server",
                    days: int = CERT_DAYS, organizations: Iterable[str] = ()) -> x509.Certificate:
    """A certificate of ``ca`` for a key someone else holds (a joining node's CSR: its key never leaves it)."""
    if usage not in _USAGES:
        raise ValueError(f"usage {usage!r} is not one of {', '.join(_USAGES)}")
    now = _now()
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dict.fromkeys(dns_names)]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in dict.fromkeys(ips)]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_subject(common_name, organizations))
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), ca.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(list(_USAGES[usage])), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def ensure_certificate(ca: CertificateAuthority, directory: Path, name: str, *, common_name: str,
                       dns_names: Iterable[str] = (), ips: Iterable[str] = (),
                       usage: Usage = "server", organizations: Iterable[str] = ()) -> KeyPair:
    """The certificate ``directory/NAME``, issued anew only when the one there does not fit.

    It fits when it is signed by ``ca``, matches its key, names exactly these
    hosts with this usage, and has more than ``RENEW_BEFORE`` left.
    """
    dns_names, ips, organizations = list(dns_names), list(ips), list(organizations)
    pair = _pair(directory, name)
    if pair.cert_path.exists() and pair.key_path.exists() and _fits(
            ca, pair, _subject(common_name, organizations), dns_names, ips, usage):
        return pair
    return issue_certificate(ca, directory, name, common_name=common_name, dns_names=dns_names, ips=ips,
                             usage=usage, organizations=organizations)


def _subject(common_name: str, organizations: Iterable[str] = ()) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations)])


def _fits(ca: CertificateAuthority, pair: KeyPair, subject: x509.Name, dns_names: list[str], ips: list[str],
          usage: Usage) -> bool:
    cert, key = _load_cert(pair.cert_path), _load_key(pair.key_path)
    if key.public_key() != cert.public_key() or not ca.signed(cert):
        return False
    if cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        return False
    if cert.subject != subject:
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])  # a client certificate names no hosts
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    have_ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return (set(san.get_values_for_type(x509.DNSName)) == set(dns_names)
            and have_ips == {str(ipaddress.ip_address(ip)) for ip in ips}
            and set(eku) == set(_USAGES[usage]))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise PkiError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError:
        raise PkiError(f"{path}: not a PEM certificate") from None


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise PkiError(f"{path}: cannot read: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise PkiError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{path}: not an ECDSA key, which is what nodeos issues")
    return key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _make_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise PkiError(f"{directory}: cannot create: {exc.strerror}") from None


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a temporary file with ``mode`` from the start, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.fchmod(fd, mode)  # O_CREAT's mode is filtered by the umask, and the file may have existed
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise PkiError(f"{path}: cannot write: {exc.strerror}") from None
