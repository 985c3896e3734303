"""The API server's certificates: the SANs of the serving certificate, reuse, and reissue."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from cryptography import x509

from nodeos.api.tls import check_files, ensure_serving, local_connection, serving_names
from nodeos.config import default_config
from nodeos.pki import PkiError


def _config(tmp_path, listen="127.0.0.1:6443", **cluster):
    return default_config(node={"name": "m1", "data_dir": tmp_path}, api={"listen": listen, "tls": True},
                          cluster=cluster)


def _sans(path):
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)), {str(i) for i in san.get_values_for_type(x509.IPAddress)}


def test_the_serving_certificate_names_every_way_to_the_master(tmp_path):
    files = ensure_serving(_config(tmp_path, listen="0.0.0.0:6443", service_cidr="10.43.0.0/16"), ["192.0.2.7"])
    dns, ips = _sans(files.cert_path)
    assert {socket.gethostname().lower(), "m1", "localhost", "kubernetes", "kubernetes.default",
            "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"} <= dns
    assert ips == {"127.0.0.1", "10.43.0.1", "192.0.2.7"}  # the wildcard listen itself is no name


def test_a_listen_address_is_named_too(tmp_path):
    assert "192.0.2.9" in serving_names(_config(tmp_path, listen="192.0.2.9:6443"), [])[1]


def test_the_ca_and_certificate_are_reused_and_reissued_when_names_change(tmp_path):
    config = _config(tmp_path)
    first = ensure_serving(config, ["192.0.2.7"])
    ca, cert = first.ca_path.read_bytes(), first.cert_path.read_bytes()
    again = ensure_serving(config, ["192.0.2.7"])
    assert again.ca_path.read_bytes() == ca and again.cert_path.read_bytes() == cert
    moved = ensure_serving(config, ["192.0.2.8"])  # the node got a new address
    assert moved.ca_path.read_bytes() == ca
    assert moved.cert_path.read_bytes() != cert and "192.0.2.8" in _sans(moved.cert_path)[1]


def test_check_files_names_the_bad_file(tmp_path):
    config = _config(tmp_path)
    check_files(config)  # nothing yet: the first start makes it all
    files = ensure_serving(config, [])
    check_files(config)
    files.key_path.write_text("garbage")
    with pytest.raises(PkiError, match=r"apiserver\.key: not an unencrypted PEM private key$"):
        check_files(config)
    (tmp_path / "pki" / "ca.key").unlink()
    with pytest.raises(PkiError, match=r"ca\.key: no such file"):
        check_files(config)


def test_the_node_components_log_in_as_masters(tmp_path):
    connection = local_connection(_config(tmp_path, listen="0.0.0.0:7443"))
    assert connection.server == "https://127.0.0.1:7443"
    cert = x509.load_pem_x509_certificate(Path(connection.cert[0]).read_bytes())
    assert cert.subject.rfc4514_string() == "O=system:masters,CN=system:nodeos:m1"
