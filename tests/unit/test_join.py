"""The join's logic without a server: token format and Secrets, the CA hash, CSR checks, flags, the worker's config."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import re
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from nodeos.api.auth.bootstrap import (
    SECRET_TYPE,
    is_bootstrap_token,
    new_token,
    parse_token,
    token_secret,
    token_state,
)
from nodeos.api.clusterinfo import ca_from_kubeconfig, ca_hash, cluster_info, master_url
from nodeos.api.http.join import check_csr
from nodeos.api.kinds import by_plural
from nodeos.api.model import default
from nodeos.cli.join import JoinError, JoinPlan, make_plan, packaged_and_unchanged, parse_ca_hash, worker_config
from nodeos.config import default_config, parse
from nodeos.credentials import check_credentials, remote_connection
from nodeos.errors import ApiError, ConfigError
from nodeos.pki import ensure_ca, issue_certificate

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _stored(secret: dict) -> dict:
    """The Secret as the server stores it: stringData folded into base64 data."""
    default(by_plural("", "v1", "secrets"), secret)
    return secret


def test_tokens_have_kubeadm_s_shape_and_parse_back():
    token = new_token()
    assert is_bootstrap_token(str(token)) and len(str(token)) == 23
    assert parse_token(f" {token} \n") == token
    assert new_token() != token
    for bad in ("abcdef0123456789abcdef", "ABCDEF.0123456789abcdef", "abcde.0123456789abcdef", "abcdef.012345"):
        with pytest.raises(ValueError, match=r"\[a-z0-9\]\{6\}\.\[a-z0-9\]\{16\}"):
            parse_token(bad)


def test_the_secret_keeps_only_the_hash_and_reads_back():
    token = parse_token("abcdef.0123456789abcdef")
    secret = _stored(token_secret(token, dt.timedelta(hours=2), "for w1", now=NOW))
    assert secret["metadata"] == {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}
    assert secret["type"] == SECRET_TYPE
    assert "0123456789abcdef" not in str(secret) and "token-secret" not in secret["data"]
    assert base64.b64decode(secret["data"]["usage-bootstrap-authentication"]) == b"true"
    state = token_state(secret)
    assert state is not None and state.id == "abcdef" and state.description == "for w1"
    assert state.secret_sha256 == hashlib.sha256(b"0123456789abcdef").hexdigest()
    assert state.expires == NOW + dt.timedelta(hours=2)
    assert state.refusal(NOW) is None
    assert state.refusal(NOW + dt.timedelta(hours=3)) == "expired"


def test_used_unlimited_and_foreign_secrets():
    token = parse_token("abcdef.0123456789abcdef")
    forever = _stored(token_secret(token, None))
    assert token_state(forever).expires is None and token_state(forever).refusal() is None
    forever["data"]["used-by"] = base64.b64encode(b"w1").decode()
    assert token_state(forever).refusal() == "already used by node w1"
    assert token_state({**forever, "type": "Opaque"}) is None
    renamed = {**forever, "metadata": {"name": "bootstrap-token-zzzzzz", "namespace": "kube-system"}}
    assert token_state(renamed) is None  # the id must be the name's
    broken = _stored(token_secret(token, dt.timedelta(hours=1)))
    broken["data"]["expiration"] = base64.b64encode(b"soon").decode()
    assert token_state(broken).refusal() == "expired"  # unreadable: never eternal


def test_ca_hash_is_kubeadm_s_and_openssl_agrees(tmp_path):
    ca = ensure_ca(tmp_path)
    pem = ca.cert_path.read_bytes()
    openssl = subprocess.run(f"openssl x509 -pubkey -noout -in {ca.cert_path} | openssl pkey -pubin -outform der "
                             "| sha256sum", shell=True, capture_output=True, text=True, check=True)
    assert ca_hash(pem) == "sha256:" + openssl.stdout.split()[0]
    back, server = ca_from_kubeconfig(cluster_info(pem, "https://10.0.0.1:6443")["data"]["kubeconfig"])
    assert (back, server) == (pem, "https://10.0.0.1:6443")
    with pytest.raises(ValueError, match="no kubeconfig"):
        ca_from_kubeconfig("clusters: []")


def test_master_url_is_the_listen_address_or_the_advertised_one():
    tls = {"tls": True}
    assert master_url(default_config(api={"listen": "10.1.2.3:6443", **tls}), "10.9.9.9") == "https://10.1.2.3:6443"
    assert master_url(default_config(api={"listen": "0.0.0.0:6443", **tls}), "10.9.9.9") == "https://10.9.9.9:6443"
    assert master_url(default_config(api={"listen": "[::]:7443", **tls}), "fd00::1") == "https://[fd00::1]:7443"


def _csr(key, cn: str = "anything") -> str:
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])).sign(key, algorithm))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def test_csr_checks():
    assert check_csr(_csr(ec.generate_private_key(ec.SECP256R1())), "w1.example")
    assert check_csr(_csr(rsa.generate_private_key(public_exponent=65537, key_size=2048)), "w1")
    cases = [
        (_csr(ec.generate_private_key(ec.SECP256R1())), "W1", "nodeName \"W1\": a lowercase RFC 1123"),
        (_csr(ec.generate_private_key(ec.SECP256R1())), "", "nodeName \"\": must not be empty"),
        ("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "w1", "not a PEM"),
        (_csr(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "w1", "1024 bits is too weak"),
        (_csr(ed25519.Ed25519PrivateKey.generate()), "w1", "must be RSA"),
    ]
    for pem, name, message in cases:
        with pytest.raises(ApiError) as caught:
            check_csr(pem, name)
        assert caught.value.code == 400 and message in caught.value.message, caught.value.message


def test_a_tampered_csr_is_refused():
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.load_pem_x509_csr(_csr(key).encode())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xFF  # inside the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(ApiError, match="signature does not match"):
        check_csr(tampered, "w1")


def _args(tmp_path: Path, **overrides) -> argparse.Namespace:
    base = {"server": "https://10.0.0.1:6443", "token": "abcdef.0123456789abcdef", "ca_hash": "sha256:" + "a" * 64,
            "name": "w1", "config": tmp_path / "etc" / "nodeos.toml", "data_dir": tmp_path / "data",
            "runtime": None, "start": True, "force": False, "address": None}
    return argparse.Namespace(**{**base, **overrides})


@pytest.mark.parametrize(("override", "message"), [
    ({"token": "abc"}, "--token: a bootstrap token has the form"),
    ({"ca_hash": "sha256:abc"}, "--ca-hash 'sha256:abc': expected sha256: and 64 hex digits"),
    ({"server": "http://10.0.0.1:8080"}, "expected https://HOST:PORT"),
    ({"server": "https://10.0.0.1:6443/api"}, "expected https://HOST:PORT"),
    ({"name": "Bad_Name"}, "--name:"),
])
def test_bad_flags_are_refused_before_any_request(tmp_path, override, message):
    with pytest.raises(JoinError, match=re.escape(message)):
        make_plan(_args(tmp_path, **override))


def test_an_existing_config_needs_force(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "nodeos.toml").write_text("")
    with pytest.raises(JoinError, match=r"exists: .* pass --force"):
        make_plan(_args(tmp_path))
    assert make_plan(_args(tmp_path, force=True)).force
    assert parse_ca_hash("SHA256:" + "A" * 64) == "sha256:" + "a" * 64


def test_the_worker_config_parses_with_the_schema(tmp_path):
    plan = JoinPlan("https://10.0.0.1:6443", "t", "h", "w1", tmp_path / "nodeos.toml", tmp_path / "data",
                    "simulated", True, False)
    answer = {"cluster": {"service_cidr": "10.97.0.0/16", "pod_cidr": "10.245.0.0/16", "node_cidr_size": 25,
                          "dns_domain": "corp.local"}}
    config = parse(worker_config(plan, answer, ["https://10.0.0.1:6443", "https://10.0.0.2:6443"]), "test")
    assert config.node.role == "worker" and config.node.name == "w1"
    assert config.api.servers == ("https://10.0.0.1:6443", "https://10.0.0.2:6443")
    assert config.api.cert_file == tmp_path / "data" / "pki" / "node.crt"
    assert (str(config.cluster.service_cidr), config.cluster.node_cidr_size, config.dns.domain) == \
        ("10.97.0.0/16", 25, "corp.local")
    assert config.agent.runtime == "simulated"


def test_credential_keys(tmp_path):
    with pytest.raises(ConfigError, match=r"\[api\] key_file: required with cert_file"):
        default_config(api={"cert_file": "/x/node.crt"})
    ca = ensure_ca(tmp_path / "pki")
    pair = issue_certificate(ca, tmp_path / "pki", "node", common_name="system:node:w1", usage="client")
    config = default_config(node={"role": "worker"}, api={
        "servers": ["https://10.0.0.1:6443"], "ca_file": str(ca.cert_path), "cert_file": str(pair.cert_path),
        "key_file": str(pair.key_path)})
    check_credentials(config)
    connection = remote_connection(config, "https://10.0.0.1:6443")
    assert connection.verify == str(ca.cert_path) and connection.cert == (str(pair.cert_path), str(pair.key_path))
    missing = default_config(node={"role": "worker"}, api={"servers": ["https://10.0.0.1:6443"],
                                                           "ca_file": str(tmp_path / "nope.crt")})
    with pytest.raises(ConfigError, match=r"\[api\] ca_file: .*nope.crt: cannot read: No such file"):
        check_credentials(missing)
    other = issue_certificate(ca, tmp_path / "pki", "other", common_name="x", usage="client")
    crossed = default_config(node={"role": "worker"}, api={"servers": ["https://10.0.0.1:6443"],
                                                           "cert_file": str(pair.cert_path),
                                                           "key_file": str(other.key_path)})
    with pytest.raises(ConfigError, match=r"\[api\] cert_file: .* not a usable certificate and key"):
        check_credentials(crossed)
    plain = remote_connection(default_config(), "http://127.0.0.1:8080")
    assert plain.verify is True and plain.cert is None


def test_the_packages_untouched_example_config_may_be_replaced(tmp_path):
    config = tmp_path / "etc" / "nodeos.toml"
    config.parent.mkdir()
    config.write_text("# the example the deb installs\n")
    digest = hashlib.md5(config.read_bytes(), usedforsecurity=False).hexdigest()
    status = tmp_path / "status"
    status.write_text(f"Package: nodeos\nStatus: install ok installed\nConffiles:\n {config} {digest}\n"
                      f" /etc/nodeos/other.toml {'0' * 32}\n\n")
    assert packaged_and_unchanged(config, status)
    config.write_text("# edited by the operator\n")
    assert not packaged_and_unchanged(config, status)
    assert not packaged_and_unchanged(config, tmp_path / "no-dpkg")
