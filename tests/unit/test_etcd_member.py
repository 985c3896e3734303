"""The managed etcd member's config, URLs, command line, bootstrap file and log lines — no etcd needed."""

from __future__ import annotations

import logging

import pytest

from nodeos import pki
from nodeos.config import default_config
from nodeos.errors import ConfigError
from nodeos.etcd.member import Bootstrap, LocalMember
from nodeos.etcd.process import _parse_line, check_startable, etcd_argv


def _config(tmp_path, **etcd):
    return default_config(node={"name": "m1", "data_dir": tmp_path}, etcd={"managed": True, **etcd})


def test_defaults_are_loopback_and_off():
    etcd = default_config().etcd
    assert not etcd.managed
    assert (str(etcd.client_listen), str(etcd.peer_listen), etcd.client_tls) == ("127.0.0.1:2379",
                                                                                 "127.0.0.1:2380", False)


@pytest.mark.parametrize(("etcd", "message"), [
    ({"client_listen": "10.0.0.1:2379"}, r"\[etcd\] client_listen: \"10.0.0.1:2379\" is not loopback: set client_tls"),
    ({"peer_listen": "0.0.0.0:2380"}, r"\[etcd\] advertise_address: required when peer_listen"),
    ({"advertise_address": "0.0.0.0"}, r"\[etcd\] advertise_address: \"0.0.0.0\" cannot be"),
    ({"peer_listen": "nohost"}, r"\[etcd\] peer_listen: \"nohost\" is not host:port"),
    ({"managed": "yes"}, r"\[etcd\] managed: expected a boolean"),
])
def test_bad_etcd_config_is_one_line_naming_the_key(tmp_path, etcd, message):
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path, **etcd)


def test_a_public_client_port_is_fine_with_client_tls(tmp_path):
    config = _config(tmp_path, client_listen="0.0.0.0:2379", client_tls=True, peer_listen="0.0.0.0:2380",
                     advertise_address="10.0.0.1")
    member = LocalMember.from_config(config)
    assert member.client_url == "https://10.0.0.1:2379"  # a wildcard listener is reached at the advertised address
    assert member.listen_client_url == "https://0.0.0.0:2379"
    assert member.peer_url == "https://10.0.0.1:2380"
    assert member.listen_peer_url == "https://0.0.0.0:2380"


def test_peers_always_speak_tls_and_the_advertised_host_defaults_to_the_listener(tmp_path):
    member = LocalMember.from_config(_config(tmp_path, peer_listen="127.0.0.2:2380"))
    assert member.peer_url == "https://127.0.0.2:2380"
    assert member.client_url == "http://127.0.0.1:2379"
    assert member.etcd_dir == tmp_path / "etcd"


def test_the_command_line_has_peer_tls_and_the_bootstrap_only_when_given(tmp_path):
    config = _config(tmp_path)
    member = LocalMember.from_config(config)
    pki.ensure_ca(member.pki_dir)
    certs = member.certificates()
    argv = etcd_argv(member, certs, Bootstrap("existing", {"m0": "https://10.0.0.1:2380", "m1": member.peer_url},
                                              ""))
    assert "--peer-client-cert-auth" in argv
    assert f"--peer-trusted-ca-file={member.pki_dir / 'ca.crt'}" in argv
    assert f"--peer-cert-file={member.pki_dir / 'etcd-peer.crt'}" in argv
    assert "--initial-cluster=m0=https://10.0.0.1:2380,m1=https://127.0.0.1:2380" in argv
    assert "--initial-cluster-state=existing" in argv
    assert not any(a.startswith("--cert-file") for a in argv)  # no client TLS unless asked
    assert not any(a.startswith("--initial") and "cluster" in a for a in etcd_argv(member, certs, None))


def test_client_tls_adds_a_server_certificate_and_client_auth(tmp_path):
    member = LocalMember.from_config(_config(tmp_path, client_tls=True))
    pki.ensure_ca(member.pki_dir)
    argv = etcd_argv(member, member.certificates(), None)
    assert "--client-cert-auth" in argv
    assert f"--cert-file={member.pki_dir / 'etcd-server.crt'}" in argv
    assert (member.pki_dir / "etcd-client.key").stat().st_mode & 0o777 == 0o600
    assert 'etcd_cert_file = "' in member.store_config()


def test_store_config_lists_this_member_first_and_no_other_hosts_loopback(tmp_path):
    member = LocalMember.from_config(_config(tmp_path))
    text = member.store_config(["http://127.0.0.1:2379", "http://127.0.0.1:3379", "https://10.0.0.2:2379"])
    assert 'etcd_endpoints = ["http://127.0.0.1:2379", "https://10.0.0.2:2379"]' in text
    assert 'backend = "etcd"' in text
    assert "etcd_ca_file" not in text


def test_the_bootstrap_file_round_trips_and_a_bad_one_is_named(tmp_path):
    bootstrap = Bootstrap.new_cluster("m1", "https://127.0.0.1:2380")
    assert bootstrap.token.startswith("nodeos-")
    bootstrap.write(tmp_path / "b.json")
    assert Bootstrap.read(tmp_path / "b.json") == bootstrap
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"b\.json: not a bootstrap file"):
        Bootstrap.read(tmp_path / "b.json")


def test_a_member_never_initialised_is_refused_with_what_to_run(tmp_path):
    config = _config(tmp_path)
    with pytest.raises(ConfigError, match=r"run `nodeos etcd init --config .*` on the first master"):
        check_startable(config)
    Bootstrap.new_cluster("m1", "https://127.0.0.1:2380").write(tmp_path / "etcd-bootstrap.json")
    with pytest.raises(ConfigError, match=r"ca\.crt: no such file"):  # said now, not at every restart
        check_startable(config)
    pki.ensure_ca(tmp_path / "pki")
    check_startable(config)


def test_a_member_without_the_cluster_ca_says_where_it_comes_from(tmp_path):
    member = LocalMember.from_config(_config(tmp_path))
    with pytest.raises(pki.PkiError, match=r"copy ca\.crt and ca\.key from the first master's pki/ directory"):
        member.certificates()


@pytest.mark.parametrize(("line", "level", "message"), [
    ('{"level":"info","ts":"t","caller":"c","msg":"ready"}', logging.DEBUG, "ready"),
    ('{"level":"warn","msg":"slow fdatasync","took":"1s"}', logging.WARNING, 'slow fdatasync {"took": "1s"}'),
    ('{"level":"warn","msg":"simple token is not cryptographically signed"}', logging.INFO,
     "simple token is not cryptographically signed"),
    ('{"level":"fatal","msg":"cannot listen"}', logging.ERROR, "cannot listen"),
    ("plain text from grpc", logging.WARNING, "plain text from grpc"),
    ("   ", logging.DEBUG, ""),
])
def test_etcd_log_lines_get_a_level(line, level, message):
    assert _parse_line(line) == (level, message)
