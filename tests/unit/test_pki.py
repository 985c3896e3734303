"""The cluster CA: chains that verify, the names asked for, reuse, and clear errors for bad files."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import subprocess

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from nodeos import pki
from nodeos.errors import ConfigError


def _cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}


def test_a_new_ca_is_a_ca_with_a_private_key(tmp_path):
    ca = pki.ensure_ca(tmp_path / "pki")
    cert = _cert(tmp_path / "pki" / "ca.crt")
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (tmp_path / "pki" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "pki").stat().st_mode & 0o777 == 0o700
    assert ca.signed(cert)


def test_an_issued_certificate_verifies_against_the_ca_with_openssl(tmp_path):
    ca = pki.ensure_ca(tmp_path)
    pair = pki.issue_certificate(ca, tmp_path, "etcd-peer", common_name="m1", dns_names=["m1", "localhost"],
                                 ips=["127.0.0.1", "10.0.0.1"], usage="peer")
    result = subprocess.run(["openssl", "verify", "-CAfile", str(ca.cert_path), "-purpose", "sslserver",
                             str(pair.cert_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    result = subprocess.run(["openssl", "verify", "-CAfile", str(ca.cert_path), "-purpose", "sslclient",
                             str(pair.cert_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert pair.key_path.stat().st_mode & 0o777 == 0o600
    # Python's own TLS stack takes the pair and the CA as they are written.
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    context.load_cert_chain(pair.cert_path, pair.key_path)


def test_the_certificate_names_the_hosts_and_usage_asked_for(tmp_path):
    ca = pki.ensure_ca(tmp_path)
    pair = pki.issue_certificate(ca, tmp_path, "api", common_name="m1", dns_names=["m1"], ips=["10.0.0.1"],
                                 usage="server")
    cert = _cert(pair.cert_path)
    assert _sans(cert) == ({"m1"}, {"10.0.0.1"})
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    client = _cert(pki.issue_certificate(ca, tmp_path, "c", common_name="admin", usage="client").cert_path)
    assert list(client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=300)


def test_an_existing_ca_is_reused_not_replaced(tmp_path):
    first = pki.ensure_ca(tmp_path)
    second = pki.ensure_ca(tmp_path)
    assert first.cert == second.cert
    assert pki.load_ca(tmp_path).cert == first.cert


def test_a_fitting_certificate_is_kept_and_a_changed_one_reissued(tmp_path):
    ca = pki.ensure_ca(tmp_path)
    kwargs = {"common_name": "m1", "dns_names": ["m1"], "ips": ["127.0.0.1"], "usage": "peer"}
    pair = pki.ensure_certificate(ca, tmp_path, "peer", **kwargs)
    before = pair.cert_path.read_bytes()
    assert pki.ensure_certificate(ca, tmp_path, "peer", **kwargs).cert_path.read_bytes() == before
    # A new address: the certificate must name it.
    pki.ensure_certificate(ca, tmp_path, "peer", **{**kwargs, "ips": ["127.0.0.1", "10.0.0.9"]})
    assert _sans(_cert(pair.cert_path))[1] == {"127.0.0.1", "10.0.0.9"}
    # A certificate from another CA is not trusted by this cluster: reissued.
    other = pki.ensure_ca(tmp_path / "other")
    pki.issue_certificate(other, tmp_path, "peer", **kwargs)
    assert not ca.signed(_cert(pair.cert_path))
    pki.ensure_certificate(ca, tmp_path, "peer", **kwargs)
    assert ca.signed(_cert(pair.cert_path))


def test_ipv6_and_duplicate_names(tmp_path):
    ca = pki.ensure_ca(tmp_path)
    pair = pki.issue_certificate(ca, tmp_path, "x", common_name="x", dns_names=["a", "a"], ips=["::1", "::1"])
    dns, ips = _sans(_cert(pair.cert_path))
    assert dns == {"a"}
    assert ips == {str(ipaddress.ip_address("::1"))}


def test_half_a_ca_is_an_error_not_a_new_ca(tmp_path):
    pki.ensure_ca(tmp_path)
    (tmp_path / "ca.key").unlink()
    with pytest.raises(pki.PkiError, match=r"ca\.key: no such file"):
        pki.ensure_ca(tmp_path)
    assert isinstance(pki.PkiError("x"), ConfigError)


def test_a_missing_ca_is_named_with_its_directory(tmp_path):
    with pytest.raises(pki.PkiError, match=f"the cluster CA is not in {tmp_path}"):
        pki.load_ca(tmp_path)


@pytest.mark.parametrize(("file", "content", "message"), [
    ("ca.crt", b"garbage", r"ca\.crt: not a PEM certificate"),
    ("ca.key", b"garbage", r"ca\.key: not an unencrypted PEM private key"),
])
def test_malformed_files_are_named(tmp_path, file, content, message):
    pki.ensure_ca(tmp_path)
    (tmp_path / file).write_bytes(content)
    with pytest.raises(pki.PkiError, match=message):
        pki.load_ca(tmp_path)


def test_a_key_of_another_certificate_is_refused(tmp_path):
    pki.ensure_ca(tmp_path / "a")
    pki.ensure_ca(tmp_path / "b")
    (tmp_path / "a" / "ca.key").write_bytes((tmp_path / "b" / "ca.key").read_bytes())
    with pytest.raises(pki.PkiError, match="does not belong to"):
        pki.load_ca(tmp_path / "a")


def test_a_leaf_certificate_is_not_a_ca(tmp_path):
    ca = pki.ensure_ca(tmp_path)
    pki.issue_certificate(ca, tmp_path / "leaf", "ca", common_name="not-a-ca")
    with pytest.raises(pki.PkiError, match="not a CA certificate"):
        pki.load_ca(tmp_path / "leaf")


def test_an_unreadable_file_is_an_error(tmp_path):
    pki.ensure_ca(tmp_path)
    (tmp_path / "ca.crt").unlink()
    (tmp_path / "ca.crt").mkdir()
    with pytest.raises(pki.PkiError, match=r"ca\.crt: cannot read"):
        pki.load_ca(tmp_path)
